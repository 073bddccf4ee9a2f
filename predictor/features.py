"""Numeric features of an op for the regression predictors (no torch: analytic shapes and costs)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spaces import Op

KINDS = ("conv", "skip", "mbconv", "identity", "convnorm", "pool", "fc")

FEATURES: tuple[str, ...] = (
    "h", "out_h", "cin", "cout", "mid", "stride", "kernel", "expansion", "groups", "residual", "identity",
    "macs", "flops", "params", "activations", "bn_elements", "mid_elements", "depthwise_macs", "pointwise_macs",
    "log_flops", "log_params", "log_activations", "log_mid_elements", "log_max_conv_weights",
    *(f"kind_{kind}" for kind in KINDS),
)

# Units of work an op's latency is the sum of (the additive cost model under gbdt's trees): one module
# call, torch ops launched (a fixed dispatch overhead each), elements of the elementwise ops (BN, ReLU,
# channel shuffle, residual add), multiply-accumulates per conv type (their speeds differ), weights
# read (cold caches: from memory) and the input plus output elements of every conv.
COST_TERMS: tuple[str, ...] = (
    "call", "torch_op", "elementwise", "conv1x1_mac", "grouped_conv1x1_mac", "depthwise_mac", "dense_mac",
    "weight", "conv_io_element",
)


@dataclass(frozen=True)
class _Conv:
    kind: str  # conv1x1, grouped_conv1x1, depthwise or dense (a dense kxk conv or a linear layer)
    macs: float
    weights: float
    io_elements: float


def _parts(op: Op) -> tuple[list[_Conv], int, float]:
    """The convs of ``op`` (as ``spaces.modules.build_op`` builds it), its torch op count and elementwise elements."""
    hw_in, hw_out = op.h * op.h, op.out_h * op.out_h
    if op.is_identity:
        return [], 0, 0.0
    if op.kind in ("conv", "mbconv"):
        mid, groups = op.mid, op.groups
        pointwise = "grouped_conv1x1" if groups > 1 else "conv1x1"
        convs, torch_ops, elementwise = [], 5, 2.0 * mid * hw_out + op.cout * hw_out  # dw conv-BN-ReLU, proj conv-BN
        if op.kind == "conv" or op.expansion != 1:
            weights = op.cin // groups * mid
            convs.append(_Conv(pointwise, weights * hw_in, weights, (op.cin + mid) * hw_in))
            torch_ops += 3 + (3 if groups > 1 else 0)  # conv-BN-ReLU, channel shuffle (view, transpose, reshape)
            elementwise += (3 if groups > 1 else 2) * mid * hw_in
        convs.append(_Conv("depthwise", mid * op.kernel**2 * hw_out, mid * op.kernel**2, mid * (hw_in + hw_out)))
        weights = mid // groups * op.cout
        convs.append(_Conv(pointwise, weights * hw_out, weights, (mid + op.cout) * hw_out))
        if op.residual:
            torch_ops, elementwise = torch_ops + 1, elementwise + op.cout * hw_out
        return convs, torch_ops, elementwise
    if op.kind in ("skip", "convnorm"):
        weights = op.cin // op.groups * op.cout * op.kernel**2
        kind = "conv1x1" if op.kernel == 1 and op.groups == 1 else "dense"
        return [_Conv(kind, weights * hw_out, weights, op.cin * hw_in + op.cout * hw_out)], 3, 2.0 * op.cout * hw_out
    if op.kind == "fc":
        return [_Conv("dense", op.macs, op.macs, op.cin + op.cout)], 1, 0.0
    return [], 2, float(op.cin * hw_in)  # pool: average pool and flatten


def cost_terms(op: Op) -> dict[str, float]:
    """How many units of each ``COST_TERMS`` work ``op`` does."""
    convs, torch_ops, elementwise = _parts(op)
    terms = dict.fromkeys(COST_TERMS, 0.0) | {"call": 1.0, "torch_op": float(torch_ops), "elementwise": elementwise}
    for conv in convs:
        terms[f"{conv.kind}_mac"] += conv.macs
        terms["weight"] += conv.weights
        terms["conv_io_element"] += conv.io_elements
    return terms


def cost_matrix(ops: Sequence[Op]) -> np.ndarray:
    """(n_ops, len(COST_TERMS)) float matrix."""
    rows = [cost_terms(op) for op in ops]
    return np.array([[row[name] for name in COST_TERMS] for row in rows], dtype=float).reshape(len(rows), -1)


def op_features(op: Op) -> dict[str, float]:
    """Shape, cost and memory-traffic features of one op (see spaces.Op.features)."""
    base = op.features()
    mid = op.cin * float(op.expansion) if op.kind in ("conv", "mbconv") else float(op.cout)
    hw_out = op.out_h * op.out_h
    depthwise = mid * op.kernel * op.kernel * hw_out if op.kind in ("conv", "mbconv") else 0.0
    mid_elements = mid * hw_out
    # The largest weight tensor: whether it fits a cache level changes the cost per weight.
    max_conv_weights = max((conv.weights for conv in _parts(op)[0]), default=0.0)
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
        "log_max_conv_weights": math.log1p(max_conv_weights),
        **{f"kind_{kind}": float(op.kind == kind) for kind in KINDS},
    }


def feature_matrix(ops: Sequence[Op]) -> np.ndarray:
    """(n_ops, len(FEATURES)) float matrix."""
    rows = [op_features(op) for op in ops]
    return np.array([[row[name] for name in FEATURES] for row in rows], dtype=float).reshape(len(rows), len(FEATURES))
