"""``/latency``: the latency of one block at one layer on one device, and many of them at once."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.cache import CachedLUT
from api.deps import CacheDep, MetricsDep, SettingsDep, lut_entry, parse_query, query_parameters
from api.errors import BATCH_RESPONSES, ERROR_RESPONSES, many_invalid, not_found, too_large
from api.metrics import ServiceMetrics
from api.schemas import (
    LatencyBatchCreate,
    LatencyBatchPublic,
    LatencyParams,
    LatencyPublic,
    LatencyQuery,
)
from api.validation import check_op, op_error, unmeasured_message

router = APIRouter(tags=["latency"])


def answered_by(predictor: str, measured: bool) -> str:
    """The kind that answered an entry of a table built by ``primary+fallback`` (or one kind)."""
    primary, _, fallback = predictor.partition("+")
    return primary if measured or not fallback else fallback


@router.get(
    "/latency",
    response_model=LatencyPublic,
    responses=ERROR_RESPONSES,
    openapi_extra={"parameters": query_parameters(LatencyParams)},
)
async def get_latency(request: Request) -> JSONResponse:
    """Latency in ms of ``block`` at ``layer`` on ``device``, measured where possible, else predicted."""
    # The service's hot path: one model validates the query (FastAPI spends tens of microseconds per declared
    # parameter per request) and the answer comes from the table held in memory, with no database access.
    q = parse_query(LatencyParams, request)
    check_op(q.space, q.layer, q.block, ["query"])
    state = request.app.state
    entry = await lut_entry(state.cache, (q.device, q.space, q.predictor), device_loc=["query", "device"],
                            kind_loc=["query", "predictor"])
    lut = entry.lut
    column = lut.column(q.block)
    value = float(lut.table[q.layer, column])
    if value != value:  # NaN: a lookup table without this entry
        raise not_found(["query", "predictor"], unmeasured_message(lut, q.layer, q.block))
    measured = bool(lut.measured[q.layer, column])
    iqr = float(lut.iqr[q.layer, column]) if measured else None
    answer = answered_by(lut.predictor, measured)
    state.metrics.op_predictions.labels(answer, "measured" if measured else "predicted").inc()
    return JSONResponse({
        "device": q.device, "space": q.space, "layer": q.layer, "block": q.block, "latency_ms": value,
        "predictor": answer, "measured": measured, "iqr_ms": iqr if iqr == iqr else None,
    })


@router.post("/latency/batch", response_model=LatencyBatchPublic, responses=ERROR_RESPONSES | BATCH_RESPONSES)
async def post_latency_batch(
    body: LatencyBatchCreate, cache: CacheDep, metrics: MetricsDep, settings: SettingsDep
) -> dict:
    """Many (device, space, layer, block) queries in one call; every bad query is reported at once."""
    queries = body.queries
    if len(queries) > settings.api_max_batch:
        raise too_large(["body", "queries"], len(queries), settings.api_max_batch, "queries")
    errors = []
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i, q in enumerate(queries):
        error = op_error(q.space, q.layer, q.block)
        if error is not None:
            errors.append((["body", "queries", i, error[0]], error[1]))
        else:
            groups[(q.device, q.space, q.predictor)].append(i)
    if errors:
        raise many_invalid(errors)
    results: list[dict | None] = [None] * len(queries)
    for key, members in groups.items():
        first = members[0]
        entry = await lut_entry(cache, key, device_loc=["body", "queries", first, "device"],
                                kind_loc=["body", "queries", first, "predictor"])
        _answer_group(entry, [queries[i] for i in members], members, results, metrics)
    return {"results": results}


def _answer_group(
    entry: CachedLUT, group: list[LatencyQuery], positions: list[int], results: list[dict | None],
    metrics: ServiceMetrics,
) -> None:
    """Fill ``results`` at ``positions`` with the answers to ``group`` (queries of one table), vectorized."""
    lut = entry.lut
    layers = np.fromiter((q.layer for q in group), dtype=np.intp, count=len(group))
    columns = np.fromiter((lut.column(q.block) for q in group), dtype=np.intp, count=len(group))
    values = lut.table[layers, columns]
    missing = np.flatnonzero(np.isnan(values))
    if missing.size:
        i = int(missing[0])
        raise not_found(["body", "queries", positions[i], "predictor"],
                        unmeasured_message(lut, group[i].layer, group[i].block))
    measured = lut.measured[layers, columns]
    iqr = np.where(measured, lut.iqr[layers, columns], np.nan)
    primary = answered_by(lut.predictor, True)
    fallback = answered_by(lut.predictor, False)
    n_measured = int(measured.sum())
    metrics.op_predictions.labels(primary, "measured").inc(n_measured)
    metrics.op_predictions.labels(fallback, "predicted").inc(len(group) - n_measured)
    for pos, q, value, was_measured, spread in zip(
        positions, group, values.tolist(), measured.tolist(), iqr.tolist(), strict=True
    ):
        results[pos] = {
            "device": q.device, "space": q.space, "layer": q.layer, "block": q.block, "latency_ms": value,
            "predictor": primary if was_measured else fallback, "measured": was_measured,
            "iqr_ms": spread if spread == spread else None,
        }
