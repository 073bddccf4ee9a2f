"""Storage: SQLAlchemy models, engine and sessions, queries, records, Alembic migrations."""

from __future__ import annotations

from db.config import Settings, database_url, get_settings
from db.engine import get_engine, session_scope

__all__ = ["Settings", "database_url", "get_engine", "get_settings", "session_scope"]
