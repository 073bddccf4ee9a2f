"""``fc``: the linear classifier, (cin,) to (cout,)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spaces.kinds.base import OpKind, register_op_kind
from spaces.kinds.parts import Conv, Part

if TYPE_CHECKING:
    from torch import nn

    from spaces.ops import Op


@register_op_kind("fc")
class FullyConnected(OpKind):
    """The last fixed layer; its input is the pooled vector."""

    def out_h(self, op: Op) -> int:
        return 1

    def input_shape(self, op: Op) -> tuple[int, ...]:
        return (op.cin,)

    def output_shape(self, op: Op) -> tuple[int, ...]:
        return (op.cout,)

    def parts(self, op: Op) -> tuple[Part, ...]:
        return (Conv(op.cin, op.cout, 1, 1, 1, 1, linear=True),)

    def module(self, op: Op) -> nn.Module:
        from torch import nn

        return nn.Linear(op.cin, op.cout)

    def benchmark_key(self, op: Op) -> str:
        return f"FC_Cin{op.cin}_Cout{op.cout}"
