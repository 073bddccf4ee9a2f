"""``/architectures/latency``: whole and split architectures on one, two or many devices."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Body

from api.cache import CachedLUT, LUTCache
from api.deps import CacheDep, MetricsDep, SettingsDep, lut_entry
from api.errors import BATCH_RESPONSES, ERROR_RESPONSES, Loc, invalid, too_large
from api.schemas import (
    ChainLatencyCreate,
    ChainLatencyPublic,
    MeshLatencyCreate,
    MeshLatencyPublic,
    MultiLatencyCreate,
    SplitLatencyBatchCreate,
    SplitLatencyBatchPublic,
    SplitLatencyCreate,
    SplitLatencyPublic,
)
from api.validation import check_measured, parse_architecture, parse_split_architectures, space_or_error
from predictor.latency import (
    ChainLatency,
    DeviceLUT,
    Link,
    SegmentLatency,
    batch_split_latency,
    chain_latency,
    mesh_latency,
    split_latency,
)
from spaces import Architecture

router = APIRouter(prefix="/architectures", tags=["architectures"])


async def _tables(
    cache: LUTCache, arch: Architecture, devices: list[str], locs: list[Loc], predictor: str, arch_loc: Loc
) -> list[CachedLUT]:
    entries = []
    for device, loc in zip(devices, locs, strict=True):
        entry = await lut_entry(cache, (device, arch.space.name, predictor), device_loc=loc,
                                kind_loc=["body", "predictor"])
        check_measured(arch, entry.lut, arch_loc)
        entries.append(entry)
    return entries


def _arch_loc(body: SplitLatencyCreate | ChainLatencyCreate | MeshLatencyCreate) -> Loc:
    return ["body", "arch" if body.arch is not None else "blocks"]


def _segment(segment: SegmentLatency, bits: int) -> dict:
    return {
        "device": segment.device, "layers": list(segment.layers), "compute_ms": segment.compute_ms,
        "payload_elements": segment.payload_elements, "payload_bytes": segment.payload_elements * bits / 8,
        "comm_ms": segment.comm_ms,
    }


@router.post("/latency", response_model=SplitLatencyPublic, responses=ERROR_RESPONSES)
async def post_split_latency(body: SplitLatencyCreate, cache: CacheDep, metrics: MetricsDep) -> dict:
    """Total, head, communication and tail latency, payload and per-layer breakdown of a split architecture."""
    space = space_or_error(body.space, ["body", "space"])
    arch = parse_architecture(body.text, space, _arch_loc(body), splits=1)
    head, tail = await _tables(
        cache, arch, [body.head_device, body.tail_device], [["body", "head_device"], ["body", "tail_device"]],
        body.predictor, _arch_loc(body),
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
        "payload_bytes": head_part.payload_elements * body.bits / 8, "per_layer": per_layer,
        "predictors": {"head": head.lut.predictor, "tail": tail.lut.predictor},
    }


@router.post(
    "/latency/multi", response_model=ChainLatencyPublic | MeshLatencyPublic, responses=ERROR_RESPONSES
)
async def post_multi_latency(
    body: Annotated[MultiLatencyCreate, Body(discriminator="topology")], cache: CacheDep, metrics: MetricsDep
) -> dict:
    """An architecture across a chain of devices, or a chain followed by a root and parallel branches (mesh)."""
    space = space_or_error(body.space, ["body", "space"])
    splits = len(body.devices) - 1 if isinstance(body, ChainLatencyCreate) else len(body.devices)
    if len(body.links) != splits:
        raise invalid(["body", "links"], f"{len(body.devices)} devices need {splits} links (one per split point, "
                      f"{'the last one the root broadcast' if body.topology == 'mesh' else 'in chain order'}), "
                      f"got {len(body.links)}")
    arch = parse_architecture(body.text, space, _arch_loc(body), splits=splits)
    devices = list(body.devices)
    locs: list[Loc] = [["body", "devices", i] for i in range(len(devices))]
    if isinstance(body, MeshLatencyCreate):
        devices += [b.device for b in body.branches]
        locs += [["body", "branches", i, "device"] for i in range(len(body.branches))]
    entries = await _tables(cache, arch, devices, locs, body.predictor, _arch_loc(body))
    luts = [e.lut for e in entries]
    links = [Link(link.bandwidth_mbps, link.bits) for link in body.links]
    metrics.architecture_predictions.labels(body.topology).inc()
    if isinstance(body, ChainLatencyCreate):
        result = chain_latency(arch, luts, links)
        return {
            "topology": "chain", "arch": arch.encode(), "total_ms": result.total_ms, "compute_ms": result.compute_ms,
            "comm_ms": result.comm_ms, "per_layer_ms": list(result.per_layer_ms),
            "segments": [_segment(s, link.bits) for s, link in zip(result.segments, [*links, links[-1]], strict=True)],
        }
    return _mesh(arch, body, luts, links)


def _mesh(arch: Architecture, body: MeshLatencyCreate, luts: list[DeviceLUT], links: list[Link]) -> dict:
    """DESIGN.md section 3: T = T_C + max over branches (compute_r + eps_r + compute_m + eps_m)."""
    n_chain = len(body.devices) - 1
    output_elements = arch.space.suffix[-1].op.payload
    paths = []
    for branch, lut in zip(body.branches, luts[len(body.devices):], strict=True):
        path = chain_latency(arch, [*luts[: len(body.devices)], lut], links)
        link = Link(branch.bandwidth_mbps, branch.bits)
        paths.append((path, float(link.transfer_ms(output_elements))))
    first = paths[0][0]
    chain_part = ChainLatency(first.segments[:n_chain], first.per_layer_ms)
    root = first.segments[n_chain]
    total = mesh_latency(chain_part, root.compute_ms, root.comm_ms, [(p.segments[-1].compute_ms, e) for p, e in paths])
    branches = [
        {
            "device": p.segments[-1].device, "compute_ms": p.segments[-1].compute_ms, "comm_ms": e,
            "path_ms": root.compute_ms + root.comm_ms + p.segments[-1].compute_ms + e,
        }
        for p, e in paths
    ]
    return {
        "topology": "mesh", "arch": arch.encode(), "total_ms": total,
        "chain": [_segment(s, link.bits) for s, link in zip(chain_part.segments, links[:n_chain], strict=True)],
        "root": _segment(root, links[-1].bits), "branches": branches,
        "critical_branch": max(branches, key=lambda b: b["path_ms"])["device"],
    }


@router.post("/latency/batch", response_model=SplitLatencyBatchPublic, responses=ERROR_RESPONSES | BATCH_RESPONSES)
async def post_split_latency_batch(
    body: SplitLatencyBatchCreate, cache: CacheDep, metrics: MetricsDep, settings: SettingsDep
) -> dict:
    """Split latency of many architectures on one head, tail and link, computed as arrays."""
    if len(body.archs) > settings.api_max_batch:
        raise too_large(["body", "archs"], len(body.archs), settings.api_max_batch, "architectures")
    space = space_or_error(body.space, ["body", "space"])
    head = await lut_entry(cache, (body.head_device, space.name, body.predictor),
                           device_loc=["body", "head_device"], kind_loc=["body", "predictor"])
    tail = await lut_entry(cache, (body.tail_device, space.name, body.predictor),
                           device_loc=["body", "tail_device"], kind_loc=["body", "predictor"])
    indices, splits = parse_split_architectures(body.archs, space, head.lut.blocks, ["body", "archs"])
    rows = np.arange(indices.shape[1])[None, :]
    for entry in (head, tail):
        missing = np.isnan(entry.lut.table[rows, indices]).any(axis=1)
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            check_measured(Architecture.parse(body.archs[i], space), entry.lut, ["body", "archs", i])
    result = batch_split_latency(indices, splits, head.lut, tail.lut, Link(body.bandwidth_mbps, body.bits))
    metrics.architecture_predictions.labels("batch").inc(len(body.archs))
    return {
        "head_device": body.head_device, "tail_device": body.tail_device, "count": len(body.archs),
        "total_ms": result["total_ms"].tolist(), "head_ms": result["head_ms"].tolist(),
        "comm_ms": result["comm_ms"].tolist(), "tail_ms": result["tail_ms"].tolist(),
        "payload_bytes": (result["payload_elements"] * (body.bits / 8)).tolist(),
    }

