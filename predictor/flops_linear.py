"""latency = C / Pi (and a + C / Pi): the FLOPs-proportional fit of DESIGN.md section 4."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from predictor.base import LatencyPredictor, register_predictor
from predictor.data import TrainingData
from spaces import Op


def r_squared(measured: np.ndarray, predicted: np.ndarray) -> float:
    """Coefficient of determination (can be negative when the fit is worse than the mean)."""
    total = float(((measured - measured.mean()) ** 2).sum())
    residual = float(((measured - predicted) ** 2).sum())
    return 1.0 - residual / total if total > 0 else float("nan")


@register_predictor("flops-linear")
class FlopsLinearPredictor(LatencyPredictor):
    """Least squares of latency on reference FLOPs over the measured (layer, block) pairs.

    Without intercept the closed form is 1/Pi = sum(T * C) / sum(C^2). Identity skips cost 0 FLOPs and
    are predicted 0 ms by both variants (the intercept variant leaves them out of its fit).
    """

    def __init__(self, intercept: bool = False, targets: tuple[str, ...] = ("block",),
                 correction: str = "weights-linear") -> None:
        self.intercept = intercept
        self.targets = targets
        self.correction = correction

    def _fit_ops(self, data: TrainingData) -> None:
        samples = data.of_target(*self.targets) or data.ops
        flops = np.array([s.op.flops for s in samples], dtype=float)
        latency = np.array([s.latency_ms for s in samples], dtype=float)
        if self.intercept:
            used = np.array([not s.op.is_identity for s in samples])
            design = np.column_stack([np.ones(used.sum()), flops[used]])
            (self.intercept_ms_, self.ms_per_flop_), *_ = np.linalg.lstsq(design, latency[used], rcond=None)
        else:
            self.intercept_ms_ = 0.0
            self.ms_per_flop_ = float((latency * flops).sum() / (flops**2).sum())
        self.intercept_ms_, self.ms_per_flop_ = float(self.intercept_ms_), float(self.ms_per_flop_)
        self.r2_ = r_squared(latency, self._predict_ops([s.op for s in samples]))
        self.n_fit_ = len(samples)

    def _predict_ops(self, ops: Sequence[Op]) -> np.ndarray:
        flops = np.array([op.flops for op in ops], dtype=float)
        identity = np.array([op.is_identity for op in ops], dtype=bool)
        return np.where(identity, 0.0, self.intercept_ms_ + self.ms_per_flop_ * flops)

    @property
    def pi_gflops(self) -> float:
        """The device's computation power in GFLOPS (FLOPs per ms times 1e-6)."""
        self.check_fitted()
        return 1e-6 / self.ms_per_flop_ if self.ms_per_flop_ > 0 else float("inf")

    def fit_summary(self) -> dict[str, Any]:
        pi = self.pi_gflops
        summary = {"pi_gflops": pi if np.isfinite(pi) else None, "r2": self.r2_, "intercept_ms": self.intercept_ms_,
                   "n": self.n_fit_}
        if not np.isfinite(pi):
            summary["note"] = "latency does not grow with FLOPs here (slope <= 0): Pi undefined"
        return summary


@register_predictor("flops-linear-intercept")
class FlopsLinearInterceptPredictor(FlopsLinearPredictor):
    """latency = a + C / Pi: a fixed per-block overhead plus the FLOPs term (fits GPUs far better)."""

    def __init__(self, intercept: bool = True, targets: tuple[str, ...] = ("block",),
                 correction: str = "weights-linear") -> None:
        super().__init__(intercept=intercept, targets=targets, correction=correction)
