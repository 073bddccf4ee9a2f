"""The predictor contract (scikit-learn style), the registry of kinds, and model-level prediction.

A predictor is fitted on one device's ``TrainingData``: per-op latencies (blocks of the space, fixed
layers, sampled configurations) and, when measured, whole architectures and heads. It predicts the
latency of any op it can (``predict_ops``) and of architectures by summation, with the model-level
correction learned from measured architectures (``scale_``, ``weight_ms_per_mparam_``, ``call_ms_``,
and ``wait_ms_`` / ``wait_share_``, what a part fed by a link adds after idling until its input arrived;
predictor.correction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from predictor.correction import CORRECTIONS, Correction, Wait, fit_correction, fit_wait, model_sums, model_terms
from predictor.data import ModelSample, TrainingData
from predictor.errors import NotFittedError, PredictorError
from spaces import Architecture, Op
from spaces.registry import registrar


class LatencyPredictor(BaseEstimator):
    """Base class: ``__init__`` stores hyperparameters, ``fit`` sets trailing-underscore attributes."""

    kind: ClassVar[str] = ""

    # -- to implement -------------------------------------------------------------------------------
    def _fit_ops(self, data: TrainingData) -> None:
        raise NotImplementedError

    def _predict_ops(self, ops: Sequence[Op]) -> np.ndarray:
        raise NotImplementedError

    def can_predict(self, ops: Sequence[Op]) -> np.ndarray:
        """Which ops this predictor can answer (all, except for the lookup table's unmeasured ones)."""
        return np.ones(len(ops), dtype=bool)

    def fit_summary(self) -> dict[str, Any]:
        """What the fit found, for people (Pi and R^2 of the FLOPs fit, ...)."""
        return {}

    # -- the contract ---------------------------------------------------------------------------------
    def fit(self, data: TrainingData) -> LatencyPredictor:
        """Fit on the op samples of ``data``, then the model-level correction on its models."""
        if not data.ops:
            raise PredictorError(
                f"no op measurements for device {data.device!r} in space {data.space!r}: "
                f"run `profiler run --device {data.device} --space {data.space}` (or import a table) first"
            )
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, got {self.correction!r}")
        self.device_, self.space_, self.runtime_ = data.device, data.space, data.runtime
        self.scale_, self.weight_ms_per_mparam_, self.call_ms_ = 1.0, 0.0, 0.0
        self._fit_ops(data)
        self.n_ops_, self.n_models_ = len(data.ops), len(data.models)
        correction = self._fit_correction(data.models)
        self.scale_, self.weight_ms_per_mparam_ = correction.scale, correction.ms_per_mparam
        self.call_ms_ = correction.ms_per_call
        wait = fit_wait([m.latency_ms for m in data.models], [m.after_wait_ms for m in data.models])
        self.wait_ms_, self.wait_share_ = wait.ms, wait.share
        return self

    def check_fitted(self) -> None:
        if not hasattr(self, "scale_"):
            raise NotFittedError(f"this {self.kind} predictor is not fitted: call fit(data) or load a stored one")

    def predict_ops(self, ops: Sequence[Op]) -> np.ndarray:
        """Latency in ms of each op as timed alone (no model-level correction)."""
        self.check_fitted()
        ops = list(ops)
        return np.asarray(self._predict_ops(ops), dtype=float) if ops else np.zeros(0)

    def predict_op(self, op: Op) -> float:
        return float(self.predict_ops([op])[0])

    def predict_models(self, archs: Sequence[Architecture], *, corrected: bool = True) -> np.ndarray:
        """Latency in ms of whole architectures, or of their heads when they carry a split point."""
        self.check_fitted()
        summed, mparams = model_sums(self, archs)
        return self.correction_.apply(summed, mparams) if corrected else summed

    def _fit_correction(self, models: Sequence[ModelSample]) -> Correction:
        """Fitted on the measured models whose every op this predictor can answer."""
        models = [m for m in models if self.can_predict([op for op, _ in model_terms(m.arch)]).all()]
        if not models:
            return Correction()
        summed, mparams = model_sums(self, [m.arch for m in models])
        return fit_correction(self.correction, np.array([m.latency_ms for m in models]), summed, mparams)

    @property
    def correction_(self) -> Correction:
        self.check_fitted()
        # predictors stored before the call term existed have none
        return Correction(self.scale_, self.weight_ms_per_mparam_, getattr(self, "call_ms_", 0.0))

    @property
    def wait_(self) -> Wait:
        """What a part fed by a link adds after idling until its input arrived (none if fitted before it was timed)."""
        self.check_fitted()
        return Wait(float(getattr(self, "wait_ms_", 0.0)), float(getattr(self, "wait_share_", 0.0)))

    # -- persistence --------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """The fitted attributes as JSON-ready values."""
        self.check_fitted()
        return {name: _to_json(value) for name, value in vars(self).items() if name.endswith("_")}

    def set_state(self, state: dict[str, Any]) -> LatencyPredictor:
        for name, value in state.items():
            setattr(self, name, value)
        return self


def _to_json(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# -- registry -----------------------------------------------------------------------------------------

PREDICTORS: dict[str, type[LatencyPredictor]] = {}


register_predictor = registrar(PREDICTORS, "predictor kind", attribute="kind")


def list_predictors() -> list[str]:
    return list(PREDICTORS)


def create_predictor(kind: str, **params: Any) -> LatencyPredictor:
    """A new, unfitted predictor of ``kind``."""
    if kind not in PREDICTORS:
        raise PredictorError(f"unknown predictor kind {kind!r}; allowed: {', '.join(PREDICTORS)}")
    return PREDICTORS[kind](**params)
