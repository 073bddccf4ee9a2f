"""HW-NAS-Bench latency tables for NAS tests: as DeviceLUTs, or imported and fitted in a test database."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from db.engine import session_scope
from predictor import fit_predictors
from predictor.latency import DeviceLUT
from profiler.hwnasbench import benchmark_key, import_tables, load_tables
from spaces import get_space


def hwnasbench_lut(directory: Path, device: str, space: str = "fbnet-cifar100") -> DeviceLUT:
    """``device``'s published latency of every (layer, block) and fixed layer of ``space``, as a table."""
    latency = load_tables(directory)[f"{device}_latency"]
    s = get_space(space)
    blocks = tuple(b.name for b in s.blocks)
    table = np.full((len(s.layers), len(blocks)), np.nan)
    for layer in s.layers:
        for block in layer.blocks:
            table[layer.index, blocks.index(block.name)] = latency[benchmark_key(layer.op(block))]
    fixed = {f.name: latency[benchmark_key(f.op)] for f in s.fixed_layers}
    return DeviceLUT(device=device, space=space, blocks=blocks, table=table, fixed=fixed,
                     measured=~np.isnan(table))


def hwnasbench_database(db_url: str, directory: Path, devices: tuple[str, ...] = ("raspi4", "edgegpu"),
                        space: str = "fbnet-cifar100") -> None:
    """Import HW-NAS-Bench into ``db_url`` and fit a lookup predictor for each of ``devices``."""
    with session_scope(db_url) as session:
        import_tables(session, load_tables(directory), source=str(directory))
        for device in devices:
            fit_predictors(session, device=device, space=space, kinds=["lookup"], evaluate=False)
