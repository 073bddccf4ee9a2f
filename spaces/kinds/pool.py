"""``pool``: global average pooling and flatten, (cin, h, h) to (cin,)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spaces.kinds.base import OpKind, register_op_kind
from spaces.kinds.parts import Part, average_pool

if TYPE_CHECKING:
    from torch import nn

    from spaces.ops import Op


@register_op_kind("pool")
class Pool(OpKind):
    """A fixed layer before the classifier."""

    def out_h(self, op: Op) -> int:
        return 1

    def output_shape(self, op: Op) -> tuple[int, ...]:
        return (op.cout,)

    def parts(self, op: Op) -> tuple[Part, ...]:
        return (average_pool(op.cin * op.h * op.h),)

    def module(self, op: Op) -> nn.Module:
        from torch import nn

        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def benchmark_key(self, op: Op) -> str:
        return f"AvgP_H{op.h}_W{op.h}_Cin{op.cin}_Cout{op.cout}_kernel{op.h}_stride1"
