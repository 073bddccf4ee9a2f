"""``mbconv``: the MobileNetV2 block (ReLU6, no expand conv at expansion 1, residual only when asked)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spaces.kinds.base import register_op_kind
from spaces.kinds.inverted_residual import InvertedResidualKind

if TYPE_CHECKING:
    from spaces.ops import Op


@register_op_kind("mbconv")
class MBConv(InvertedResidualKind):
    """The inverted residual of the mbconv spaces; its activation is part of its key."""

    def expands(self, op: Op) -> bool:
        return op.expansion != 1

    def key_parts(self, op: Op) -> list[str]:
        return [*super().key_parts(op), op.act]
