"""What the database holds: devices, profiling runs, and how much of each space is measured per device."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from db import queries
from spaces import SpaceError, get_space


def space_coverage(counts: dict[tuple[str | None, str], int]) -> list[dict[str, Any]]:
    """Per space: measured (layer, block) pairs and fixed layers against the space's totals, configs, models."""
    rows = []
    for space_name in sorted({space for space, _ in counts if space}):
        try:
            space = get_space(space_name)
        except SpaceError:
            continue
        blocks_total = sum(len(layer.blocks) for layer in space.layers)
        blocks = counts.get((space_name, "block"), 0)
        rows.append({
            "space": space_name,
            "blocks": blocks,
            "blocks_total": blocks_total,
            "fixed": counts.get((space_name, "fixed"), 0),
            "fixed_total": len(space.fixed_layers),
            "configs": counts.get((space_name, "config"), 0),
            "models": counts.get((space_name, "model"), 0),
            "complete": blocks == blocks_total and counts.get((space_name, "fixed"), 0) == len(space.fixed_layers),
        })
    return rows


def inventory(session: Session, *, device: str | None = None) -> dict[str, Any]:
    """Devices (with their facts), runs (with measurement counts) and coverage, as JSON-able dicts."""
    devices = [d for d in queries.list_devices(session) if device is None or d.name == device]
    counts = queries.run_measurement_counts(session)
    runs = [
        {
            "uid": run.uid, "device": run.device.name, "status": run.status, "host": run.host,
            "environment_key": run.environment_key, "measurements": counts.get(run.uid, 0),
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        }
        for run in queries.list_runs(session, device=device)
    ]
    return {
        "devices": [
            {
                "name": d.name, "kind": d.kind, "description": d.description, "facts": d.facts,
                "coverage": space_coverage(queries.coverage(session, device=d.name)),
            }
            for d in devices
        ],
        "runs": runs,
    }
