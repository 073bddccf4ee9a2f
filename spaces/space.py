"""Search spaces: layer tables, fixed layers, candidate blocks, split points, and the registry."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from spaces.blocks import Block, parse_block_name
from spaces.errors import InvalidBlockError, InvalidLayerError, UnknownSpaceError
from spaces.ops import Activation, Op
from spaces.registry import registrar


@dataclass(frozen=True)
class Layer:
    """One searchable layer: its shape and the blocks allowed there."""

    index: int
    h: int
    cin: int
    cout: int
    stride: int
    blocks: tuple[Block, ...]
    act: Activation

    @property
    def block_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.blocks)

    def op(self, block: Block) -> Op:
        return Op.from_block(block, h=self.h, cin=self.cin, cout=self.cout, stride=self.stride, act=self.act)


@dataclass(frozen=True)
class FixedLayer:
    """A layer that every architecture of the space has (stem, head conv, pool, classifier)."""

    name: str
    op: Op


@dataclass(frozen=True)
class SearchSpace:
    """A macro-architecture with searchable layers.

    Split point ``k`` cuts after the fixed prefix (k = 0) or after searchable layer k - 1; the head
    is the prefix plus layers 0..k-1, the tail is the rest plus the fixed suffix.
    """

    name: str
    family: str
    input_size: int
    num_classes: int
    prefix: tuple[FixedLayer, ...]
    layers: tuple[Layer, ...]
    suffix: tuple[FixedLayer, ...]
    description: str = ""

    @property
    def split_points(self) -> range:
        return range(len(self.layers) + 1)

    @property
    def fixed_layers(self) -> tuple[FixedLayer, ...]:
        return self.prefix + self.suffix

    @cached_property
    def blocks(self) -> tuple[Block, ...]:
        """Every block that is a candidate somewhere in the space, in catalogue order."""
        seen: dict[str, Block] = {}
        for layer in self.layers:
            for block in layer.blocks:
                seen.setdefault(block.name, block)
        return tuple(seen.values())

    def layer(self, index: int) -> Layer:
        try:
            position = operator.index(index)  # any integer type, numpy's included
        except TypeError:
            position = -1
        if not 0 <= position < len(self.layers):
            raise InvalidLayerError(
                f"layer {index!r} is not in space {self.name!r}: allowed layers are 0..{len(self.layers) - 1}"
            )
        return self.layers[position]

    def block(self, name: str, layer: int | None = None) -> Block:
        """The block called ``name`` (at ``layer`` when given), or an error listing what is allowed."""
        candidates = self.layer(layer).blocks if layer is not None else self.blocks
        for block in candidates:
            if block.name == name:
                return block
        if name not in ("skip", "identity"):
            parse_block_name(name)  # raises with the expected syntax when the name is malformed
        where = f"at layer {layer} of space {self.name!r}" if layer is not None else f"in space {self.name!r}"
        allowed = ", ".join(b.name for b in candidates)
        raise InvalidBlockError(f"block {name!r} is not a candidate {where}; allowed: {allowed}")

    def op(self, layer: int, block: str) -> Op:
        return self.layer(layer).op(self.block(block, layer))

    def fixed(self, name: str) -> FixedLayer:
        for fixed in self.fixed_layers:
            if fixed.name == name:
                return fixed
        allowed = ", ".join(f.name for f in self.fixed_layers)
        raise InvalidLayerError(f"space {self.name!r} has no fixed layer {name!r}; allowed: {allowed}")

    @cached_property
    def distinct_ops(self) -> dict[str, Op]:
        """Every distinct op of the space (blocks at layers and fixed layers), keyed by op key."""
        ops = {f.op.key: f.op for f in self.fixed_layers}
        for layer in self.layers:
            for block in layer.blocks:
                op = layer.op(block)
                ops.setdefault(op.key, op)
        return ops


SPACES: dict[str, Callable[[], SearchSpace]] = {}


register_space = registrar(SPACES, "search space")


_CACHE: dict[str, SearchSpace] = {}


def get_space(name: str) -> SearchSpace:
    """The registered space ``name``, or UnknownSpaceError listing the registered ones."""
    if name not in SPACES:
        raise UnknownSpaceError(f"unknown search space {name!r}; allowed: {', '.join(list_spaces())}")
    if name not in _CACHE:
        _CACHE[name] = SPACES[name]()
    return _CACHE[name]


def list_spaces() -> list[str]:
    return sorted(SPACES)


def stage_layers(
    *,
    h: int,
    cin: int,
    channels: Sequence[int],
    depths: Sequence[int],
    strides: Sequence[int],
    blocks_for: Callable[[int, int, int], tuple[Block, ...]],
    act: Activation,
) -> tuple[Layer, ...]:
    """Expand a stage table into layers; only a stage's first layer changes channels and strides.

    ``blocks_for(cin, cout, stride)`` returns the candidate blocks for a layer of that shape.
    """
    layers: list[Layer] = []
    for cout, depth, stride in zip(channels, depths, strides, strict=True):
        for i in range(depth):
            s = stride if i == 0 else 1
            layers.append(Layer(len(layers), h, cin, cout, s, blocks_for(cin, cout, s), act))
            h = -(-h // s)
            cin = cout
    return tuple(layers)
