"""The end-to-end bench's pairs: searched answers and sampled architectures, splits early to late."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.export import run_exported
from nas.latency import SplitLatencyModel
from nas.latency_client import LatencyClient
from nas.manifest import read_manifest
from predictor.latency import Link
from spaces import sample_architecture
from tests.bench.test_wallclock_check import bench_module
from tests.nas.conftest import hwnasbench_db  # noqa: F401  (the fixture, shared with the nas tests)

e2e = bench_module("e2e_split")


def test_the_plan_spreads_splits_early_to_late_with_the_searched_pairs_among_them() -> None:
    plan = e2e.pair_plan(30, 6)
    splits = [split for split, _ in plan]
    assert len(plan) == 30 and splits == sorted(splits) and (splits[0], splits[-1]) == (1, 20)
    searched = [split for split, is_searched in plan if is_searched]
    assert len(searched) == 6 and searched[0] == 1 and searched[-1] == 20
    assert [split for split, is_searched in e2e.pair_plan(8, 3) if is_searched] == [1, 12, 20]


def test_a_sampled_pair_is_the_seeds_architecture_exported_with_its_predicted_latency(
    hwnasbench_db: str, tmp_path: Path  # noqa: F811
) -> None:
    torch.set_num_threads(1)
    devices = ("raspi4", "edgegpu")
    with LatencyClient(db_url=hwnasbench_db, predictor="lookup") as client:
        first = e2e.sampled_pair(client, 7, 3, tmp_path / "a", bits=8, num_classes=10, devices=devices)
        second = e2e.sampled_pair(client, 15, 4, tmp_path / "b", bits=32, num_classes=10, devices=devices)
        model = SplitLatencyModel(client, space=e2e.SPACE, head_device=devices[0], tail_device=devices[1],
                                  link=Link(8, 8))
        expected = sample_architecture(e2e.SPACE, random.Random(3)).with_splits(7)
        predicted = model.breakdown(expected)
    manifest = read_manifest(first)
    assert (manifest.method, manifest.job) == ("sampled", "sampled-3")
    assert manifest.architecture == list(expected.blocks) and manifest.splits == [7]
    assert [p.device for p in manifest.parts] == list(devices)
    assert manifest.predicted_total_ms == pytest.approx(predicted["total_ms"])
    assert manifest.links[0].predicted_ms == pytest.approx(predicted["comm_ms"])
    assert manifest.links[0].codec.name == "int8" and manifest.links[0].bandwidth_mbps == 8
    other = read_manifest(second)
    assert other.splits == [15] and other.architecture != manifest.architecture
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    assert run_exported(second, x).shape == (1, 10)  # fresh weights, but a network that runs
    assert manifest.verification is not None and max(manifest.verification.values()) < 1e-3
