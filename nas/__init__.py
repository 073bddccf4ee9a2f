"""Search an architecture and its split point(s): supernet, searchers, latency client, methods, jobs."""
