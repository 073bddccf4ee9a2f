"""How the runtimes of one device compare: op latencies, whole-model accuracy, and the fusion effect.

A runtime that fuses operators (conv + batch norm + activation) or plans a whole graph changes more
than the op latencies: whether blocks timed alone add up to the network. For every runtime of a
device this reports
  - the per-op latency ratio to the reference runtime (torch where measured), over the ops both timed;
  - the sum-of-blocks bias: the measured ops of each measured whole architecture summed, against the
    architecture measured whole, as a relative error (what the model-level correction has to learn);
  - the held-out model-level accuracy of each evaluated predictor kind (``predictor.evaluate``'s
    ``model`` protocol), so the runtimes' predictors can be read side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from db.records import DEFAULT_RUNTIME
from predictor.base import create_predictor
from predictor.correction import model_sums, model_terms
from predictor.data import TrainingData
from predictor.errors import PredictorError


@dataclass(frozen=True)
class Spread:
    """Median and quartiles of ``n`` values (None without any)."""

    n: int
    median: float | None = None
    q1: float | None = None
    q3: float | None = None

    @classmethod
    def of(cls, values: np.ndarray) -> Spread:
        if values.size == 0:
            return cls(0)
        q1, median, q3 = np.percentile(values, [25, 50, 75]).tolist()
        return cls(int(values.size), median, q1, q3)


@dataclass(frozen=True)
class RuntimeComparison:
    """The runtimes of ``device`` in ``space``; ``op_ratio`` is against ``reference``, biases are in %."""

    device: str
    space: str
    reference: str
    runtimes: tuple[str, ...]
    op_ratio: dict[str, Spread]
    sum_bias_pct: dict[str, Spread]
    model_scores: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # runtime -> kind -> scores

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def op_ratio(reference: TrainingData, other: TrainingData) -> Spread:
    """``other`` / ``reference`` latency of every op both measured (median over an op's measurements)."""
    def medians(data: TrainingData) -> dict[str, float]:
        by_key: dict[str, list[float]] = {}
        for sample in data.ops:
            by_key.setdefault(sample.op.key, []).append(sample.latency_ms)
        return {key: float(np.median(values)) for key, values in by_key.items()}

    ref, oth = medians(reference), medians(other)
    shared = [key for key in ref if key in oth and ref[key] > 0 and oth[key] > 0]
    return Spread.of(np.array([oth[key] / ref[key] for key in shared]))


def sum_of_blocks_bias(data: TrainingData) -> Spread:
    """(measured ops summed - measured whole) / measured whole, in %, over whole architectures whose every op
    was measured under this runtime."""
    models = [m for m in data.models if not m.is_head and m.latency_ms > 0]
    if not models or not data.ops:
        return Spread(0)
    try:
        table = create_predictor("lookup", correction="none").fit(data.with_samples(models=()))
    except PredictorError:
        return Spread(0)
    complete = [m for m in models if table.can_predict([op for op, _ in model_terms(m.arch)]).all()]
    if not complete:
        return Spread(0)
    summed, _ = model_sums(table, [m.arch for m in complete])
    measured = np.array([m.latency_ms for m in complete])
    return Spread.of(100 * (summed - measured) / measured)


def compare_runtimes(
    data: Mapping[str, TrainingData], *, scores: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None
) -> RuntimeComparison:
    """Compare the runtimes of one device: ``data`` maps a runtime to its training data (one device, one space),
    ``scores`` (optional) a runtime to ``{kind: {protocol: Scores.to_dict()}}`` from ``predictor.evaluate``."""
    if not data:
        raise ValueError("no runtime to compare")
    first = next(iter(data.values()))
    if any((d.device, d.space) != (first.device, first.space) for d in data.values()):
        raise ValueError("runtimes are compared on one device and space")
    runtimes = tuple(sorted(data))
    reference = DEFAULT_RUNTIME if DEFAULT_RUNTIME in data else runtimes[0]
    model_scores = {
        runtime: {kind: dict(protocols["model"]) for kind, protocols in by_kind.items() if "model" in protocols}
        for runtime, by_kind in (scores or {}).items()
    }
    return RuntimeComparison(
        device=first.device, space=first.space, reference=reference, runtimes=runtimes,
        op_ratio={runtime: op_ratio(data[reference], data[runtime]) for runtime in runtimes},
        sum_bias_pct={runtime: sum_of_blocks_bias(data[runtime]) for runtime in runtimes},
        model_scores=model_scores,
    )
