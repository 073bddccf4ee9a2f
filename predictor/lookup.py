"""The per-op lookup table: measured values, exactly; unmeasured ops are refused."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from predictor.base import LatencyPredictor, register_predictor
from predictor.data import TrainingData
from predictor.errors import UnmeasuredOpError
from spaces import Op


@register_predictor("lookup")
class LookupPredictor(LatencyPredictor):
    """Median measured latency per op key (an op measured at several layers of one shape is one entry)."""

    def __init__(self, correction: str = "weights-linear") -> None:
        self.correction = correction

    def _fit_ops(self, data: TrainingData) -> None:
        latencies: dict[str, list[float]] = defaultdict(list)
        spreads: dict[str, list[float]] = defaultdict(list)
        for sample in data.ops:
            latencies[sample.op.key].append(sample.latency_ms)
            if sample.iqr_ms is not None:
                spreads[sample.op.key].append(sample.iqr_ms)
        self.table_ = {key: float(np.median(values)) for key, values in latencies.items()}
        self.iqr_ = {key: float(np.median(values)) for key, values in spreads.items()}

    def can_predict(self, ops: Sequence[Op]) -> np.ndarray:
        self.check_fitted()
        return np.array([op.key in self.table_ for op in ops], dtype=bool)

    def _predict_ops(self, ops: Sequence[Op]) -> np.ndarray:
        missing = [op.key for op in ops if op.key not in self.table_]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise UnmeasuredOpError(
                f"op {missing[0]}{more} was never measured on device {self.device_!r}: measure it "
                f"(`profiler run --device {self.device_} --space {self.space_}`) or ask a predictor that "
                "generalizes (kind gbdt or flops-linear, or auto)"
            )
        return np.array([self.table_[op.key] for op in ops])

    def iqr_ms(self, op: Op) -> float:
        """The measured spread of ``op`` (NaN when unknown)."""
        self.check_fitted()
        return self.iqr_.get(op.key, float("nan"))

    def fit_summary(self) -> dict[str, Any]:
        return {"entries": len(self.table_)}
