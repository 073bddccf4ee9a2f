"""Gradient-boosted trees over op features: predicts any op, including shapes never measured."""

from __future__ import annotations

import base64
import io
import pickle
from collections.abc import Sequence
from contextlib import AbstractContextManager
from functools import cache, lru_cache
from typing import Any

import numpy as np
import sklearn
from scipy.optimize import least_squares, nnls
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import ThreadpoolController

from predictor.base import LatencyPredictor, register_predictor
from predictor.data import TrainingData
from predictor.errors import PredictorLoadError
from predictor.features import COST_TERMS, FEATURES, cost_matrix, feature_matrix
from spaces import Op


@register_predictor("gbdt")
class GBDTPredictor(LatencyPredictor):
    """Boosted trees on the log ratio of the latency to an additive cost model of the op's parts.

    The cost model (ms = sum of non-negative coefficients times ``features.COST_TERMS``: module calls,
    torch ops launched, MACs per conv type, weights and activations moved) carries the physics to
    shapes never measured, where trees alone cannot extrapolate; the trees learn what it misses
    (kernel choices, cache effects). Both are fitted on relative error (the cost model with a robust
    loss, so the few noisy labels do not pull it). Fitted on every op sample: the space's blocks, its
    fixed layers and the sampled configurations.

    The trees are scikit-learn's histogram boosting: a fit takes a tenth of a second where the classic
    GradientBoostingRegressor with the Huber loss took seconds, which the evaluation protocols' two
    dozen refits per device multiplied into minutes (held-out accuracy on HW-NAS-Bench is unchanged
    within noise, BENCHMARKS.md).
    """

    def __init__(self, n_estimators: int = 200, learning_rate: float = 0.1, max_depth: int = 4,
                 min_samples_leaf: int = 2, max_bins: int = 64, loss: str = "squared_error", floor_ms: float = 1e-3,
                 correction: str = "weights-linear") -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_bins = max_bins  # coarser thresholds than the default 255 generalize better on a few hundred ops
        self.loss = loss
        self.floor_ms = floor_ms
        self.correction = correction

    def _fit_ops(self, data: TrainingData) -> None:
        ops = [s.op for s in data.ops]
        measured = np.array([s.latency_ms for s in data.ops])
        costs = _cost_rows(ops)
        self.cost_ms_per_unit_ = fit_cost_model(costs, measured, self.floor_ms).tolist()
        log_base = self._log_base(costs)
        model = HistGradientBoostingRegressor(
            loss=self.loss, max_iter=self.n_estimators, learning_rate=self.learning_rate, max_depth=self.max_depth,
            max_leaf_nodes=None, min_samples_leaf=self.min_samples_leaf, max_bins=self.max_bins, early_stopping=False,
        )
        with _one_thread():
            self.model_ = model.fit(_tree_features(ops, log_base), np.log(measured + self.floor_ms) - log_base)
        self.features_ = [*FEATURES, "log_cost_model_ms"]
        self.sklearn_version_ = sklearn.__version__
        self.numpy_version_ = np.__version__

    def _log_base(self, costs: np.ndarray) -> np.ndarray:
        return np.log(costs @ np.array(self.cost_ms_per_unit_) + self.floor_ms)

    def _predict_ops(self, ops: Sequence[Op]) -> np.ndarray:
        log_base = self._log_base(_cost_rows(ops))
        with _one_thread():
            predicted = np.exp(log_base + self.model_.predict(_tree_features(ops, log_base))) - self.floor_ms
        return np.maximum(predicted, 0.0)

    def fit_summary(self) -> dict[str, Any]:
        importances = dict(zip(self.features_, split_gains(self.model_, len(self.features_)).tolist(), strict=True))
        top = sorted(importances, key=importances.__getitem__, reverse=True)[:5]
        cost_model = dict(zip(COST_TERMS, self.cost_ms_per_unit_, strict=True))
        return {"n_estimators": self.n_estimators, "top_features": top, "cost_ms_per_unit": cost_model}

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


def fit_cost_model(costs: np.ndarray, measured_ms: np.ndarray, floor_ms: float) -> np.ndarray:
    """Non-negative ms per unit of each cost term, minimizing a robust loss of the log ratio to the measurements.

    Started from non-negative least squares on relative errors; the soft-L1 loss (about 10 % scale)
    keeps a few outlying labels from pulling the coefficients.
    """
    scale = costs.max(axis=0)
    scale[scale == 0] = 1.0  # columns in comparable units; a term no sample has keeps a tiny coefficient
    units = costs / scale
    weights = 1.0 / (measured_ms + floor_ms)
    start, _ = nnls(units * weights[:, None], measured_ms * weights)
    start = np.maximum(start, 1e-6 * max(start.max(), floor_ms))
    target = np.log(measured_ms + floor_ms)

    def residuals(log_coef: np.ndarray) -> np.ndarray:
        return np.log(units @ np.exp(log_coef) + floor_ms) - target

    def jacobian(log_coef: np.ndarray) -> np.ndarray:
        coef = np.exp(log_coef)
        return units * coef / (units @ coef + floor_ms)[:, None]

    fit = least_squares(residuals, np.log(start), jac=jacobian, loss="soft_l1", f_scale=0.1)
    return np.exp(fit.x) / scale


def split_gains(model: HistGradientBoostingRegressor, n_features: int) -> np.ndarray:
    """Total gain of the splits on each feature (histogram boosting has no ``feature_importances_``)."""
    gains = np.zeros(n_features)
    for (tree,) in model._predictors:
        splits = tree.nodes[tree.nodes["is_leaf"] == 0]
        np.add.at(gains, splits["feature_idx"], splits["gain"])
    return gains


@cache
def _threadpools() -> ThreadpoolController:
    return ThreadpoolController()  # finding the loaded thread pools takes milliseconds: once


def _one_thread() -> AbstractContextManager[object]:
    # a few hundred rows: OpenMP threads cost more in synchronization than they save, and on a shared
    # machine waiting for a descheduled thread made a fit ten times slower
    return _threadpools().limit(limits=1, user_api="openmp")


# The evaluation protocols refit on subsets of the same few hundred ops: each op's rows are computed once.
@lru_cache(maxsize=1 << 16)
def _op_costs(op: Op) -> np.ndarray:
    return cost_matrix([op])[0]


@lru_cache(maxsize=1 << 16)
def _op_features(op: Op) -> np.ndarray:
    return feature_matrix([op])[0]


def _cost_rows(ops: Sequence[Op]) -> np.ndarray:
    return np.array([_op_costs(op) for op in ops]).reshape(len(ops), len(COST_TERMS))


def _tree_features(ops: Sequence[Op], log_base: np.ndarray) -> np.ndarray:
    return np.column_stack([np.array([_op_features(op) for op in ops]).reshape(len(ops), len(FEATURES)), log_base])


def _versions(versions: dict[str, str | None]) -> str:
    return ", ".join(f"{name} {version or 'unknown'}" for name, version in versions.items())
