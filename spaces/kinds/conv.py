"""``conv``: the FBNet block (ReLU, channel shuffle when grouped, residual whenever the shapes allow it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spaces.kinds.base import register_op_kind
from spaces.kinds.inverted_residual import InvertedResidualKind

if TYPE_CHECKING:
    from spaces.blocks import Block
    from spaces.ops import Op


@register_op_kind("conv")
class FBNetBlock(InvertedResidualKind):
    """Always expands, even at expansion 1; below 1 it is a bottleneck, split inside after its depthwise conv."""

    def expands(self, op: Op) -> bool:
        return True

    def is_bottleneck(self, op: Op | Block) -> bool:
        return op.expansion < 1

    def benchmark_key(self, op: Op) -> str:
        return (
            f"ConvBlock_H{op.h}_W{op.h}_Cin{op.cin}_Cout{op.cout}_exp{op.expansion}_kernel{op.kernel}"
            f"_stride{op.stride}_group{op.groups}"
        )
