"""``convnorm``: a conv + BN + activation (the stem and the head conv)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spaces.kinds.base import OpKind, register_op_kind
from spaces.kinds.parts import Conv, Part, activation

if TYPE_CHECKING:
    from torch import nn

    from spaces.ops import Op


@register_op_kind("convnorm")
class ConvNorm(OpKind):
    """A fixed layer; its activation is part of its key."""

    def parts(self, op: Op) -> tuple[Part, ...]:
        h_out = op.out_h
        return (Conv(op.cin, op.cout, op.kernel, op.groups, op.h, h_out), activation(op.cout * h_out * h_out))

    def module(self, op: Op) -> nn.Module:
        from torch import nn

        from spaces.modules import activation_module, conv_bn

        return nn.Sequential(
            *conv_bn(op.cin, op.cout, op.kernel, stride=op.stride, groups=op.groups), activation_module(op.act)
        )

    def key_parts(self, op: Op) -> list[str]:
        return [f"k{op.kernel}", f"s{op.stride}", f"e{op.expansion}", f"g{op.groups}", op.act]

    def benchmark_key(self, op: Op) -> str:
        return (
            f"ConvNorm_H{op.h}_W{op.h}_Cin{op.cin}_Cout{op.cout}_kernel{op.kernel}_stride{op.stride}"
            f"_group{op.groups}"
        )
