"""Every query the project makes, as keyword-only functions over a Session."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from db.models import ApiToken, Device, FittedPredictor, Measurement, ProfilingRun, SearchJob, utcnow
from db.records import MeasurementBatch, MeasurementRecord, RunRecord

# -- devices ---------------------------------------------------------------------------------------


def get_device(session: Session, *, name: str) -> Device | None:
    return session.scalar(select(Device).where(Device.name == name))


def get_or_create_device(
    session: Session, *, name: str, kind: str = "cpu", description: str = "", facts: dict[str, Any] | None = None
) -> Device:
    """The device ``name``; created when new, its facts refreshed when given."""
    device = get_device(session, name=name)
    if device is None:
        device = Device(name=name, kind=kind, description=description, facts=facts or {})
        session.add(device)
        session.flush()
    elif facts:
        device.facts = {**device.facts, **facts}
        if description:
            device.description = description
    return device


def list_devices(session: Session) -> list[Device]:
    return list(session.scalars(select(Device).order_by(Device.name)))


# -- runs and measurements -------------------------------------------------------------------------


def upsert_run(session: Session, *, run: RunRecord) -> ProfilingRun:
    """The run with ``run.uid`` (created with its device when new; status and end time updated)."""
    device = get_or_create_device(
        session, name=run.device, kind=run.device_kind, description=run.device_description, facts=run.device_facts
    )
    row = session.scalar(select(ProfilingRun).where(ProfilingRun.uid == run.uid))
    if row is None:
        row = ProfilingRun(
            uid=run.uid, device_id=device.id, host=run.host, environment=run.environment,
            environment_key=run.environment_key, settings=run.settings, status=run.status,
            started_at=run.started_at or utcnow(), finished_at=run.finished_at,
        )
        session.add(row)
        session.flush()
    else:
        if row.device_id != device.id:
            raise ValueError(f"run {run.uid!r} belongs to another device than {run.device!r}")
        if run.status != "running" or row.status == "running":  # a re-sent early batch must not reopen a run
            row.status = run.status
        row.finished_at = run.finished_at or row.finished_at
        # The last batch adds what is known only at the end (the load summary); an early one re-sent later adds nothing.
        row.environment = {**row.environment, **run.environment}
    return row


def finish_run(session: Session, *, run: ProfilingRun, status: str, finished_at: datetime | None = None) -> None:
    run.status = status
    run.finished_at = finished_at or utcnow()


def add_measurements(session: Session, *, run: ProfilingRun, records: Iterable[MeasurementRecord]) -> int:
    """Insert the records not yet stored for ``run`` (same key = same measurement); returns how many."""
    records = list(records)
    existing = set(
        session.scalars(
            select(Measurement.key).where(Measurement.run_id == run.id, Measurement.key.in_([r.key for r in records]))
        )
    )
    added = 0
    for record in records:
        if record.key in existing:
            continue
        existing.add(record.key)
        session.add(Measurement(run_id=run.id, device_id=run.device_id, **record.model_dump()))
        added += 1
    session.flush()
    return added


def ingest_batch(session: Session, *, batch: MeasurementBatch) -> tuple[int, int]:
    """Store an uploaded batch idempotently; returns (inserted, already present)."""
    run = upsert_run(session, run=batch.run)
    inserted = add_measurements(session, run=run, records=batch.measurements)
    return inserted, len(batch.measurements) - inserted


def get_run(session: Session, *, uid: str) -> ProfilingRun | None:
    return session.scalar(select(ProfilingRun).where(ProfilingRun.uid == uid))


def list_runs(session: Session, *, device: str | None = None) -> list[ProfilingRun]:
    query = select(ProfilingRun).join(Device).order_by(ProfilingRun.started_at)
    if device:
        query = query.where(Device.name == device)
    return list(session.scalars(query))


def measured_keys(session: Session, *, device: str, environment_key: str) -> set[str]:
    """Keys already measured on ``device`` under the same environment (for ``--resume``)."""
    query = (
        select(Measurement.key)
        .join(ProfilingRun)
        .join(Device, Device.id == Measurement.device_id)
        .where(Device.name == device, ProfilingRun.environment_key == environment_key)
    )
    return set(session.scalars(query))


def _measurements_where(
    query: Select[Any], *, device: str | None, space: str | None, target: str | None, run_uid: str | None
) -> Select[Any]:
    """``query`` over measurements joined to their device and run, with the given filters."""
    # explicit ON clauses: ProfilingRun also joins to Device, which would match every run of the device
    query = query.join(Device, Device.id == Measurement.device_id).join(
        ProfilingRun, ProfilingRun.id == Measurement.run_id
    )
    if device:
        query = query.where(Device.name == device)
    if space:
        query = query.where(Measurement.space == space)
    if target:
        query = query.where(Measurement.target == target)
    if run_uid:
        query = query.where(ProfilingRun.uid == run_uid)
    return query.order_by(Measurement.id)


def list_measurements(
    session: Session,
    *,
    device: str | None = None,
    space: str | None = None,
    target: str | None = None,
    run_uid: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Measurement]:
    query = _measurements_where(select(Measurement), device=device, space=space, target=target, run_uid=run_uid)
    return list(session.scalars(query.offset(offset).limit(limit)))


def latest_measurements(
    session: Session, *, device: str, space: str | None = None, target: str | None = None
) -> dict[str, Measurement]:
    """The newest measurement per key for ``device`` (later runs override earlier ones)."""
    rows = list_measurements(session, device=device, space=space, target=target)
    latest: dict[str, Measurement] = {}
    for row in sorted(rows, key=lambda m: (m.run.started_at, m.id)):
        latest[row.key] = row
    return latest


def coverage(session: Session, *, device: str) -> dict[tuple[str | None, str], int]:
    """How many distinct keys are measured per (space, target) on ``device``."""
    query = (
        select(Measurement.space, Measurement.target, func.count(func.distinct(Measurement.key)))
        .join(Device, Device.id == Measurement.device_id)
        .where(Device.name == device)
        .group_by(Measurement.space, Measurement.target)
    )
    return {(space, target): count for space, target, count in session.execute(query)}


# -- fitted predictors -----------------------------------------------------------------------------


def save_predictor(
    session: Session, *, device: str, space: str, kind: str, artifact: bytes, metrics: dict[str, Any],
    meta: dict[str, Any],
) -> FittedPredictor:
    """Store a new version of the (device, space, kind) predictor."""
    dev = get_device(session, name=device)
    if dev is None:
        raise ValueError(f"unknown device {device!r}")
    version = (
        session.scalar(
            select(func.max(FittedPredictor.version)).where(
                FittedPredictor.device_id == dev.id, FittedPredictor.space == space, FittedPredictor.kind == kind
            )
        )
        or 0
    ) + 1
    row = FittedPredictor(
        device_id=dev.id, space=space, kind=kind, version=version, artifact=artifact, metrics=metrics, meta=meta
    )
    session.add(row)
    session.flush()
    return row


def latest_predictors(
    session: Session, *, device: str | None = None, space: str | None = None, kind: str | None = None
) -> list[FittedPredictor]:
    """The newest version of every fitted (device, space, kind) predictor matching the filters."""
    query = select(FittedPredictor).join(Device).order_by(FittedPredictor.version)
    if device:
        query = query.where(Device.name == device)
    if space:
        query = query.where(FittedPredictor.space == space)
    if kind:
        query = query.where(FittedPredictor.kind == kind)
    newest: dict[tuple[int, str, str], FittedPredictor] = {}
    for row in session.scalars(query):
        newest[(row.device_id, row.space, row.kind)] = row
    return list(newest.values())


# -- search jobs -----------------------------------------------------------------------------------


def create_job(session: Session, *, uid: str, method: str, space: str, config: dict[str, Any]) -> SearchJob:
    job = SearchJob(uid=uid, method=method, space=space, config=config)
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, uid: str) -> SearchJob | None:
    return session.scalar(select(SearchJob).where(SearchJob.uid == uid))


def list_jobs(session: Session, *, method: str | None = None, status: str | None = None) -> list[SearchJob]:
    query = select(SearchJob).order_by(SearchJob.created_at)
    if method:
        query = query.where(SearchJob.method == method)
    if status:
        query = query.where(SearchJob.status == status)
    return list(session.scalars(query))


# -- API tokens ------------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, *, name: str, device: str | None = None) -> str:
    """Create a token and return it in clear text (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=hash_token(token), device=device))
    session.flush()
    return token


def find_token(session: Session, *, token: str) -> ApiToken | None:
    """The valid (not revoked) token matching ``token``."""
    return session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False))
    )


def revoke_token(session: Session, *, name: str) -> bool:
    row = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if row is None:
        return False
    row.revoked = True
    return True


# -- latency service (api) -------------------------------------------------------------------------


def device_names(session: Session) -> list[str]:
    return list(session.scalars(select(Device.name).order_by(Device.name)))


def data_fingerprint(session: Session, *, device: str) -> tuple[int, int, int]:
    """(newest measurement id, measurement count, newest predictor id) of ``device``: changes with new data."""
    device_id = select(Device.id).where(Device.name == device).scalar_subquery()
    newest, count = session.execute(
        select(func.coalesce(func.max(Measurement.id), 0), func.count(Measurement.id)).where(
            Measurement.device_id == device_id
        )
    ).one()
    predictor = session.scalar(
        select(func.coalesce(func.max(FittedPredictor.id), 0)).where(FittedPredictor.device_id == device_id)
    )
    return int(newest), int(count), int(predictor or 0)


def measurement_rows(
    session: Session,
    *,
    device: str | None = None,
    space: str | None = None,
    target: str | None = None,
    run_uid: str | None = None,
    limit: int | None = None,
    after_id: int = 0,
) -> list[tuple[Measurement, str, str]]:
    """(measurement, device name, run uid) rows in id order, after ``after_id`` (keyset paging)."""
    query = _measurements_where(
        select(Measurement, Device.name, ProfilingRun.uid).where(Measurement.id > after_id),
        device=device, space=space, target=target, run_uid=run_uid,
    )
    return [tuple(row) for row in session.execute(query.limit(limit))]


def get_token(session: Session, *, name: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.name == name))


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.name)))


def ping(session: Session) -> None:
    """Raise unless the database answers."""
    session.execute(select(1))


# -- profiler agent --------------------------------------------------------------------------------


def run_measurement_counts(session: Session) -> dict[str, int]:
    """How many measurements each profiling run holds, keyed by run uid."""
    query = (
        select(ProfilingRun.uid, func.count(Measurement.id))
        .outerjoin(Measurement, Measurement.run_id == ProfilingRun.id)
        .group_by(ProfilingRun.uid)
    )
    return {uid: count for uid, count in session.execute(query)}


# -- search job progress (nas) ---------------------------------------------------------------------


def append_job_history(session: Session, *, uid: str, records: list[dict[str, Any]]) -> SearchJob:
    """Append progress records (one per epoch) to the job ``uid``."""
    job = get_job(session, uid=uid)
    if job is None:
        raise ValueError(f"unknown search job {uid!r}")
    job.history = [*job.history, *records]  # a new list: JSON columns do not track in-place changes
    return job


def finish_job(session: Session, *, uid: str, status: str, result: dict[str, Any]) -> SearchJob:
    """Mark the job ``uid`` completed or failed, with its result (or error)."""
    job = get_job(session, uid=uid)
    if job is None:
        raise ValueError(f"unknown search job {uid!r}")
    job.status, job.result, job.finished_at = status, result, utcnow()
    return job
