"""The inverted-residual structure shared by the FBNet block and the MBConv block."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spaces.kinds.base import OpKind
from spaces.kinds.parts import Conv, Part, activation, channel_shuffle, residual_add

if TYPE_CHECKING:
    from torch import nn

    from spaces.ops import Op


class InvertedResidualKind(OpKind):
    """Expand 1x1 (``expands``), depthwise KxK, project 1x1; ``front`` is everything before the projection."""

    def expands(self, op: Op) -> bool:
        raise NotImplementedError

    def front(self, op: Op) -> tuple[Part, ...]:
        mid, h, h_out = op.mid, op.h, op.out_h
        parts: list[Part] = []
        if self.expands(op):
            parts += [Conv(op.cin, mid, 1, op.groups, h, h), activation(mid * h * h)]
            if op.groups > 1:
                parts.append(channel_shuffle(mid * h * h))
        return (*parts, Conv(mid, mid, op.kernel, mid, h, h_out), activation(mid * h_out * h_out))

    def back(self, op: Op) -> tuple[Part, ...]:
        h_out = op.out_h
        projection = Conv(op.mid, op.cout, 1, op.groups, h_out, h_out)
        return (projection, residual_add(op.cout * h_out * h_out)) if op.residual else (projection,)

    def parts(self, op: Op) -> tuple[Part, ...]:
        return self.front(op) + self.back(op)

    def module(self, op: Op) -> nn.Module:
        from spaces.modules import InvertedResidual

        return InvertedResidual(
            cin=op.cin, cout=op.cout, kernel=op.kernel, expansion=float(op.expansion), stride=op.stride,
            groups=op.groups, residual=op.residual, act=op.act, expand=self.expands(op),
        )

    def payload(self, op: Op) -> int:
        """For a bottleneck block, the narrow ``mid``-channel tensor after the depthwise conv."""
        return op.mid * op.out_h * op.out_h if self.is_bottleneck(op) else super().payload(op)

    def front_share(self, op: Op) -> float:
        """Below 1 for a bottleneck block: its expand and depthwise convs run before the link, its projection after."""
        if not self.is_bottleneck(op):
            return 1.0
        return sum(part.flops for part in self.front(op)) / op.flops

    def key_parts(self, op: Op) -> list[str]:
        residual = "res" if op.residual else "nores"
        return [f"k{op.kernel}", f"s{op.stride}", f"e{op.expansion}", f"g{op.groups}", residual]

    def inner_channels(self, op: Op) -> float:
        return op.cin * float(op.expansion)
