"""Whether the database answers (the service's health probe)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Device


def ping(session: Session) -> None:
    """Raise unless the database answers a read of its schema (``SELECT 1`` would not open a SQLite file)."""
    session.execute(select(Device.id).limit(1))
