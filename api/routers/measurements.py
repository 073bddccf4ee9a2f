"""``/measurements``: agents' batched uploads (idempotent, device-scoped tokens) and filtered downloads."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import StreamingResponse

from api.deps import CacheDep, MetricsDep, SessionDep, SettingsDep, TokenDep, check_device_known
from api.errors import (
    AUTH_RESPONSES,
    BATCH_RESPONSES,
    ERROR_RESPONSES,
    WRITE_RESPONSES,
    FieldError,
    Loc,
    many_invalid,
    not_found,
    responses,
    too_large,
)
from api.schemas import ErrorPublic, MeasurementPublic, UploadPublic
from api.validation import space_or_error
from db import queries
from db.engine import session_scope
from db.models import Measurement
from db.records import MeasurementBatch, RuntimeName, Target

router = APIRouter(prefix="/measurements", tags=["measurements"])

CSV_PAGE = 2000
UPLOAD_EXAMPLES = {
    "agent batch": {
        "summary": "what `profiler run --server ... --token ...` sends",
        "value": {
            "run": {"uid": "3f2c9a1e-raspi4-0001", "device": "raspi4", "device_kind": "cpu", "host": "pi-lab-1",
                    "status": "running"},
            "measurements": [
                {"target": "block", "key": "fbnet-cifar100/L7/k5_e6", "space": "fbnet-cifar100", "layer": 7,
                 "block": "k5_e6", "latency_ms": 1.91, "iqr_ms": 0.01, "repeats": 120},
                {"target": "fixed", "key": "fbnet-cifar100/stem", "space": "fbnet-cifar100", "latency_ms": 0.42},
            ],
        },
    }
}
COLUMNS = list(MeasurementPublic.model_fields)


@router.post(
    "",
    status_code=201,
    response_model=UploadPublic,
    responses=responses(
        {
            200: {"model": UploadPublic, "description": "nothing new: every measurement was already stored"},
            409: {"model": ErrorPublic, "description": "the run uid belongs to another device or runtime"},
        },
        ERROR_RESPONSES, AUTH_RESPONSES, BATCH_RESPONSES, WRITE_RESPONSES,
    ),
)
def post_measurements(
    batch: Annotated[MeasurementBatch, Body(openapi_examples=UPLOAD_EXAMPLES)], token: TokenDep, session: SessionDep,
    cache: CacheDep, metrics: MetricsDep, settings: SettingsDep, response: Response,
) -> dict:
    """Store an agent's run and measurements; re-uploading the same run stores nothing twice.

    The whole batch is validated before anything is written: one bad record rejects the batch.
    """
    token.check_device(batch.run.device, ["body", "run", "device"])
    if len(batch.measurements) > settings.api_max_batch:
        raise too_large(["body", "measurements"], len(batch.measurements), settings.api_max_batch, "measurements")
    zeros: list[tuple[Loc, str]] = [
        (["body", "measurements", i, "latency_ms"], "latency_ms must be positive (finite, > 0), got 0")
        for i, record in enumerate(batch.measurements)
        if record.latency_ms == 0
    ]
    if zeros:
        raise many_invalid(zeros)
    try:
        inserted, duplicates = queries.ingest_batch(session, batch=batch)
    except ValueError as exc:  # the run uid exists for another device
        raise FieldError(409, ["body", "run", "uid"], str(exc), "conflict") from None
    session.commit()  # before the cache is told: a reader must find the new rows when it rebuilds
    cache.invalidate(batch.run.device)
    metrics.uploaded.labels("inserted").inc(inserted)
    metrics.uploaded.labels("duplicate").inc(duplicates)
    response.status_code = 201 if inserted else 200
    return {"inserted": inserted, "duplicates": duplicates}


def _public(row: Measurement, device: str, run: str) -> dict:
    fields = {name: getattr(row, name) for name in COLUMNS if name not in ("device", "run", "runtime")}
    return fields | {"device": device, "run": run, "runtime": row.run.runtime}


@router.get(
    "",
    response_model=list[MeasurementPublic],
    responses=responses({200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
                        ERROR_RESPONSES),
)
def get_measurements(
    session: SessionDep,
    settings: SettingsDep,
    device: Annotated[str | None, Query(description="only this device")] = None,
    space: Annotated[str | None, Query(description="only this space")] = None,
    run: Annotated[str | None, Query(description="only this run (its uid)")] = None,
    target: Annotated[Target | None, Query(description="only this kind: block, fixed, config or model")] = None,
    runtime: Annotated[RuntimeName | None, Query(description="only this runtime's measurements")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="csv streams every matching row")] = "json",
    limit: Annotated[int, Query(ge=1, le=10_000, description="rows per JSON page")] = 1000,
    after_id: Annotated[int, Query(ge=0, description="next JSON page: the last id of the previous one")] = 0,
) -> list[dict] | StreamingResponse:
    """Measurements in id order, filtered by device, space, run, target and runtime."""
    if device is not None:
        check_device_known(session, device, ["query", "device"])
    if space is not None:
        space_or_error(space, ["query", "space"])
    if run is not None and queries.get_run(session, uid=run) is None:
        raise not_found(["query", "run"], f"unknown run {run!r}; list runs with GET /measurements?device=...")
    filters = {"device": device, "space": space, "target": target, "run_uid": run, "runtime": runtime}
    if format == "json":
        rows = queries.measurement_rows(session, **filters, limit=limit, after_id=after_id)
        return [_public(*row) for row in rows]
    return StreamingResponse(
        _csv_lines(settings.resolved_database_url(), filters, after_id),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="measurements.csv"'},
    )


def _csv_lines(database_url: str, filters: dict, after_id: int) -> Iterator[str]:
    """The CSV header, then pages of rows read in their own session (the request's closes before streaming)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    while True:
        with session_scope(database_url) as session:
            rows = queries.measurement_rows(session, **filters, limit=CSV_PAGE, after_id=after_id)
            records = [_public(*row) for row in rows]  # in the session: a row's run is read with it
        for record in records:
            writer.writerow(record | {"config": json.dumps(record["config"])})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < CSV_PAGE:
            return
        after_id = rows[-1][0].id
