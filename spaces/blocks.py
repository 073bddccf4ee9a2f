"""Candidate blocks: their names, their parameters, and parsing of block names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from spaces.errors import InvalidBlockError
from spaces.kinds import get_op_kind

BlockKind = Literal["conv", "skip", "mbconv", "identity"]

_CONV_NAME = re.compile(r"^k(?P<k>\d+)_e(?P<e>\d+(?:/[1-9]\d*)?)(?:_g(?P<g>\d+))?(?P<res>_res)?$")


@dataclass(frozen=True)
class Block:
    """One candidate operation of a layer, independent of the layer's shape.

    ``kind`` names the op kind it becomes at a layer (``spaces.kinds``): ``conv`` the FBNet block,
    ``mbconv`` the MobileNetV2 block, ``skip`` the FBNet skip, ``identity`` the MBConv-space zero-cost op.
    """

    name: str
    kind: BlockKind
    kernel: int = 0
    expansion: Fraction = Fraction(0)
    groups: int = 1
    residual: bool = False

    @property
    def is_bottleneck(self) -> bool:
        """True for the extended-space blocks (expansion below one) that can be split inside."""
        return get_op_kind(self.kind).is_bottleneck(self)


def conv_block(kernel: int, expansion: Fraction | int, groups: int = 1) -> Block:
    expansion = Fraction(expansion)
    name = f"k{kernel}_e{expansion}" + (f"_g{groups}" if groups > 1 else "")
    return Block(name, "conv", kernel, expansion, groups, residual=expansion >= 1)


def mbconv_block(kernel: int, expansion: int, residual: bool) -> Block:
    name = f"k{kernel}_e{expansion}" + ("_res" if residual else "")
    return Block(name, "mbconv", kernel, Fraction(expansion), 1, residual)


SKIP = Block("skip", "skip")
IDENTITY = Block("identity", "identity")

FBNET_BLOCKS: tuple[Block, ...] = (
    conv_block(3, 1),
    conv_block(3, 1, groups=2),
    conv_block(3, 3),
    conv_block(3, 6),
    conv_block(5, 1),
    conv_block(5, 1, groups=2),
    conv_block(5, 3),
    conv_block(5, 6),
    SKIP,
)
BOTTLENECK_BLOCKS: tuple[Block, ...] = tuple(
    conv_block(k, Fraction(1, d)) for k in (3, 5) for d in (2, 4, 8)
)
MBCONV_BLOCKS: tuple[Block, ...] = tuple(
    mbconv_block(k, e, res) for k in (3, 5, 7) for e in (3, 6) for res in (False, True)
) + (IDENTITY,)


def parse_block_name(name: str) -> tuple[int, Fraction, int, bool]:
    """Split a conv-like block name ``k5_e6``, ``k3_e1_g2``, ``k3_e1/4``, ``k7_e6_res``.

    Returns (kernel, expansion, groups, residual flag). Raises InvalidBlockError naming the bad part.
    """
    match = _CONV_NAME.match(name) if isinstance(name, str) else None
    if not match:
        raise InvalidBlockError(
            f"malformed block name {name!r}: expected 'k<kernel>_e<expansion>[_g<groups>][_res]' "
            "(e.g. 'k5_e6', 'k3_e1_g2', 'k3_e1/4') or 'skip' / 'identity'"
        )
    expansion = Fraction(match["e"])
    if expansion <= 0:
        raise InvalidBlockError(f"block {name!r}: expansion must be positive")
    return int(match["k"]), expansion, int(match["g"] or 1), bool(match["res"])
