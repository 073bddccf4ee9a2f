"""Quality of a predictor kind on data held out from fitting (DESIGN.md section 4).

Protocols, each on one device's training data:
  - ``entry``: k-fold over the measured (layer, block) entries, grouped by op so that an op measured at
    several layers of the same shape is never on both sides;
  - ``layer``: leave one layer configuration (input size, channels, stride) out, with every sampled
    configuration of that shape;
  - ``config``: k-fold over the sampled extra configurations (fitted on the space and the other configs);
  - ``model`` / ``head``: k-fold over measured architectures (a model and its heads stay together): the
    op-level fit uses every op, the model-level correction (predictor.correction) only the training
    architectures; ``model-raw`` is the same without the correction;
  - ``arch-sum``: without measured architectures, random architectures whose reference is the sum of
    the measured table (HW-NAS-Bench's definition of an architecture's latency), predicted from the
    ``entry`` out-of-fold predictions.
Relative metrics skip measured zeros (identity skips in imported tables).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from predictor.base import LatencyPredictor, create_predictor
from predictor.correction import fit_correction, model_sums, model_terms
from predictor.data import OpSample, TrainingData
from predictor.errors import PredictorError
from spaces import Op, get_space, sample_architecture

PROTOCOLS = ("entry", "layer", "config", "model", "model-raw", "head", "arch-sum")
# the steps an evaluation reports to its ``progress`` callback, in order ("model" scores model, model-raw and head)
PROTOCOL_STEPS = ("entry", "layer", "config", "model", "arch-sum")


@dataclass(frozen=True)
class Scores:
    """Accuracy of ``n`` answered predictions out of ``total`` asked."""

    n: int
    total: int
    rmse_ms: float | None = None
    mape: float | None = None
    within_5: float | None = None
    within_10: float | None = None
    spearman: float | None = None
    kendall: float | None = None
    note: str = ""

    @property
    def coverage(self) -> float:
        return self.n / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"coverage": self.coverage}


def score(measured: Sequence[float], predicted: Sequence[float], *, total: int | None = None) -> Scores:
    """RMSE, MAPE, share within +-5 % and +-10 %, Spearman and Kendall of predictions against measurements."""
    y, p = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    total = len(y) if total is None else total
    if len(y) == 0:
        return Scores(0, total, note="no prediction possible")
    positive = y > 0
    error = np.abs(p[positive] - y[positive]) / y[positive]

    def finite(value: float) -> float | None:
        return float(value) if value is not None and math.isfinite(value) else None

    spearman = kendall = None
    if len(y) >= 3 and np.ptp(y) > 0 and np.ptp(p) > 0:
        spearman, kendall = finite(stats.spearmanr(y, p).statistic), finite(stats.kendalltau(y, p).statistic)
    return Scores(
        n=len(y), total=total, rmse_ms=float(np.sqrt(np.mean((p - y) ** 2))),
        mape=finite(100 * error.mean()) if error.size else None,
        within_5=finite(100 * (error <= 0.05).mean()) if error.size else None,
        within_10=finite(100 * (error <= 0.10).mean()) if error.size else None,
        spearman=spearman, kendall=kendall,
    )


def _folds(groups: Iterable[Any], k: int, rng: random.Random) -> list[set[Any]]:
    distinct = sorted(set(groups), key=repr)
    rng.shuffle(distinct)
    k = max(1, min(k, len(distinct)))
    return [set(distinct[i::k]) for i in range(k)]


def _layer_shape(op: Op) -> tuple[int, int, int, int]:
    return (op.h, op.cin, op.cout, op.stride)


class _Evaluation:
    """Runs the protocols of one kind on one device's data."""

    def __init__(self, kind: str, data: TrainingData, *, folds: int, seed: int, params: dict[str, Any],
                 progress: Callable[[str], None]) -> None:
        self.kind, self.data, self.k, self.seed, self.params = kind, data, folds, seed, params
        self.progress = progress

    def fit(self, ops: Iterable[OpSample]) -> LatencyPredictor:
        return create_predictor(self.kind, **self.params).fit(self.data.with_samples(ops=ops, models=()))

    def held_out(self, tests: Sequence[OpSample], folds: list[set[Any]], group: Callable[[OpSample], Any],
                 excluded: Callable[[OpSample, set[Any]], bool]) -> dict[int, float]:
        """Out-of-fold predictions of ``tests`` (index -> ms), for the answerable ones."""
        predictions: dict[int, float] = {}
        for fold in folds:
            train = [s for s in self.data.ops if not excluded(s, fold)]
            chosen = [i for i, s in enumerate(tests) if group(s) in fold]
            try:
                model = self.fit(train)
            except PredictorError:
                continue
            ops = [tests[i].op for i in chosen]
            answerable = model.can_predict(ops)
            answered = [i for i, ok in zip(chosen, answerable, strict=True) if ok]
            values = model.predict_ops([tests[i].op for i in answered])
            predictions.update(zip(answered, values.tolist(), strict=True))
        return predictions

    @staticmethod
    def scores(tests: Sequence[OpSample], predictions: dict[int, float], note: str = "") -> Scores:
        index = sorted(predictions)
        result = score([tests[i].latency_ms for i in index], [predictions[i] for i in index], total=len(tests))
        return Scores(**{**asdict(result), "note": note or result.note})

    def run(self) -> dict[str, Scores]:
        rng = random.Random(self.seed)
        results: dict[str, Scores] = {}
        blocks, configs = self.data.blocks, self.data.configs
        entry_predictions: dict[int, float] = {}
        if blocks:
            self.progress("entry")
            folds = _folds((s.op.key for s in blocks), self.k, rng)
            entry_predictions = self.held_out(blocks, folds, lambda s: s.op.key, lambda s, f: s.op.key in f)
            results["entry"] = self.scores(blocks, entry_predictions)
            self.progress("layer")
            shapes = [{shape} for shape in sorted({_layer_shape(s.op) for s in blocks})]
            layer_predictions = self.held_out(
                blocks, shapes, lambda s: _layer_shape(s.op),
                lambda s, f: s.target in ("block", "config") and _layer_shape(s.op) in f,
            )
            results["layer"] = self.scores(blocks, layer_predictions)
        else:
            results["entry"] = results["layer"] = Scores(0, 0, note="no measured blocks")
        if configs:
            self.progress("config")
            folds = _folds((s.op.key for s in configs), self.k, rng)
            results["config"] = self.scores(
                configs, self.held_out(configs, folds, lambda s: s.op.key, lambda s, f: s.op.key in f)
            )
        else:
            results["config"] = Scores(0, 0, note="no sampled configurations (profiler run --sample-configs N)")
        results.update(self.model_level(rng))
        if "model" not in results or results["model"].total == 0:
            self.progress("arch-sum")
            results["arch-sum"] = self.arch_sum(blocks, entry_predictions, rng)
        return results

    def model_level(self, rng: random.Random) -> dict[str, Scores]:
        models = self.data.models
        if not models:
            note = "no measured architectures (profiler run --models N)"
            return {name: Scores(0, 0, note=note) for name in ("model", "model-raw", "head")}
        self.progress("model")
        model = self.fit(self.data.ops)
        answerable = np.array([model.can_predict([op for op, _ in model_terms(m.arch)]).all() for m in models])
        raw, mparams = np.full(len(models), np.nan), np.full(len(models), np.nan)
        if answerable.any():
            raw[answerable], mparams[answerable] = model_sums(model, [m.arch for m in np.array(models)[answerable]])
        measured = np.array([m.latency_ms for m in models])
        corrected = np.full(len(models), np.nan)
        for fold in _folds((m.arch.blocks for m in models), self.k, rng):
            test = np.array([m.arch.blocks in fold for m in models])
            train = ~test & answerable
            correction = fit_correction(model.correction, measured[train], raw[train], mparams[train])
            corrected[test] = correction.apply(raw[test], mparams[test])
        results = {}
        for name, values, chosen in (
            ("model", corrected, [not m.is_head for m in models]),
            ("model-raw", raw, [not m.is_head for m in models]),
            ("head", corrected, [m.is_head for m in models]),
        ):
            mask = np.array(chosen) & answerable
            results[name] = score(measured[mask], values[mask], total=int(np.sum(chosen)))
        return results

    def arch_sum(self, blocks: Sequence[OpSample], predictions: dict[int, float], rng: random.Random) -> Scores:
        space = get_space(self.data.space)
        measured = {(s.layer, s.block): s.latency_ms for s in blocks}
        predicted = {(blocks[i].layer, blocks[i].block): v for i, v in predictions.items()}
        fixed = {s.key.rsplit("/", 1)[-1]: s.latency_ms for s in self.data.of_target("fixed")}
        entries = [(layer.index, b.name) for layer in space.layers for b in layer.blocks]
        if any(e not in measured for e in entries) or any(f.name not in fixed for f in space.fixed_layers):
            return Scores(0, 0, note="needs the whole table and fixed layers measured")
        base = sum(fixed.values())
        archs = [sample_architecture(space, rng) for _ in range(200)]
        answered = [a for a in archs if all((i, b) in predicted for i, b in enumerate(a.blocks))]
        return score(
            [base + sum(measured[i, b] for i, b in enumerate(a.blocks)) for a in answered],
            [base + sum(predicted[i, b] for i, b in enumerate(a.blocks)) for a in answered],
            total=len(archs),
        )


def evaluate_kind(kind: str, data: TrainingData, *, folds: int = 5, seed: int = 0,
                  params: dict[str, Any] | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, Scores]:
    """Every protocol for one predictor kind (a protocol without data says why in its note).

    ``progress`` is called with each step of ``PROTOCOL_STEPS`` that has data, before it runs.
    """
    return _Evaluation(kind, data, folds=folds, seed=seed, params=params or {},
                       progress=progress or (lambda _step: None)).run()
