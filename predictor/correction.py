"""The model-level correction (DESIGN.md section 7): from ops timed alone to ops inside a whole network.

Ops timed alone run with warm caches; inside a network their weights arrive cold from memory. The
default ``weights-linear`` correction models a network's latency as

    T = scale * sum of the ops' predicted latencies + ms_per_mparam * (millions of weights it runs)
        + ms_per_call

fitted on measured architectures and heads by non-negative least squares on relative errors; the
weight term is the time to stream the weights, which is why heads (few, small weights) need less
correction than whole networks (the 1x1 head conv and the classifier hold most weights), and the
call term is what one call of a network costs besides its ops (with cold caches: torch's dispatcher
and the module tree come back from memory; a network of the stem alone takes twice the stem's time).
``median-ratio`` is the plain median of measured / predicted; ``none`` leaves predictions as timed.

Networks timed back to back are what a user times in a loop; a part of a split network whose input comes
over a link runs after idling until it arrived instead, and pays for what cooled down meanwhile
(``profiler.timing.after_wait_ms``). The first part runs on input made on its device, right after the work
that made it: end to end on this machine its head ran 0.1-0.5 ms over its back-to-back latency where the
server's part ran 0.2-1.9 ms over (BENCHMARKS.md, "End-to-end split inference").
``Wait`` is that cost, a share of the part's latency plus a fixed term (an idle core runs slower until its
clock and caches are back: the extra grows with the work), fitted on the measured networks' calls after an
idle gap against their back-to-back latency and applied to every part fed by a link
(``predictor.latency.completion_terms``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import nnls

from spaces import Architecture, Op

if TYPE_CHECKING:
    from predictor.base import LatencyPredictor

CORRECTIONS = ("weights-linear", "median-ratio", "none")
MIN_MODELS_FOR_LINEAR = 8  # below this, a three-parameter fit follows the noise: use the median ratio


@dataclass(frozen=True)
class Correction:
    """T_network = scale * T_summed + ms_per_mparam * weights (in millions) + ms_per_call."""

    scale: float = 1.0
    ms_per_mparam: float = 0.0
    ms_per_call: float = 0.0

    def apply(self, summed_ms: np.ndarray, mparams: np.ndarray) -> np.ndarray:
        return self.scale * summed_ms + self.ms_per_mparam * mparams + self.ms_per_call

    def op_ms(self, op: Op, predicted_ms: float) -> float:
        """An op's latency inside a network, divided by ``scale`` (what a DeviceLUT entry holds)."""
        return predicted_ms + self.ms_per_mparam / self.scale * op.params * 1e-6


def median_ratio(measured: np.ndarray, predicted: np.ndarray) -> float:
    """Median of measured / predicted over models with a positive prediction (1 when there is none)."""
    ok = predicted > 0
    return float(np.median(measured[ok] / predicted[ok])) if ok.any() else 1.0


def fit_correction(method: str, measured: np.ndarray, summed_ms: np.ndarray, mparams: np.ndarray) -> Correction:
    """The correction ``method`` fitted on models with these measured and summed latencies and weights."""
    if method not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {method!r}")
    ok = (summed_ms > 0) & (measured > 0)
    if method == "none" or not ok.any():
        return Correction()
    if method == "median-ratio" or ok.sum() < MIN_MODELS_FOR_LINEAR:
        return Correction(median_ratio(measured[ok], summed_ms[ok]))
    design = np.column_stack([summed_ms[ok], mparams[ok], np.ones(int(ok.sum()))]) / measured[ok, None]
    (scale, ms_per_mparam, ms_per_call), _ = nnls(design, np.ones(int(ok.sum())))
    if scale <= 0:
        return Correction(median_ratio(measured[ok], summed_ms[ok]))
    return Correction(float(scale), float(ms_per_mparam), float(ms_per_call))


@dataclass(frozen=True)
class Wait:
    """A part whose input came over a link, run after idling until it arrived: T_after = (1 + share) * T + ms."""

    ms: float = 0.0
    share: float = 0.0

    def apply(self, part_ms: Any) -> Any:
        return (1.0 + self.share) * part_ms + self.ms


def fit_wait(measured: Sequence[float], after_wait: Sequence[float | None]) -> Wait:
    """``after_wait - measured = ms + share * measured`` by non-negative least squares over the networks timed
    after a wait too (a median extra with fewer than 3 of them; no wait without any)."""
    pairs = np.array([(ms, after) for ms, after in zip(measured, after_wait, strict=True) if after is not None])
    if not len(pairs):
        return Wait()
    extra = pairs[:, 1] - pairs[:, 0]
    if len(pairs) < 3:
        return Wait(max(float(np.median(extra)), 0.0))
    (ms, share), _ = nnls(np.column_stack([np.ones(len(pairs)), pairs[:, 0]]), extra)
    return Wait(float(ms), float(share))


# -- architectures as weighted sums of ops ----------------------------------------------------------


def model_terms(arch: Architecture) -> list[tuple[Op, float]]:
    """The ops an architecture (or its head up to its split point) runs, each with its share.

    A head ending in a bottleneck block runs only the block's front (DESIGN.md section 2.2).
    """
    if not arch.splits:
        return [(op, 1.0) for op in arch.ops]
    k = arch.splits[0]
    terms = [(f.op, 1.0) for f in arch.space.prefix]
    layer_ops = arch.layer_ops[:k]
    terms += [(op, 1.0) for op in layer_ops[:-1]]
    if layer_ops:
        terms.append((layer_ops[-1], layer_ops[-1].front_share))
    return terms


def model_sums(predictor: LatencyPredictor, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
    """(summed predicted ms, millions of weights) per architecture, each distinct op predicted once."""
    terms = [model_terms(a) for a in archs]
    distinct: dict[Op, int] = {}
    for model in terms:
        for op, _ in model:
            distinct.setdefault(op, len(distinct))
    values = predictor.predict_ops(list(distinct))
    summed = np.array([sum(w * values[distinct[op]] for op, w in model) for model in terms], dtype=float)
    mparams = np.array([sum(w * op.params for op, w in model) * 1e-6 for model in terms], dtype=float)
    return summed, mparams
