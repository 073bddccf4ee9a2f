"""The orchestrator above the packages: the main job end to end, and the service it starts (see README)."""
