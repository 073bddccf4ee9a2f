"""Search spaces: layer tables, block catalogue, op kinds with analytic shapes and costs (no torch import).

The torch modules that build blocks and networks live in ``spaces.modules`` and are imported only
where torch is needed.
"""

from __future__ import annotations

from spaces import catalog as _catalog  # noqa: F401  (registers the spaces)
from spaces.arch import Architecture, sample_architecture
from spaces.blocks import Block
from spaces.errors import (
    InvalidArchitectureError,
    InvalidBlockError,
    InvalidLayerError,
    SpaceError,
    UnknownOpKindError,
    UnknownSpaceError,
)
from spaces.ops import Op
from spaces.space import FixedLayer, Layer, SearchSpace, get_space, list_spaces

__all__ = [
    "Architecture",
    "Block",
    "FixedLayer",
    "InvalidArchitectureError",
    "InvalidBlockError",
    "InvalidLayerError",
    "Layer",
    "Op",
    "SearchSpace",
    "SpaceError",
    "UnknownOpKindError",
    "UnknownSpaceError",
    "get_space",
    "list_spaces",
    "sample_architecture",
]
