"""One router per resource of the service."""
