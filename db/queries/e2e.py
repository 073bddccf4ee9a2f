"""Queries of the ``e2e_measurements`` table."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.columns import INT32_MAX, equals
from db.models import E2EMeasurement
from db.records import E2ERecord


def add_e2e(session: Session, *, record: E2ERecord) -> E2EMeasurement:
    """Store one end-to-end run (flushed: its id is set)."""
    row = E2EMeasurement(**record.model_dump(mode="json"))
    session.add(row)
    session.flush()
    return row


def list_e2e(
    session: Session, *, job: str | None = None, limit: int | None = 100, after_id: int = 0
) -> Sequence[E2EMeasurement]:
    """End-to-end runs in id order, optionally of one job (``limit=None``: all of them)."""
    if after_id >= INT32_MAX:  # ids are 32-bit: nothing comes after (and PostgreSQL refuses a larger integer)
        return []
    query = select(E2EMeasurement).where(E2EMeasurement.id > after_id)
    if job is not None:
        query = query.where(equals(E2EMeasurement.job, job))
    return session.scalars(query.order_by(E2EMeasurement.id).limit(limit)).all()


def e2e_records(session: Session) -> list[tuple[int, E2ERecord]]:
    """Every stored end-to-end run, in id order, as (id, record)."""
    return [(row.id, E2ERecord.model_validate(row, from_attributes=True)) for row in list_e2e(session, limit=None)]
