"""Factories for measurement records and small synthetic devices written through db.queries.ingest_batch.

Synthetic latencies follow a known formula (``synthetic_ms``) so that tests can compare fitted
predictors against hand-computed values; they are generated data, not measurements of this machine.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence

from db import queries
from db.engine import session_scope
from db.records import DEFAULT_RUNTIME, E2ERecord, MeasurementBatch, MeasurementRecord, RunRecord
from spaces import Architecture, Op, get_space, sample_architecture

LatencyFn = Callable[[Op], float]


def synthetic_ms(op: Op, *, gflops: float = 2.0, overhead_ms: float = 0.02, ns_per_element: float = 0.5) -> float:
    """A plausible CPU latency: a fixed overhead, FLOPs at ``gflops``, and memory traffic."""
    if op.is_identity:
        return 0.001
    return overhead_ms + op.flops / (gflops * 1e6) + op.activation_elements * ns_per_element * 1e-6


def make_run(
    device: str, *, uid: str | None = None, status: str = "completed", kind: str = "cpu", runtime: str = DEFAULT_RUNTIME
) -> RunRecord:
    return RunRecord(uid=uid or uuid.uuid4().hex, device=device, device_kind=kind, status=status, runtime=runtime)


def block_records(
    space: str, latency: LatencyFn | Mapping[tuple[int, str], float], *, source: str = "measured",
    iqr_fraction: float = 0.01,
) -> list[MeasurementRecord]:
    """One ``block`` record per (layer, block) of ``space`` (or per key of a {(layer, block): ms} dict)."""
    s = get_space(space)
    if isinstance(latency, Mapping):
        entries = [(layer, block, ms) for (layer, block), ms in latency.items()]
    else:
        entries = [(layer.index, b.name, latency(layer.op(b))) for layer in s.layers for b in layer.blocks]
    return [
        MeasurementRecord(
            target="block", key=f"{space}/L{layer}/{block}", space=space, layer=layer, block=block,
            op_key=s.op(layer, block).key, latency_ms=ms, iqr_ms=ms * iqr_fraction, source=source,
            flops=s.op(layer, block).flops,
        )
        for layer, block, ms in entries
    ]


def fixed_records(space: str, latency: LatencyFn, *, source: str = "measured") -> list[MeasurementRecord]:
    s = get_space(space)
    return [
        MeasurementRecord(target="fixed", key=f"{space}/{f.name}", space=space, op_key=f.op.key,
                          latency_ms=latency(f.op), source=source)
        for f in s.fixed_layers
    ]


def config_ops(n: int, *, seed: int = 0) -> list[Op]:
    """``n`` distinct random FBNet-style block configurations (shapes outside or inside the space)."""
    rng = random.Random(seed)
    ops: dict[str, Op] = {}
    while len(ops) < n:
        h = rng.choice([4, 8, 16, 32])
        cin, cout = rng.choice([16, 24, 32, 48, 64, 96, 112, 184]), rng.choice([16, 24, 32, 64, 112, 184, 352])
        stride = rng.choice([1, 1, 2])
        if rng.random() < 0.1:
            op = Op("skip", h, cin, cout, stride)
        else:
            op = Op("conv", h, cin, cout, stride, rng.choice([3, 5]), rng.choice([1, 3, 6]), rng.choice([1, 2]),
                    residual=stride == 1 and cin == cout)
            if op.groups == 2 and op.expansion != 1:
                continue
        ops.setdefault(op.key, op)
    return list(ops.values())


def config_records(ops: Iterable[Op], latency: LatencyFn, *, space: str | None = None) -> list[MeasurementRecord]:
    return [
        MeasurementRecord(target="config", key=op.key, space=space, op_key=op.key, latency_ms=latency(op),
                          config={"kind": op.kind, "h": op.h, "cin": op.cin, "cout": op.cout, "stride": op.stride,
                                  "kernel": op.kernel, "expansion": str(op.expansion), "groups": op.groups,
                                  "residual": op.residual})
        for op in ops
    ]


def model_records(archs: Iterable[Architecture], latency: Callable[[Architecture], float]) -> list[MeasurementRecord]:
    return [
        MeasurementRecord(target="model", key=f"{a.space.name}/{a.encode()}", space=a.space.name,
                          config={"arch": ",".join(a.blocks), "split": a.splits[0] if a.splits else None},
                          latency_ms=latency(a))
        for a in archs
    ]


def sample_archs(space: str, n: int, *, seed: int = 0, heads: bool = False) -> list[Architecture]:
    """``n`` distinct random architectures, each with one random head (``@k``) when ``heads``."""
    rng = random.Random(seed)
    archs: dict[str, Architecture] = {}
    while len(archs) < n:
        arch = sample_architecture(space, rng)
        archs.setdefault(arch.encode(), arch)
    result = list(archs.values())
    if heads:
        result += [a.with_splits(rng.randrange(1, len(a.blocks) + 1)) for a in list(result)]
    return result


def ingest(db_url: str, device: str, records: Sequence[MeasurementRecord], *, uid: str | None = None,
           kind: str = "cpu", runtime: str = DEFAULT_RUNTIME) -> tuple[int, int]:
    """Store ``records`` as one run of ``device`` under ``runtime``; returns (inserted, already present)."""
    batch = MeasurementBatch(run=make_run(device, uid=uid, kind=kind, runtime=runtime), measurements=list(records))
    with session_scope(db_url) as session:
        return queries.ingest_batch(session, batch=batch)


def e2e_record(head: str, p50_ms: float, predicted_ms: float, space: str = "fbnet-cifar100") -> E2ERecord:
    """A stored end-to-end run of a two-device split (``head`` -> ``server``) with the given p50 and prediction."""
    part = {"p50_ms": 1.0, "p90_ms": 1.2, "predicted_ms": 1.0}
    return E2ERecord(job="nasc-test", space=space, devices=[head, "server"], runtime="onnxruntime",
                     architecture=["k3_e1"] * 22, splits=[5], codec="float32", transport="tcp", loss=0.0, requests=10,
                     payload_bytes=4096, throughput_mbps=8.0, p50_ms=p50_ms, p90_ms=p50_ms * 1.1,
                     predicted_ms=predicted_ms, parts=[part | {"index": 0, "device": head},
                                                       part | {"index": 1, "device": "server"}])

