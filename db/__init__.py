"""Storage: SQLAlchemy models, engine and sessions, queries, records, Alembic migrations."""

from __future__ import annotations

from db.config import Settings, database_url, get_settings
from db.engine import dispose_engine, get_engine, session_scope
from db.errors import DatabaseURLError
from db.urls import check_database_url

__all__ = [
    "DatabaseURLError", "Settings", "check_database_url", "database_url", "dispose_engine", "get_engine",
    "get_settings", "session_scope",
]
