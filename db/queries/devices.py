"""Queries of the ``devices`` table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.columns import equals
from db.models import Device, FittedPredictor, Measurement, ProfilingRun
from db.queries._insert import insert_ignoring_conflicts


def get_device(session: Session, *, name: str) -> Device | None:
    return session.scalar(select(Device).where(equals(Device.name, name)))


def get_or_create_device(
    session: Session, *, name: str, kind: str = "cpu", description: str = "", facts: dict[str, Any] | None = None
) -> Device:
    """The device ``name``; created when new (also while other sessions create it), its facts refreshed when given."""
    device = get_device(session, name=name)
    if device is None:
        created = session.execute(
            insert_ignoring_conflicts(session, Device, on=["name"])
            .values(name=name, kind=kind, description=description, facts=facts or {})
            .returning(Device.id)
        ).scalar()
        device = get_device(session, name=name)
        assert device is not None  # stored by this session or by the one it waited for
        if created is not None:
            return device
    if facts:
        device.facts = {**device.facts, **facts}
        if description:
            device.description = description
    return device


def list_devices(session: Session) -> list[Device]:
    return list(session.scalars(select(Device).order_by(Device.name)))


def device_names(session: Session) -> list[str]:
    return list(session.scalars(select(Device.name).order_by(Device.name)))


def data_fingerprint(session: Session, *, device: str) -> tuple[int, int, int]:
    """(newest measurement id, measurement count, newest predictor id) of ``device``: changes with new data."""
    device_id = select(Device.id).where(equals(Device.name, device)).scalar_subquery()
    newest, count = session.execute(
        select(func.coalesce(func.max(Measurement.id), 0), func.count(Measurement.id)).where(
            Measurement.device_id == device_id
        )
    ).one()
    predictor = session.scalar(
        select(func.coalesce(func.max(FittedPredictor.id), 0)).where(FittedPredictor.device_id == device_id)
    )
    return int(newest), int(count), int(predictor or 0)


def device_runtimes(session: Session, *, device: str | None = None) -> dict[str, list[str]]:
    """The runtimes each device has measurements or fitted predictors of, sorted, keyed by device name.

    Devices with neither are left out.
    """
    measured = (
        select(Device.name, ProfilingRun.runtime)
        .join(ProfilingRun, ProfilingRun.device_id == Device.id)
        .where(select(Measurement.id).where(Measurement.run_id == ProfilingRun.id).exists())
    )
    fitted = select(Device.name, FittedPredictor.runtime).join(FittedPredictor, FittedPredictor.device_id == Device.id)
    if device:
        measured, fitted = measured.where(equals(Device.name, device)), fitted.where(equals(Device.name, device))
    runtimes: dict[str, set[str]] = {}
    for name, runtime in [*session.execute(measured.distinct()), *session.execute(fitted.distinct())]:
        runtimes.setdefault(name, set()).add(runtime)
    return {name: sorted(found) for name, found in sorted(runtimes.items())}
