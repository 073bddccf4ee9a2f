"""Numeric features of an op for the regression predictors (no torch: analytic shapes and costs)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from spaces import Op

KINDS = ("conv", "skip", "mbconv", "identity", "convnorm", "pool", "fc")

FEATURES: tuple[str, ...] = (
    "h", "out_h", "cin", "cout", "mid", "stride", "kernel", "expansion", "groups", "residual", "identity",
    "macs", "flops", "params", "activations", "bn_elements", "mid_elements", "depthwise_macs", "pointwise_macs",
    "log_flops", "log_params", "log_activations", "log_mid_elements",
    *(f"kind_{kind}" for kind in KINDS),
)
# Columns of the log-log linear model under the trees: lets gbdt extrapolate to shapes outside its data.
LINEAR_FEATURES: tuple[str, ...] = ("log_flops", "log_params", "log_activations", "log_mid_elements", "identity")


def op_features(op: Op) -> dict[str, float]:
    """Shape, cost and memory-traffic features of one op (see spaces.Op.features)."""
    base = op.features()
    mid = op.cin * float(op.expansion) if op.kind in ("conv", "mbconv") else float(op.cout)
    hw_out = op.out_h * op.out_h
    depthwise = mid * op.kernel * op.kernel * hw_out if op.kind in ("conv", "mbconv") else 0.0
    mid_elements = mid * hw_out
    return {
        **base,
        "out_h": op.out_h,
        "mid": mid,
        "identity": float(op.is_identity),
        "mid_elements": mid_elements,
        "depthwise_macs": depthwise,
        "pointwise_macs": op.macs - depthwise,
        "log_flops": math.log1p(op.flops),
        "log_params": math.log1p(op.params),
        "log_activations": math.log1p(op.activation_elements),
        "log_mid_elements": math.log1p(mid_elements),
        **{f"kind_{kind}": float(op.kind == kind) for kind in KINDS},
    }


def feature_matrix(ops: Sequence[Op]) -> np.ndarray:
    """(n_ops, len(FEATURES)) float matrix."""
    rows = [op_features(op) for op in ops]
    return np.array([[row[name] for name in FEATURES] for row in rows], dtype=float).reshape(len(rows), len(FEATURES))
