"""The inverted-residual structure shared by the FBNet block and the MBConv block."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spaces.kinds.base import OpKind
from spaces.kinds.parts import Conv, Part, activation, channel_shuffle, residual_add

if TYPE_CHECKING:
    from torch import nn

    from spaces.ops import Op


class InvertedResidualKind(OpKind):
    """Expand 1x1 (when ``expands``), depthwise KxK, project 1x1; a bottleneck is split before the projection."""

    def expands(self, op: Op) -> bool:
        raise NotImplementedError

    def before_projection(self, op: Op) -> tuple[Part, ...]:
        mid, h, h_out = op.mid, op.h, op.out_h
        parts: list[Part] = []
        if self.expands(op):
            parts += [Conv(op.cin, mid, 1, op.groups, h, h), activation(mid * h * h)]
            if op.groups > 1:
                parts.append(channel_shuffle(mid * h * h))
        return (*parts, Conv(mid, mid, op.kernel, mid, h, h_out), activation(mid * h_out * h_out))

    def projection(self, op: Op) -> tuple[Part, ...]:
        h_out = op.out_h
        project = Conv(op.mid, op.cout, 1, op.groups, h_out, h_out)
        return (project, residual_add(op.cout * h_out * h_out)) if op.residual else (project,)

    def parts(self, op: Op) -> tuple[Part, ...]:
        return self.before_projection(op) + self.projection(op)

    def module(self, op: Op) -> nn.Module:
        from spaces.modules import InvertedResidual

        return InvertedResidual(
            cin=op.cin, cout=op.cout, kernel=op.kernel, expansion=float(op.expansion), stride=op.stride,
            groups=op.groups, residual=op.residual, act=op.act, expand=self.expands(op),
        )

    def front(self, op: Op) -> tuple[Part, ...]:
        """A bottleneck block's expand and depthwise convs (``InvertedResidual.front``); the whole block otherwise."""
        return self.before_projection(op) if self.is_bottleneck(op) else op.parts

    def payload(self, op: Op) -> int:
        """For a bottleneck block, the narrow ``mid``-channel tensor after the depthwise conv."""
        return op.mid * op.out_h * op.out_h if self.is_bottleneck(op) else super().payload(op)

    def key_parts(self, op: Op) -> list[str]:
        residual = "res" if op.residual else "nores"
        return [f"k{op.kernel}", f"s{op.stride}", f"e{op.expansion}", f"g{op.groups}", residual]

    def inner_channels(self, op: Op) -> float:
        return op.cin * float(op.expansion)
