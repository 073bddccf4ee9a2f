"""Numeric features of an op for the regression predictors (no torch: analytic shapes and costs)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from spaces import Op
from spaces.kinds import CONV_TYPES, OP_KINDS

FEATURES: tuple[str, ...] = (
    "h", "out_h", "cin", "cout", "mid", "stride", "kernel", "expansion", "groups", "residual", "identity",
    "macs", "flops", "params", "activations", "bn_elements", "mid_elements", "depthwise_macs", "pointwise_macs",
    "log_flops", "log_params", "log_activations", "log_mid_elements", "log_max_conv_weights",
    *(f"kind_{kind}" for kind in OP_KINDS),
)

# Units of work an op's latency is the sum of (the additive cost model under gbdt's trees): one module
# call, torch ops launched (a fixed dispatch overhead each), elements of the elementwise ops (BN, ReLU,
# channel shuffle, residual add, pooling), multiply-accumulates per conv type (their speeds differ),
# weights read (cold caches: from memory) and the input plus output elements of every conv.
COST_TERMS: tuple[str, ...] = (
    "call", "torch_op", "elementwise", *(f"{conv_type}_mac" for conv_type in CONV_TYPES), "weight", "conv_io_element",
)


def cost_terms(op: Op) -> dict[str, float]:
    """How many units of each ``COST_TERMS`` work ``op`` does (summed over ``op.parts``)."""
    terms = dict.fromkeys(COST_TERMS, 0.0) | {
        "call": 1.0,
        "torch_op": float(sum(part.torch_ops for part in op.parts)),
        "elementwise": float(sum(part.elementwise for part in op.parts)),
    }
    for conv in op.convs:
        terms[f"{conv.conv_type}_mac"] += conv.macs
        terms["weight"] += conv.weights
        terms["conv_io_element"] += conv.io_elements
    return terms


def cost_matrix(ops: Sequence[Op]) -> np.ndarray:
    """(n_ops, len(COST_TERMS)) float matrix."""
    rows = [cost_terms(op) for op in ops]
    return np.array([[row[name] for name in COST_TERMS] for row in rows], dtype=float).reshape(len(rows), -1)


def op_features(op: Op) -> dict[str, float]:
    """Shape, cost and memory-traffic features of one op (see spaces.Op.features)."""
    mid = op.op_kind.inner_channels(op)
    depthwise = float(sum(conv.macs for conv in op.convs if conv.conv_type == "depthwise"))
    mid_elements = mid * op.out_h * op.out_h
    # The largest weight tensor: whether it fits a cache level changes the cost per weight.
    max_conv_weights = max((conv.weights for conv in op.convs), default=0)
    return {
        **op.features(),
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
        "log_max_conv_weights": math.log1p(max_conv_weights),
        **{f"kind_{kind}": float(op.kind == kind) for kind in OP_KINDS},
    }


def feature_matrix(ops: Sequence[Op]) -> np.ndarray:
    """(n_ops, len(FEATURES)) float matrix."""
    rows = [op_features(op) for op in ops]
    return np.array([[row[name] for name in FEATURES] for row in rows], dtype=float).reshape(len(rows), len(FEATURES))
