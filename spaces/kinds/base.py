"""What an op kind is: one ``OpKind`` subclass per kind, one instance of each in ``OP_KINDS``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from spaces.errors import UnknownOpKindError
from spaces.kinds.parts import Part
from spaces.registry import registrar

if TYPE_CHECKING:
    from torch import nn

    from spaces.blocks import Block
    from spaces.ops import Activation, Op

OP_KINDS: dict[str, OpKind] = {}

K = TypeVar("K", bound="type[OpKind]")

_register = registrar(OP_KINDS, "op kind", attribute="name")


def register_op_kind(name: str) -> Callable[[K], K]:
    """Class decorator registering one instance of the class as op kind ``name`` (``Op.kind``)."""

    def add(cls: K) -> K:
        _register(name)(cls())
        return cls

    return add


def get_op_kind(name: str) -> OpKind:
    """The registered kind ``name``, or UnknownOpKindError listing the registered ones."""
    if name not in OP_KINDS:
        raise UnknownOpKindError(f"unknown op kind {name!r}; allowed: {', '.join(OP_KINDS)}")
    return OP_KINDS[name]


class OpKind:
    """Everything that depends on an op's kind; the defaults fit an op mapping (cin, h, h) to (cout, h', h').

    Shapes, costs, key and payload of an ``spaces.Op`` are derived here; ``parts`` lists the layers the
    op runs, in the order ``module`` runs them, and every cost is a sum over them.
    """

    name: str  # set by register_op_kind

    def parts(self, op: Op) -> tuple[Part, ...]:
        raise NotImplementedError

    def module(self, op: Op) -> nn.Module:
        """The torch module computing ``op`` (imports torch: only ``spaces.modules.build_op`` calls it)."""
        raise NotImplementedError

    def block_fields(self, block: Block, *, shortcut_possible: bool, act: Activation) -> dict[str, Any]:
        """The ``Op`` fields besides the shape that ``block`` sets at a layer."""
        return {
            "kernel": block.kernel, "expansion": block.expansion, "groups": block.groups,
            "residual": block.residual and shortcut_possible, "act": act,
        }

    def out_h(self, op: Op) -> int:
        return math.ceil(op.h / op.stride)

    def input_shape(self, op: Op) -> tuple[int, ...]:
        return (op.cin, op.h, op.h)

    def output_shape(self, op: Op) -> tuple[int, ...]:
        return (op.cout, op.out_h, op.out_h)

    def is_identity(self, op: Op) -> bool:
        """True when the op returns its input (no cost at all)."""
        return False

    def is_bottleneck(self, op: Op | Block) -> bool:
        """True when a split right after the op falls inside it (its ``front`` runs before the link)."""
        return False

    def payload(self, op: Op) -> int:
        """Elements sent over the link when the network is split right after ``op``."""
        return math.prod(op.output_shape)

    def front(self, op: Op) -> tuple[Part, ...]:
        """The parts that run before the link when the network is split right after ``op`` (all of them)."""
        return op.parts

    def front_share(self, op: Op) -> float:
        """Share of the op's FLOPs that runs before the link when the network is split right after it."""
        front = sum(part.flops for part in self.front(op))
        return 1.0 if front == op.flops else front / op.flops

    def key_parts(self, op: Op) -> list[str]:
        """What names the op in its key besides the kind, resolution and channels."""
        return []

    def benchmark_key(self, op: Op) -> str | None:
        """HW-NAS-Bench's key for ``op`` (H and W are the input resolution); None when the benchmark has none."""
        return None

    def inner_channels(self, op: Op) -> float:
        """Channels inside the op (the regression feature ``mid``)."""
        return float(op.cout)
