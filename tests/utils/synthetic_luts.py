"""Synthetic device latency tables for tests of latency arithmetic (not measurements of anything)."""

from __future__ import annotations

import numpy as np

from predictor.latency import DeviceLUT
from spaces import get_space


def synthetic_lut(space_name: str, device: str, *, seed: int, speed: float = 1.0, scale: float = 1.0) -> DeviceLUT:
    """A table with a random positive latency (ms / ``speed``) for every candidate and fixed layer."""
    space = get_space(space_name)
    rng = np.random.default_rng(seed)
    blocks = tuple(b.name for b in space.blocks)
    table = np.full((len(space.layers), len(blocks)), np.nan)
    for layer in space.layers:
        for block in layer.blocks:
            table[layer.index, blocks.index(block.name)] = rng.uniform(0.1, 3.0) / speed
    fixed = {f.name: float(rng.uniform(0.1, 2.0)) / speed for f in space.fixed_layers}
    return DeviceLUT(device=device, space=space_name, blocks=blocks, table=table, fixed=fixed, scale=scale)
