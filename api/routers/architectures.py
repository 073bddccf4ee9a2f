"""``/architectures/latency``: split architectures on two devices, and on a chain or mesh of devices."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter

from api.cache import CachedLUT, LUTCache
from api.deps import CacheDep, MetricsDep, SettingsDep, lut_entry
from api.errors import BATCH_RESPONSES, BODY_RESPONSES, ERROR_RESPONSES, Loc, invalid, too_large
from api.schemas import (
    SplitLatencyBatchCreate,
    SplitLatencyBatchPublic,
    SplitLatencyCreate,
    SplitLatencyPublic,
    TopologyLatencyCreate,
    TopologyLatencyPublic,
)
from api.validation import check_measured, parse_architecture, parse_split_architectures, space_or_error
from predictor.latency import DeviceLUT, Link, batch_split_latency, split_latency
from predictor.topology import TopologyError, completion_latency, topology_luts
from predictor.topology_file import parse_topology
from spaces import Architecture

router = APIRouter(prefix="/architectures", tags=["architectures"])


async def _tables(
    cache: LUTCache, arch: Architecture, devices: list[str], locs: list[Loc], predictor: str, runtime: str | None,
    arch_loc: Loc,
) -> list[CachedLUT]:
    entries = []
    for device, loc in zip(devices, locs, strict=True):
        entry = await lut_entry(cache, (device, runtime, arch.space.name, predictor), device_loc=loc,
                                kind_loc=["body", "predictor"])
        check_measured(arch, entry.lut, arch_loc)
        entries.append(entry)
    return entries


def _arch_loc(body: SplitLatencyCreate | TopologyLatencyCreate) -> Loc:
    return ["body", "arch" if body.arch is not None else "blocks"]


@router.post("/latency", response_model=SplitLatencyPublic, responses=ERROR_RESPONSES | BODY_RESPONSES)
async def post_split_latency(body: SplitLatencyCreate, cache: CacheDep, metrics: MetricsDep) -> dict:
    """Total, head, communication and tail latency, payload and per-layer breakdown of a split architecture."""
    space = space_or_error(body.space, ["body", "space"])
    arch = parse_architecture(body.text, space, _arch_loc(body), splits=1)
    head, tail = await _tables(
        cache, arch, [body.head_device, body.tail_device], [["body", "head_device"], ["body", "tail_device"]],
        body.predictor, body.runtime, _arch_loc(body),
    )
    result = split_latency(arch, head.lut, tail.lut, Link(body.bandwidth_mbps, body.bits))
    head_part, tail_part = result.segments
    inside = arch.split > 0 and arch.layer_ops[arch.split - 1].front_share < 1.0
    per_layer = [
        {
            "layer": layer, "block": block, "latency_ms": ms,
            "device": f"{head.lut.device}+{tail.lut.device}" if inside and layer == arch.split - 1
            else head.lut.device if layer < arch.split else tail.lut.device,
        }
        for layer, (block, ms) in enumerate(zip(arch.blocks, result.per_layer_ms, strict=True))
    ]
    metrics.architecture_predictions.labels("split").inc()
    return {
        "arch": arch.encode(), "split": arch.split, "head_device": body.head_device, "tail_device": body.tail_device,
        "total_ms": result.total_ms, "head_ms": head_part.compute_ms, "comm_ms": head_part.comm_ms,
        "tail_ms": tail_part.compute_ms, "payload_elements": head_part.payload_elements,
        "payload_bytes": head_part.payload_bytes, "per_layer": per_layer,
        "predictors": {"head": head.lut.predictor, "tail": tail.lut.predictor},
        "runtimes": {"head": head.lut.runtime, "tail": tail.lut.runtime},
    }


@router.post("/latency/multi", response_model=TopologyLatencyPublic, responses=ERROR_RESPONSES | BODY_RESPONSES)
async def post_topology_latency(body: TopologyLatencyCreate, cache: CacheDep, metrics: MetricsDep) -> dict:
    """Completion latency of an architecture on a chain or mesh of devices (the topology document of
    ``nas search --topology``), with its segments, branch terms, critical branch and payload."""
    space = space_or_error(body.space, ["body", "space"])
    arch_loc = _arch_loc(body)
    try:
        topology = parse_topology(body.document(), source="body")
    except TopologyError as exc:
        raise invalid(["body", *exc.loc], str(exc)) from None
    n_layers = len(space.layers)
    explicit = body.splits is not None or (body.arch is not None and "@" in body.arch)
    arch = parse_architecture(body.text, space, arch_loc, splits=topology.n_splits if explicit else 0)
    try:
        arch = arch if explicit else arch.with_splits(*topology.splits(n_layers))
        topology.check_splits(arch.splits, n_layers, where="arch" if body.arch is not None else "splits")
    except TopologyError as exc:
        raise invalid(["body", *exc.loc] if exc.loc[:1] == ["assignment"] else arch_loc, str(exc)) from None
    fetched: dict[str, DeviceLUT] = {}
    for i, spec in enumerate(topology.devices):
        if spec.device not in fetched:
            entry = await lut_entry(cache, (spec.device, body.runtime, space.name, body.predictor),
                                    device_loc=["body", "devices", i, "device"], kind_loc=["body", "predictor"])
            check_measured(arch, entry.lut, arch_loc)
            fetched[spec.device] = entry.lut
    luts = topology_luts(topology, fetched.__getitem__)
    metrics.architecture_predictions.labels(topology.kind).inc()
    return {
        "topology": topology.kind, "name": topology.name, "arch": arch.encode(),
        **completion_latency(arch, topology, luts).to_dict(),
        "predictors": {name: lut.predictor for name, lut in luts.items()},
        "runtimes": {name: lut.runtime for name, lut in luts.items()},
    }


@router.post("/latency/batch", response_model=SplitLatencyBatchPublic, responses=ERROR_RESPONSES | BATCH_RESPONSES)
async def post_split_latency_batch(
    body: SplitLatencyBatchCreate, cache: CacheDep, metrics: MetricsDep, settings: SettingsDep
) -> dict:
    """Split latency of many architectures on one head, tail and link, computed as arrays."""
    if len(body.archs) > settings.api_max_batch:
        raise too_large(["body", "archs"], len(body.archs), settings.api_max_batch, "architectures")
    space = space_or_error(body.space, ["body", "space"])
    head = await lut_entry(cache, (body.head_device, body.runtime, space.name, body.predictor),
                           device_loc=["body", "head_device"], kind_loc=["body", "predictor"])
    tail = await lut_entry(cache, (body.tail_device, body.runtime, space.name, body.predictor),
                           device_loc=["body", "tail_device"], kind_loc=["body", "predictor"])
    indices, splits = parse_split_architectures(body.archs, space, head.lut.blocks, ["body", "archs"])
    rows = np.arange(indices.shape[1])[None, :]
    for entry in (head, tail):
        missing = np.isnan(entry.lut.table[rows, indices]).any(axis=1)
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            check_measured(Architecture.parse(body.archs[i], space), entry.lut, ["body", "archs", i])
    link = Link(body.bandwidth_mbps, body.bits)
    result = batch_split_latency(indices, splits, head.lut, tail.lut, link)
    metrics.architecture_predictions.labels("batch").inc(len(body.archs))
    return {
        "head_device": body.head_device, "tail_device": body.tail_device,
        "runtimes": {"head": head.lut.runtime, "tail": tail.lut.runtime}, "count": len(body.archs),
        "total_ms": result["total_ms"].tolist(), "head_ms": result["head_ms"].tolist(),
        "comm_ms": result["comm_ms"].tolist(), "tail_ms": result["tail_ms"].tolist(),
        "payload_bytes": link.payload_bytes(result["payload_elements"]).tolist(),
    }

