"""Latency predictors: fit on a device's measurements, predict blocks, architectures and splits.

Importing this package registers every predictor kind and does not import torch.
"""

from __future__ import annotations

from predictor import flops_linear as _flops_linear  # noqa: F401  (registers the kinds)
from predictor import gbdt as _gbdt  # noqa: F401
from predictor import lookup as _lookup  # noqa: F401
from predictor.base import PREDICTORS, LatencyPredictor, create_predictor, list_predictors, register_predictor
from predictor.data import TrainingData, load_training_data
from predictor.errors import (
    NotFittedError,
    PredictorError,
    PredictorLoadError,
    PredictorNotFoundError,
    UnmeasuredOpError,
)
from predictor.facade import FitReport, fit_predictors, load_lut, load_predictor
from predictor.latency import (
    CompletionLatency,
    DeviceLUT,
    Link,
    architecture_latency,
    batch_split_latency,
    chain_latency,
    split_latency,
)

__all__ = [
    "PREDICTORS",
    "CompletionLatency",
    "DeviceLUT",
    "FitReport",
    "LatencyPredictor",
    "Link",
    "NotFittedError",
    "PredictorError",
    "PredictorLoadError",
    "PredictorNotFoundError",
    "TrainingData",
    "UnmeasuredOpError",
    "architecture_latency",
    "batch_split_latency",
    "chain_latency",
    "create_predictor",
    "fit_predictors",
    "list_predictors",
    "load_lut",
    "load_predictor",
    "load_training_data",
    "register_predictor",
    "split_latency",
]
