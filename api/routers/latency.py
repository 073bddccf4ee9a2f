"""``/latency``: the latency of one block at one layer on one device, and many of them at once."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from fastapi import APIRouter, Request, Response

from api.cache import CachedLUT, answered_by
from api.deps import CacheDep, MetricsDep, SettingsDep, lut_entry, parse_query, query_parameters
from api.errors import BATCH_RESPONSES, ERROR_RESPONSES, Loc, many_invalid, not_found, too_large
from api.metrics import ServiceMetrics
from api.schemas import LatencyBatchCreate, LatencyBatchPublic, LatencyPublic, LatencyQuery
from api.validation import check_op, op_error, unmeasured_message

router = APIRouter(tags=["latency"])


@router.get(
    "/latency",
    response_model=LatencyPublic,
    responses=ERROR_RESPONSES,
    openapi_extra={"parameters": query_parameters(LatencyQuery)},
)
async def get_latency(request: Request) -> Response:
    """Latency in ms of ``block`` at ``layer`` on ``device`` (under ``runtime``, default its only one), measured
    where possible, else predicted."""
    # The service's hot path: one model validates the query (FastAPI spends tens of microseconds per declared
    # parameter per request) and the answer comes from the table held in memory, with no database access.
    q = parse_query(LatencyQuery, request)
    state = request.app.state
    key = (q.device, q.runtime, q.space, q.predictor)
    entry = state.cache.fresh(key)
    if entry is None:
        check_op(q.space, q.layer, q.block, ["query"])  # unknown names never reach the database
        entry = await lut_entry(state.cache, key, device_loc=["query", "device"], kind_loc=["query", "predictor"])
    answer = entry.answers.get((q.layer, q.block))
    if answer is None:
        check_op(q.space, q.layer, q.block, ["query"])
        raise not_found(["query", "predictor"], unmeasured_message(entry.lut, q.layer, q.block))
    state.metrics.count_op(answer.predictor, answer.source)
    return Response(answer.body, media_type="application/json")


@router.post("/latency/batch", response_model=LatencyBatchPublic, responses=ERROR_RESPONSES | BATCH_RESPONSES)
async def post_latency_batch(
    body: LatencyBatchCreate, cache: CacheDep, metrics: MetricsDep, settings: SettingsDep
) -> dict:
    """Many (device, space, layer, block) queries in one call; every bad query is reported at once."""
    queries = body.queries
    if len(queries) > settings.api_max_batch:
        raise too_large(["body", "queries"], len(queries), settings.api_max_batch, "queries")
    errors: list[tuple[Loc, str]] = []
    groups: dict[tuple[str, str | None, str, str], list[int]] = defaultdict(list)
    for i, q in enumerate(queries):
        error = op_error(q.space, q.layer, q.block)
        if error is not None:
            errors.append((["body", "queries", i, error[0]], error[1]))
        else:
            groups[(q.device, q.runtime, q.space, q.predictor)].append(i)
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
    primary, fallback = answered_by(lut.predictor, True), answered_by(lut.predictor, False)
    n_measured = int(measured.sum())
    counts = ((primary, "measured", n_measured), (fallback, "predicted", len(group) - n_measured))
    for predictor, source, count in counts:
        if count:
            metrics.op_predictions.labels(predictor, source).inc(count)
    for pos, q, value, was_measured, spread in zip(
        positions, group, values.tolist(), measured.tolist(), iqr.tolist(), strict=True
    ):
        results[pos] = {
            "device": q.device, "runtime": lut.runtime, "space": q.space, "layer": q.layer, "block": q.block,
            "latency_ms": value, "predictor": primary if was_measured else fallback, "measured": was_measured,
            "iqr_ms": spread if spread == spread else None,
        }
