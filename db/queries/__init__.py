"""Every query the project makes, as keyword-only functions over a Session, one module per table.

``from db import queries`` reaches them all (``queries.ingest_batch(session, batch=...)``); they live in
``devices``, ``runs``, ``measurements``, ``predictors``, ``jobs`` (with sweeps), ``tokens`` and ``e2e``
(and ``health``'s ping).
"""

from __future__ import annotations

from db.queries.devices import (
    data_fingerprint,
    device_names,
    device_runtimes,
    get_device,
    get_or_create_device,
    list_devices,
)
from db.queries.e2e import add_e2e, e2e_records, list_e2e
from db.queries.health import ping
from db.queries.jobs import (
    append_job_history,
    create_job,
    ensure_sweep,
    finish_job,
    get_job,
    get_sweep,
    interrupt_sweep,
    list_jobs,
    list_sweeps,
)
from db.queries.measurements import (
    coverage,
    ingest_batch,
    latest_measurements,
    list_measurements,
    measured_keys,
    measurement_rows,
)
from db.queries.predictors import latest_predictors, save_predictor
from db.queries.runs import get_run, list_runs, run_measurement_counts, upsert_run
from db.queries.tokens import create_token, find_token, get_token, list_tokens, revoke_token

__all__ = [
    "add_e2e", "append_job_history", "coverage", "create_job", "create_token", "data_fingerprint", "device_names",
    "device_runtimes", "e2e_records", "ensure_sweep", "find_token", "finish_job", "get_device", "get_job",
    "get_or_create_device", "get_run", "get_sweep", "get_token", "interrupt_sweep", "list_sweeps",
    "ingest_batch", "latest_measurements", "latest_predictors", "list_devices", "list_e2e", "list_jobs",
    "list_measurements", "list_runs", "list_tokens", "measured_keys", "measurement_rows", "ping",
    "revoke_token", "run_measurement_counts", "save_predictor", "upsert_run",
]
