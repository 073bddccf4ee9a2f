"""Gradient-boosted trees over op features: predicts any op, including shapes never measured."""

from __future__ import annotations

import base64
import io
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

from predictor.base import LatencyPredictor, register_predictor
from predictor.data import TrainingData
from predictor.errors import PredictorLoadError
from predictor.features import FEATURES, LINEAR_FEATURES, feature_matrix
from spaces import Op


@register_predictor("gbdt")
class GBDTPredictor(LatencyPredictor):
    """Boosted trees on log latency, started from a log-log linear model of FLOPs and memory traffic.

    Trees alone cannot extrapolate beyond the shapes they saw; the linear start carries the trend
    (latency grows with FLOPs and bytes moved) to new shapes and the trees learn what it misses.
    Fitted on every op sample: the space's blocks, its fixed layers and the sampled configurations.
    """

    def __init__(self, n_estimators: int = 400, learning_rate: float = 0.05, max_depth: int = 3,
                 subsample: float = 0.8, min_samples_leaf: int = 2, floor_ms: float = 1e-3, random_state: int = 0,
                 correction: str = "weights-linear") -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.min_samples_leaf = min_samples_leaf
        self.floor_ms = floor_ms
        self.random_state = random_state
        self.correction = correction

    def _fit_ops(self, data: TrainingData) -> None:
        features = feature_matrix([s.op for s in data.ops])
        target = np.log(np.array([s.latency_ms for s in data.ops]) + self.floor_ms)
        linear = ColumnTransformer([("trend", "passthrough", [FEATURES.index(f) for f in LINEAR_FEATURES])])
        self.model_ = GradientBoostingRegressor(
            init=make_pipeline(linear, Ridge(alpha=1e-3)), n_estimators=self.n_estimators,
            learning_rate=self.learning_rate, max_depth=self.max_depth, subsample=self.subsample,
            min_samples_leaf=self.min_samples_leaf, random_state=self.random_state,
        ).fit(features, target)
        self.features_ = list(FEATURES)
        self.sklearn_version_ = sklearn.__version__
        self.numpy_version_ = np.__version__

    def _predict_ops(self, ops: Sequence[Op]) -> np.ndarray:
        predicted = np.exp(self.model_.predict(feature_matrix(ops))) - self.floor_ms
        return np.maximum(predicted, 0.0)

    def fit_summary(self) -> dict[str, Any]:
        importances = dict(zip(self.features_, self.model_.feature_importances_.tolist(), strict=True))
        top = sorted(importances, key=importances.get, reverse=True)[:5]
        return {"n_estimators": self.n_estimators, "top_features": top}

    # The sklearn model is pickled inside the JSON envelope; a pickle is only read back by the
    # scikit-learn and numpy versions that wrote it, so a mismatch is refused with a clear message.
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["model_"] = base64.b64encode(pickle.dumps(self.model_, protocol=pickle.HIGHEST_PROTOCOL)).decode()
        return state

    def set_state(self, state: dict[str, Any]) -> GBDTPredictor:
        wrote = {"scikit-learn": state.get("sklearn_version_"), "numpy": state.get("numpy_version_")}
        here = {"scikit-learn": sklearn.__version__, "numpy": np.__version__}
        if wrote != here:
            raise PredictorLoadError(
                f"this gbdt predictor was fitted with {_versions(wrote)} but this environment has {_versions(here)}; "
                f"refit it here: `predictor fit --device {state.get('device_')} --space {state.get('space_')} "
                "--kind gbdt`"
            )
        state = dict(state)
        try:
            model = pickle.load(io.BytesIO(base64.b64decode(state.pop("model_"))))
        except Exception as exc:  # a corrupt or foreign pickle fails in many ways; all mean "refit"
            raise PredictorLoadError(
                f"cannot read the stored gbdt model ({exc}); refit it with `predictor fit --kind gbdt`"
            ) from exc
        super().set_state(state)
        self.model_ = model
        return self


def _versions(versions: dict[str, str | None]) -> str:
    return ", ".join(f"{name} {version or 'unknown'}" for name, version in versions.items())
