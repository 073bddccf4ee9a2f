"""INSERT ... ON CONFLICT DO NOTHING in the dialect of the session's database (SQLite or PostgreSQL).

Sessions that store the same new row at the same time (an agent retrying while its first request still
runs, two agents registering one device) then both succeed: the later insert waits for the earlier
transaction and skips the row instead of failing on the unique constraint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_conflicts(session: Session, model: type[Any], *, on: Sequence[str]) -> Any:
    """``INSERT INTO model`` that skips rows whose ``on`` columns (a unique constraint) are already stored."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return insert(model).on_conflict_do_nothing(index_elements=list(on))
