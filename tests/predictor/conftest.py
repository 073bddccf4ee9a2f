"""Synthetic devices in real SQLite files, shared by the predictor tests (their latencies are generated)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spaces import get_space
from tests.predictor.synthetic import EXTENDED, synthetic_records
from tests.utils.factories import block_records, config_ops, config_records, fixed_records, ingest, synthetic_ms


@pytest.fixture(scope="session")
def synthetic_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database with a fully measured synthetic CPU (blocks, fixed layers, configs, models and heads) and a
    synthetic device of the extended space whose bottleneck blocks were never measured."""
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('predictor')) / 'synthetic.db'}"
    ingest(url, "synth-cpu", synthetic_records())
    s = get_space(EXTENDED)
    partial = {(layer.index, b.name): synthetic_ms(layer.op(b)) for layer in s.layers for b in layer.blocks
               if not b.is_bottleneck}
    ingest(url, "synth-partial", block_records(EXTENDED, partial) + fixed_records(EXTENDED, synthetic_ms)
           + config_records(config_ops(80, seed=1), synthetic_ms))
    return url
