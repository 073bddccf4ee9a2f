"""``/devices``: the devices with measurements or predictors in the database."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter

from api.deps import SessionDep
from api.schemas import DevicePublic
from db import queries

router = APIRouter(prefix="/devices", tags=["devices"])


@router.get("", response_model=list[DevicePublic])
def get_devices(session: SessionDep) -> list[dict]:
    """Every device, with how many distinct keys are measured per space and which predictors are fitted."""
    devices = []
    for device in queries.list_devices(session):
        measured: Counter[str] = Counter()
        for (space, _target), count in queries.coverage(session, device=device.name).items():
            measured[space or "(configurations)"] += count
        predictors = sorted(f"{p.space}/{p.kind}" for p in queries.latest_predictors(session, device=device.name))
        devices.append({
            "name": device.name, "kind": device.kind, "description": device.description, "facts": device.facts,
            "measurements": dict(measured), "predictors": predictors,
        })
    return devices
