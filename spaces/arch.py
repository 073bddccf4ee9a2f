"""Architectures of a space and their canonical string encoding.

An architecture string lists one block per searchable layer, comma separated, optionally followed by
``@`` and the split point(s): ``k3_e1,k5_e6,skip,...,k3_e3@7`` or ``...@4,12`` for a chain of three
devices. Split point k cuts after the fixed prefix (k = 0) or after layer k - 1.
"""

from __future__ import annotations

import operator
import random
from dataclasses import dataclass

from spaces.errors import InvalidArchitectureError, SpaceError
from spaces.ops import Op
from spaces.space import SearchSpace, get_space


@dataclass(frozen=True)
class Architecture:
    """One block per layer of ``space``, plus zero or more increasing split points."""

    space: SearchSpace
    blocks: tuple[str, ...]
    splits: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        try:
            splits = tuple(operator.index(k) for k in self.splits)  # numpy integers become ints
        except TypeError:
            raise InvalidArchitectureError(f"split points must be integers, got {list(self.splits)}") from None
        object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "splits", splits)
        n = len(self.space.layers)
        if len(self.blocks) != n:
            raise InvalidArchitectureError(
                f"architecture has {len(self.blocks)} blocks but space {self.space.name!r} has {n} layers"
            )
        for i, name in enumerate(self.blocks):
            try:
                self.space.block(name, i)
            except SpaceError as exc:
                raise InvalidArchitectureError(f"layer {i}: {exc}") from None
        for k in self.splits:
            if k not in self.space.split_points:
                raise InvalidArchitectureError(
                    f"split point {k} is not in space {self.space.name!r}: allowed 0..{n}"
                )
        if list(self.splits) != sorted(set(self.splits)):
            raise InvalidArchitectureError(f"split points must be strictly increasing, got {list(self.splits)}")

    @classmethod
    def parse(cls, text: str, space: SearchSpace | str) -> Architecture:
        """Parse an architecture string; errors name the bad part and what is allowed."""
        space = get_space(space) if isinstance(space, str) else space
        if not isinstance(text, str) or not text.strip():
            raise InvalidArchitectureError("architecture string is empty")
        body, sep, split_text = text.strip().partition("@")
        splits: tuple[int, ...] = ()
        if sep:
            try:
                splits = tuple(int(part) for part in split_text.split(","))
            except ValueError:
                raise InvalidArchitectureError(
                    f"split points {split_text!r} must be integers separated by commas (e.g. '@7' or '@4,12')"
                ) from None
        blocks = tuple(part.strip() for part in body.split(","))
        return cls(space, blocks, splits)

    def encode(self) -> str:
        text = ",".join(self.blocks)
        if self.splits:
            text += "@" + ",".join(str(k) for k in self.splits)
        return text

    def __str__(self) -> str:
        return self.encode()

    def with_splits(self, *splits: int) -> Architecture:
        return Architecture(self.space, self.blocks, tuple(splits))

    @property
    def split(self) -> int:
        """The single split point; an error when there is not exactly one."""
        if len(self.splits) != 1:
            raise InvalidArchitectureError(f"expected exactly one split point, got {list(self.splits)}")
        return self.splits[0]

    @property
    def layer_ops(self) -> list[Op]:
        return [self.space.op(i, name) for i, name in enumerate(self.blocks)]

    @property
    def ops(self) -> list[Op]:
        """Every op from input to output: prefix, the chosen blocks, suffix."""
        return [f.op for f in self.space.prefix] + self.layer_ops + [f.op for f in self.space.suffix]

    def payload(self, split: int) -> int:
        """Elements crossing the link when split at ``split``."""
        if split not in self.space.split_points:
            raise InvalidArchitectureError(
                f"split point {split} is not in space {self.space.name!r}: allowed 0..{len(self.space.layers)}"
            )
        if split == 0:
            return self.space.prefix[-1].op.payload
        return self.space.op(split - 1, self.blocks[split - 1]).payload

    def segments(self) -> list[range]:
        """Layer index ranges run by each device: one more segment than split points."""
        bounds = [0, *self.splits, len(self.blocks)]
        return [range(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def flops(self) -> int:
        return sum(op.flops for op in self.ops)

    @property
    def params(self) -> int:
        return sum(op.params for op in self.ops)


def sample_architecture(space: SearchSpace | str, rng: random.Random, *, splits: int = 0) -> Architecture:
    """A uniformly random architecture of ``space`` with ``splits`` distinct random split points."""
    space = get_space(space) if isinstance(space, str) else space
    blocks = tuple(rng.choice(layer.blocks).name for layer in space.layers)
    points = tuple(sorted(rng.sample(list(space.split_points), splits)))
    return Architecture(space, blocks, points)
