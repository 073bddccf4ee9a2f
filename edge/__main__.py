"""``python -m edge``: the same as ``splitnas-edge``."""

from __future__ import annotations

from edge.cli import entry_point

entry_point()
