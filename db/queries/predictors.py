"""Queries of the ``fitted_predictors`` table: versions assigned without races, the newest of each."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.columns import equals
from db.errors import PredictorVersionConflictError
from db.models import Device, FittedPredictor
from db.queries._insert import insert_ignoring_conflicts
from db.queries.devices import get_device
from db.records import DEFAULT_RUNTIME

VERSION_ATTEMPTS = 20  # each failed attempt means another fit of the same predictor was stored meanwhile


def save_predictor(
    session: Session, *, device: str, space: str, kind: str, artifact: bytes, metrics: dict[str, Any],
    meta: dict[str, Any], runtime: str = DEFAULT_RUNTIME,
) -> FittedPredictor:
    """Store the next free version of the (device, runtime, space, kind) predictor, also during concurrent fits.

    Raises ValueError for an unknown device, PredictorVersionConflictError when concurrent fits kept
    taking the next version.
    """
    dev = get_device(session, name=device)
    if dev is None:
        raise ValueError(f"unknown device {device!r}")
    newest = select(func.coalesce(func.max(FittedPredictor.version), 0)).where(
        FittedPredictor.device_id == dev.id, equals(FittedPredictor.runtime, runtime),
        equals(FittedPredictor.space, space), equals(FittedPredictor.kind, kind),
    )
    insert = insert_ignoring_conflicts(
        session, FittedPredictor, on=["device_id", "runtime", "space", "kind", "version"]
    )
    for _ in range(VERSION_ATTEMPTS):
        # a concurrent insert of the same version makes this one wait for it, then skip: take the next one
        stored = session.execute(
            insert.values(
                device_id=dev.id, runtime=runtime, space=space, kind=kind,
                version=session.scalars(newest).one() + 1, artifact=artifact, metrics=metrics, meta=meta,
            ).returning(FittedPredictor.id)
        ).scalar()
        if stored is not None:
            return session.get_one(FittedPredictor, stored)
    raise PredictorVersionConflictError(
        f"no free version for predictor {kind!r} of {device!r} ({runtime}) on {space!r} after {VERSION_ATTEMPTS} "
        "attempts: other fits of it are being stored; try again"
    )


def latest_predictors(
    session: Session, *, device: str | None = None, space: str | None = None, kind: str | None = None,
    runtime: str | None = None,
) -> list[FittedPredictor]:
    """The newest version of every fitted (device, runtime, space, kind) predictor matching the filters."""
    query = select(FittedPredictor).join(Device).order_by(FittedPredictor.version)
    if device:
        query = query.where(equals(Device.name, device))
    if space:
        query = query.where(equals(FittedPredictor.space, space))
    if kind:
        query = query.where(equals(FittedPredictor.kind, kind))
    if runtime:
        query = query.where(equals(FittedPredictor.runtime, runtime))
    newest: dict[tuple[int, str, str, str], FittedPredictor] = {}
    for row in session.scalars(query):
        newest[(row.device_id, row.runtime, row.space, row.kind)] = row
    return list(newest.values())
