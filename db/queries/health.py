"""Whether the database answers (the service's health probe)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session


def ping(session: Session) -> None:
    """Raise unless the database answers."""
    session.execute(select(1))
