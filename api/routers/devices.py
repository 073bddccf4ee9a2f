"""``/devices``: the devices with measurements or predictors in the database."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from api.deps import SessionDep
from api.schemas import DevicePublic
from db import queries

router = APIRouter(prefix="/devices", tags=["devices"])


def _holdings(session: Session, device: str, runtime: str | None = None) -> dict[str, Any]:
    """Distinct measured keys per space and fitted predictors ('space/kind') of ``device`` (under ``runtime``)."""
    measured: Counter[str] = Counter()
    for (space, _target), count in queries.coverage(session, device=device, runtime=runtime).items():
        measured[space or "(configurations)"] += count
    fitted = queries.latest_predictors(session, device=device, runtime=runtime)
    return {"measurements": dict(measured), "predictors": sorted({f"{p.space}/{p.kind}" for p in fitted})}


@router.get("", response_model=list[DevicePublic])
def get_devices(session: SessionDep) -> list[dict]:
    """Every device, with how many distinct keys are measured per space and which predictors are fitted, in all
    and per runtime."""
    runtimes = queries.device_runtimes(session)
    return [
        {"name": device.name, "kind": device.kind, "description": device.description, "facts": device.facts,
         **_holdings(session, device.name),
         "runtimes": [{"name": runtime, **_holdings(session, device.name, runtime)}
                      for runtime in runtimes.get(device.name, [])]}
        for device in queries.list_devices(session)
    ]
