"""Queries of the ``profiling_runs`` table."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.columns import equals
from db.errors import RunConflictError
from db.models import Device, Measurement, ProfilingRun, utcnow
from db.queries._insert import insert_ignoring_conflicts
from db.queries.devices import get_or_create_device
from db.records import RunRecord


def get_run(session: Session, *, uid: str) -> ProfilingRun | None:
    return session.scalar(select(ProfilingRun).where(equals(ProfilingRun.uid, uid)))


def upsert_run(session: Session, *, run: RunRecord) -> ProfilingRun:
    """The run with ``run.uid`` (created with its device when new; status and end time updated).

    Raises RunConflictError when the uid belongs to a run of another device or runtime.
    """
    device = get_or_create_device(
        session, name=run.device, kind=run.device_kind, description=run.device_description, facts=run.device_facts
    )
    row = get_run(session, uid=run.uid)
    if row is None:
        created = session.execute(
            insert_ignoring_conflicts(session, ProfilingRun, on=["uid"])
            .values(
                uid=run.uid, device_id=device.id, host=run.host, runtime=run.runtime, environment=run.environment,
                environment_key=run.environment_key, settings=run.settings, status=run.status,
                started_at=run.started_at or utcnow(), finished_at=run.finished_at,
            )
            .returning(ProfilingRun.id)
        ).scalar()
        row = get_run(session, uid=run.uid)
        assert row is not None  # stored by this session or by the one it waited for
        if created is not None:
            return row
    if row.device_id != device.id:
        raise RunConflictError(f"run {run.uid!r} belongs to another device than {run.device!r}")
    if row.runtime != run.runtime:
        raise RunConflictError(f"run {run.uid!r} measured runtime {row.runtime!r}, not {run.runtime!r}")
    if run.status != "running" or row.status == "running":  # a re-sent early batch must not reopen a run
        row.status = run.status
    row.finished_at = run.finished_at or row.finished_at
    # The last batch adds what is known only at the end (the load summary); an early one re-sent later adds nothing.
    row.environment = {**row.environment, **run.environment}
    return row


def list_runs(session: Session, *, device: str | None = None) -> list[ProfilingRun]:
    query = select(ProfilingRun).join(Device).order_by(ProfilingRun.started_at)
    if device:
        query = query.where(equals(Device.name, device))
    return list(session.scalars(query))


def run_measurement_counts(session: Session) -> dict[str, int]:
    """How many measurements each profiling run holds, keyed by run uid."""
    query = (
        select(ProfilingRun.uid, func.count(Measurement.id))
        .outerjoin(Measurement, Measurement.run_id == ProfilingRun.id)
        .group_by(ProfilingRun.uid)
    )
    return {uid: count for uid, count in session.execute(query)}
