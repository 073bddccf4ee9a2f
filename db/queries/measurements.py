"""Queries of the ``measurements`` table: idempotent batch uploads, filtered and keyset-paged reads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from db.columns import INT32_MAX, equals
from db.models import Device, Measurement, ProfilingRun
from db.queries._insert import insert_ignoring_conflicts
from db.queries.runs import upsert_run
from db.records import DEFAULT_RUNTIME, MeasurementBatch, MeasurementRecord

_Columns = TypeVarTuple("_Columns")


def ingest_batch(session: Session, *, batch: MeasurementBatch) -> tuple[int, int]:
    """Store an uploaded batch idempotently, also while the same batch is stored concurrently.

    Returns (inserted, already present); raises RunConflictError when the run belongs to another device.
    """
    run = upsert_run(session, run=batch.run)
    inserted = _insert_new(session, run=run, records=batch.measurements)
    return inserted, len(batch.measurements) - inserted


def _insert_new(session: Session, *, run: ProfilingRun, records: Iterable[MeasurementRecord]) -> int:
    """Insert the records whose key ``run`` does not hold yet (the first of repeated keys); returns how many."""
    first: dict[str, MeasurementRecord] = {}
    for record in records:
        first.setdefault(record.key, record)
    if not first:
        return 0
    rows = [{"run_id": run.id, "device_id": run.device_id, **record.model_dump()} for record in first.values()]
    statement = insert_ignoring_conflicts(session, Measurement, on=["run_id", "key"]).returning(Measurement.id)
    return len(session.execute(statement, rows).all())


def measured_keys(session: Session, *, device: str, environment_key: str) -> set[str]:
    """Keys already measured on ``device`` under the same environment (for ``--resume``)."""
    query = (
        select(Measurement.key)
        .join(ProfilingRun)
        .join(Device, Device.id == Measurement.device_id)
        .where(equals(Device.name, device), equals(ProfilingRun.environment_key, environment_key))
    )
    return set(session.scalars(query))


def _measurements_where(
    query: Select[*_Columns], *, device: str | None, space: str | None, target: str | None, run_uid: str | None,
    runtime: str | None = None,
) -> Select[*_Columns]:
    """``query`` over measurements joined to their device and run, with the given filters."""
    # explicit ON clauses: ProfilingRun also joins to Device, which would match every run of the device
    query = query.join(Device, Device.id == Measurement.device_id).join(
        ProfilingRun, ProfilingRun.id == Measurement.run_id
    )
    if device:
        query = query.where(equals(Device.name, device))
    if space:
        query = query.where(equals(Measurement.space, space))
    if target:
        query = query.where(equals(Measurement.target, target))
    if run_uid:
        query = query.where(equals(ProfilingRun.uid, run_uid))
    if runtime:
        query = query.where(equals(ProfilingRun.runtime, runtime))
    return query.order_by(Measurement.id)


def list_measurements(
    session: Session,
    *,
    device: str | None = None,
    space: str | None = None,
    target: str | None = None,
    run_uid: str | None = None,
    runtime: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Measurement]:
    query = _measurements_where(
        select(Measurement), device=device, space=space, target=target, run_uid=run_uid, runtime=runtime
    )
    return list(session.scalars(query.offset(offset).limit(limit)))


def latest_measurements(
    session: Session, *, device: str, runtime: str = DEFAULT_RUNTIME, space: str | None = None,
    target: str | None = None,
) -> dict[str, Measurement]:
    """The newest measurement per key for ``device`` under ``runtime`` (later runs override earlier ones)."""
    rows = list_measurements(session, device=device, runtime=runtime, space=space, target=target)
    latest: dict[str, Measurement] = {}
    for row in sorted(rows, key=lambda m: (m.run.started_at, m.id)):
        latest[row.key] = row
    return latest


def coverage(session: Session, *, device: str, runtime: str | None = None) -> dict[tuple[str | None, str], int]:
    """How many distinct keys are measured per (space, target) on ``device`` (under ``runtime``, or any)."""
    query = (
        select(Measurement.space, Measurement.target, func.count(func.distinct(Measurement.key)))
        .join(Device, Device.id == Measurement.device_id)
        .join(ProfilingRun, ProfilingRun.id == Measurement.run_id)
        .where(equals(Device.name, device))
        .group_by(Measurement.space, Measurement.target)
    )
    if runtime:
        query = query.where(equals(ProfilingRun.runtime, runtime))
    return {(space, target): count for space, target, count in session.execute(query)}



def measurement_rows(
    session: Session,
    *,
    device: str | None = None,
    space: str | None = None,
    target: str | None = None,
    run_uid: str | None = None,
    runtime: str | None = None,
    limit: int | None = None,
    after_id: int = 0,
) -> list[tuple[Measurement, str, str]]:
    """(measurement, device name, run uid) rows in id order, after ``after_id`` (keyset paging)."""
    if after_id >= INT32_MAX:  # ids are 32-bit: nothing comes after (and PostgreSQL refuses a larger integer)
        return []
    query = _measurements_where(
        select(Measurement, Device.name, ProfilingRun.uid).where(Measurement.id > after_id),
        device=device, space=space, target=target, run_uid=run_uid, runtime=runtime,
    )
    return [(measurement, name, uid) for measurement, name, uid in session.execute(query.limit(limit))]
