"""Concrete operations (a block at a shape) with analytic shapes and costs.

Cost conventions (DESIGN.md section 4): ``macs`` counts the multiply-accumulates of every conv and
linear layer; ``flops`` is the reference convention, MACs plus 5 per batch-norm output element (what
fvcore reports for a block in training mode); ReLU, channel shuffle and the residual add count
nothing. ``params`` counts trainable parameters (BN affine included, running statistics excluded).
What depends on the op's kind is its ``OpKind`` in ``spaces.kinds``; an op sums its kind's parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Literal

from spaces.blocks import Block
from spaces.kinds import BN_FLOPS_PER_ELEMENT, Conv, OpKind, Part, get_op_kind

__all__ = ["BN_FLOPS_PER_ELEMENT", "Activation", "Op"]

Activation = Literal["relu", "relu6"]


@dataclass(frozen=True)
class Op:
    """One operation at a fixed input shape: a candidate block at a layer, or a fixed layer.

    ``kind`` names a registered ``spaces.kinds.OpKind``; ``h`` is the input resolution (square inputs);
    ``expansion`` multiplies the *input* channels.
    """

    kind: str
    h: int
    cin: int
    cout: int
    stride: int = 1
    kernel: int = 1
    expansion: Fraction = Fraction(1)
    groups: int = 1
    residual: bool = False
    act: Activation = "relu"

    def __post_init__(self) -> None:
        get_op_kind(self.kind)  # an unknown kind fails here, naming the registered ones

    @classmethod
    def from_block(cls, block: Block, *, h: int, cin: int, cout: int, stride: int, act: Activation) -> Op:
        """The op that ``block`` becomes at a layer with this shape."""
        shortcut_possible = stride == 1 and cin == cout
        fields = get_op_kind(block.kind).block_fields(block, shortcut_possible=shortcut_possible, act=act)
        return cls(block.kind, h, cin, cout, stride, **fields)

    @property
    def op_kind(self) -> OpKind:
        return get_op_kind(self.kind)

    # -- shapes ---------------------------------------------------------------------------------
    @property
    def out_h(self) -> int:
        return self.op_kind.out_h(self)

    @property
    def mid(self) -> int:
        """Channels inside the block (input channels times expansion)."""
        mid = self.cin * self.expansion
        if mid.denominator != 1:
            raise ValueError(f"expansion {self.expansion} does not divide {self.cin} input channels")
        return int(mid)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.op_kind.input_shape(self)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.op_kind.output_shape(self)

    @property
    def is_bottleneck(self) -> bool:
        return self.op_kind.is_bottleneck(self)

    @property
    def is_identity(self) -> bool:
        return self.op_kind.is_identity(self)

    @property
    def payload(self) -> int:
        """Elements sent over the link when the network is split right after this op.

        For a bottleneck block (expansion below one) the split happens inside the block, after its
        depthwise conv, so the payload is the narrow ``mid``-channel tensor.
        """
        return self.op_kind.payload(self)

    @property
    def front_share(self) -> float:
        """Share of the op's FLOPs that runs before the link when the network is split right after it.

        1 for every op but a bottleneck block, which is split inside: its expand and depthwise convs run
        before the link, its projection after.
        """
        return self.op_kind.front_share(self)

    @property
    def front_parts(self) -> tuple[Part, ...]:
        """The ``parts`` that run before the link when the network is split right after this op."""
        return self.op_kind.front(self)

    # -- costs ----------------------------------------------------------------------------------
    @cached_property
    def parts(self) -> tuple[Part, ...]:
        """The layers the op runs, in order (what its torch module is made of)."""
        return self.op_kind.parts(self)

    @property
    def convs(self) -> tuple[Conv, ...]:
        """The conv and linear layers among ``parts``."""
        return tuple(part for part in self.parts if isinstance(part, Conv))

    @cached_property
    def macs(self) -> int:
        return sum(part.macs for part in self.parts)

    @cached_property
    def flops(self) -> int:
        return sum(part.flops for part in self.parts)

    @cached_property
    def params(self) -> int:
        return sum(part.params for part in self.parts)

    @cached_property
    def bn_elements(self) -> int:
        return sum(part.bn_elements for part in self.parts)

    @property
    def activation_elements(self) -> int:
        """Input plus output elements: a proxy for the op's memory traffic."""
        return math.prod(self.input_shape) + math.prod(self.output_shape)

    # -- identity -------------------------------------------------------------------------------
    @property
    def key(self) -> str:
        """Canonical string naming this op, shared by every layer (and space) with the same op."""
        return "_".join([self.kind, f"h{self.h}", f"cin{self.cin}", f"cout{self.cout}", *self.op_kind.key_parts(self)])

    def features(self) -> dict[str, float]:
        """Numeric description of the op for regression models."""
        return {
            "h": self.h,
            "cin": self.cin,
            "cout": self.cout,
            "stride": self.stride,
            "kernel": self.kernel,
            "expansion": float(self.expansion),
            "groups": self.groups,
            "residual": float(self.residual),
            "macs": self.macs,
            "flops": self.flops,
            "params": self.params,
            "activations": self.activation_elements,
            "bn_elements": self.bn_elements,
        }
