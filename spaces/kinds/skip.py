"""``skip``: the FBNet skip, the identity, or a 1x1 conv + BN + ReLU when the shapes change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spaces.kinds.base import OpKind, register_op_kind
from spaces.kinds.parts import Conv, Part, activation

if TYPE_CHECKING:
    from torch import nn

    from spaces.blocks import Block
    from spaces.ops import Activation, Op


@register_op_kind("skip")
class Skip(OpKind):
    """Free where a residual would be possible; otherwise it projects to the layer's output shape."""

    def block_fields(self, block: Block, *, shortcut_possible: bool, act: Activation) -> dict[str, Any]:
        return {"act": "relu"}

    def is_identity(self, op: Op) -> bool:
        return op.stride == 1 and op.cin == op.cout

    def parts(self, op: Op) -> tuple[Part, ...]:
        if self.is_identity(op):
            return ()
        return (Conv(op.cin, op.cout, 1, 1, op.h, op.out_h), activation(op.cout * op.out_h * op.out_h))

    def module(self, op: Op) -> nn.Module:
        from torch import nn

        from spaces.modules import conv_bn

        if self.is_identity(op):
            return nn.Identity()
        return nn.Sequential(*conv_bn(op.cin, op.cout, 1, stride=op.stride), nn.ReLU(inplace=True))

    def key_parts(self, op: Op) -> list[str]:
        return [f"s{op.stride}"]

    def benchmark_key(self, op: Op) -> str:
        return f"Skip_H{op.h}_W{op.h}_Cin{op.cin}_Cout{op.cout}_stride{op.stride}"
