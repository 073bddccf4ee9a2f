"""Databases for the service's tests: synthetic devices (``factories.synthetic_ms`` at a device speed), fitted.

The latencies are generated from a known formula, not measured; they give the service realistic shapes
(every layer, block and fixed layer of a space) and values that tests can recompute.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import httpx

from db import queries
from db.engine import get_engine, session_scope
from db.records import MeasurementBatch, MeasurementRecord
from predictor import fit_predictors
from tests.utils.factories import block_records, fixed_records, ingest, make_run, synthetic_ms

SPACE = "fbnet-cifar100"
FAST_KINDS = ("lookup", "flops-linear")  # gbdt takes seconds to fit and evaluate on this machine
# device -> GFLOPS of its synthetic latency formula
DEVICES = {"raspi4": 1.5, "edgegpu": 20.0}
# entries left unmeasured on edgegpu, so that "auto" answers them with a fitted predictor
UNMEASURED = {("edgegpu", 5, "k5_e6"), ("edgegpu", 21, "k3_e6")}  # layer shapes that occur once


def device_records(device: str, *, gflops: float, space: str = SPACE,
                   skip: Iterable[tuple[int, str]] = ()) -> list[MeasurementRecord]:
    """Block and fixed-layer records of ``device`` for every (layer, block) of ``space`` but ``skip``."""
    latency = partial(synthetic_ms, gflops=gflops)
    skipped = set(skip)
    blocks = [r for r in block_records(space, latency) if (r.layer, r.block) not in skipped]
    return blocks + fixed_records(space, latency)


def measurement_batch(device: str, records: list[MeasurementRecord], *, uid: str | None = None) -> dict:
    """The JSON body an agent uploads to ``POST /measurements``."""
    batch = MeasurementBatch(run=make_run(device, uid=uid or uuid.uuid4().hex), measurements=records)
    return batch.model_dump(mode="json")


def upload(client: httpx.Client, device: str, records: list[MeasurementRecord], headers: dict[str, str], *,
           chunk: int = 50, uid: str | None = None) -> tuple[int, int]:
    """Upload ``records`` as one run in batches of ``chunk``, as an agent does; returns (inserted, duplicates)."""
    uid = uid or uuid.uuid4().hex
    inserted = duplicates = 0
    for start in range(0, len(records), chunk):
        response = client.post("/measurements", json=measurement_batch(device, records[start:start + chunk], uid=uid),
                               headers=headers)
        response.raise_for_status()
        inserted += response.json()["inserted"]
        duplicates += response.json()["duplicates"]
    return inserted, duplicates


def fit(db_url: str, device: str, kinds: Iterable[str] = FAST_KINDS, *, space: str = SPACE) -> None:
    with session_scope(db_url) as session:
        fit_predictors(session, device=device, space=space, kinds=list(kinds))


def build_service_db(db_url: str) -> None:
    """Every device of DEVICES measured (edgegpu without UNMEASURED) and fitted with FAST_KINDS."""
    for device, gflops in DEVICES.items():
        skip = [(layer, block) for d, layer, block in UNMEASURED if d == device]
        ingest(db_url, device, device_records(device, gflops=gflops, skip=skip), kind="cpu")
        fit(db_url, device)


def create_token(db_url: str, name: str, device: str | None = None) -> str:
    with session_scope(db_url) as session:
        return queries.create_token(session, name=name, device=device)


def copy_sqlite(source_url: str, target: Path) -> str:
    """A copy of the SQLite database at ``source_url`` as ``target``; returns its URL."""
    get_engine(source_url).dispose()  # closes the pooled connections: the WAL is checkpointed into the file
    shutil.copyfile(source_url.removeprefix("sqlite:///"), target)
    return f"sqlite:///{target}"
