"""Op kinds: what an op of each kind is made of, costs, is called and builds (no torch import).

Adding a kind is one file here holding one registered ``OpKind`` subclass, plus its import below; the
import order is the order of the kinds' one-hot regression features, so new kinds go last.
"""

from __future__ import annotations

# isort: off
from spaces.kinds import conv, skip, mbconv, identity, convnorm, pool, fc  # noqa: F401  (registers the kinds)
# isort: on
from spaces.kinds.base import OP_KINDS, OpKind, get_op_kind, register_op_kind
from spaces.kinds.parts import BN_FLOPS_PER_ELEMENT, CONV_TYPES, Conv, Elementwise, Part

__all__ = [
    "BN_FLOPS_PER_ELEMENT", "CONV_TYPES", "OP_KINDS", "Conv", "Elementwise", "OpKind", "Part", "get_op_kind",
    "register_op_kind",
]
