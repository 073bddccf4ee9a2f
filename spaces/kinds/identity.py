"""``identity``: the zero-cost op of the mbconv spaces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spaces.kinds.base import OpKind, register_op_kind
from spaces.kinds.parts import Part

if TYPE_CHECKING:
    from torch import nn

    from spaces.blocks import Block
    from spaces.ops import Activation, Op


@register_op_kind("identity")
class Identity(OpKind):
    """Returns its input; candidate only where input and output shapes agree."""

    def block_fields(self, block: Block, *, shortcut_possible: bool, act: Activation) -> dict[str, Any]:
        return {"act": act}

    def is_identity(self, op: Op) -> bool:
        return True

    def parts(self, op: Op) -> tuple[Part, ...]:
        return ()

    def module(self, op: Op) -> nn.Module:
        from torch import nn

        return nn.Identity()
