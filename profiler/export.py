"""Writing measurements as CSV or JSON."""

from __future__ import annotations

import csv
import json
from typing import Any, TextIO

from sqlalchemy.orm import Session

from db import queries

COLUMNS = (
    "device", "run_uid", "target", "key", "space", "layer", "block", "op_key", "latency_ms", "iqr_ms", "mean_ms",
    "min_ms", "repeats", "noisy", "energy_mj", "flops", "source", "created_at", "config",
)
FORMATS = ("csv", "json")


def measurement_dicts(
    session: Session, *, device: str | None = None, space: str | None = None, target: str | None = None,
    run_uid: str | None = None, latest: bool = False,
) -> list[dict[str, Any]]:
    """The matching measurements as flat dicts; with ``latest`` only the newest row per (device, key)."""
    rows = []
    for measurement, device_name, uid in queries.measurement_rows(
        session, device=device, space=space, target=target, run_uid=run_uid
    ):
        row = {name: getattr(measurement, name, None) for name in COLUMNS}
        row.update(device=device_name, run_uid=uid, created_at=measurement.created_at.isoformat())
        rows.append(row)
    if latest:
        rows = list({(r["device"], r["key"]): r for r in rows}.values())
    return rows


def write_measurements(rows: list[dict[str, Any]], out: TextIO, *, fmt: str = "csv") -> None:
    """Write rows as CSV (``config`` as a JSON string) or as a JSON list."""
    if fmt == "json":
        json.dump(rows, out, indent=1)
        out.write("\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "config": json.dumps(row["config"], sort_keys=True)})
    else:
        raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
