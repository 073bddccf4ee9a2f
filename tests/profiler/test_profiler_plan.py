"""What a profiling run measures: space entries, shared timings, sampled configs, models and heads."""

from __future__ import annotations

import random

import pytest
import torch
from fvcore.nn import FlopCountAnalysis

from profiler.plan import (
    build_plan,
    config_entries,
    drop_measured,
    group_by_timing,
    model_costs,
    op_fields,
    sample_config,
)
from profiler.timing import Timing
from spaces import Architecture, Op, get_space, list_spaces
from spaces.modules import build_op, build_parts

TIMING = Timing(1.5, 0.01, 1.51, 1.49, 20, 100, 0.3, False, (1.5,) * 20)


@pytest.mark.parametrize("name", list_spaces())
def test_every_space_plans_each_layer_block_once_and_times_each_op_once(name: str) -> None:
    space = get_space(name)
    entries = build_plan(space)
    blocks = [e for e in entries if e.target == "block"]
    fixed = [e for e in entries if e.target == "fixed"]
    assert len(blocks) == sum(len(layer.blocks) for layer in space.layers)
    assert {e.key for e in fixed} == {f"{name}/{f.name}" for f in space.fixed_layers}
    groups = group_by_timing(entries)
    assert len(groups) == len(space.distinct_ops)
    for entry in entries:
        entry.record(TIMING)  # every row validates against the storage schema


def test_fbnet_cifar100_has_108_distinct_blocks_plus_4_fixed_layers() -> None:
    groups = group_by_timing(build_plan(get_space("fbnet-cifar100")))
    assert len(groups) == 112
    assert sum(len(g) for g in groups) == 22 * 9 + 4
    shared = next(g for g in groups if g[0].key == "fbnet-cifar100/L2/k5_e6")
    assert [e.key for e in shared] == [f"fbnet-cifar100/L{i}/k5_e6" for i in (2, 3, 4)]


def test_layer_filter_resume_and_records() -> None:
    space = get_space("fbnet-cifar100")
    entries = build_plan(space, layers=[0, 1])
    assert len(entries) == 2 * 9 + 4
    left = drop_measured(entries, {"fbnet-cifar100/stem", "fbnet-cifar100/L0/skip"})
    assert len(left) == len(entries) - 2
    record = entries[1].record(TIMING, thermal_before={"temperature_c": 50.0})
    assert record.target == "block" and record.layer == 0 and record.block == entries[1].block
    assert record.op_key == entries[1].op.key and record.flops == entries[1].op.flops
    assert record.latency_ms == 1.5 and record.repeats == 20 and record.raw["thermal_before"]["temperature_c"] == 50.0


@pytest.mark.parametrize("name", ["fbnet-cifar100", "fbnet-extended-cifar100", "mbconv-cifar100"])
def test_sampled_configs_are_valid_blocks_around_the_space(name: str) -> None:
    space = get_space(name)
    entries = config_entries(space, 40, random.Random(3))
    assert len({e.key for e in entries}) == 40
    kernels, expansions = set(), set()
    for entry in entries:
        op = entry.op
        assert entry.target == "config" and entry.key == op.key
        assert 2 <= op.h <= 2 * max(layer.h for layer in space.layers)
        assert op.cin % 8 == 0 and op.cout % 8 == 0 and op.stride in (1, 2)
        kernels.add(op.kernel)
        expansions.add(op.expansion)
        config = entry.record(TIMING).config
        assert Op(**{**op_fields(op), "expansion": op.expansion}) == op
        assert config["kind"] == op.kind and config["macs"] == op.macs
    assert kernels >= {3, 5, 7}
    assert min(expansions) < 1 < max(expansions)


def test_sampled_configs_build_and_run() -> None:
    rng = random.Random(0)
    with torch.inference_mode():
        for _ in range(10):
            op = sample_config(get_space("fbnet-cifar100"), rng)
            out = build_op(op).eval()(torch.randn(1, *op.input_shape))
            assert tuple(out.shape[1:]) == op.output_shape


def test_models_come_as_whole_network_and_head() -> None:
    space = get_space("fbnet-cifar100")
    entries = [e for e in build_plan(space, models=3, seed=1) if e.target == "model"]
    assert len(entries) == 6
    for whole, head in zip(entries[::2], entries[1::2], strict=True):
        assert "@" not in whole.key and head.key.startswith(whole.key + "@")
        assert whole.config()["part"] == "full" and whole.config()["split"] is None
        assert head.config()["part"] == "head" and head.config()["split"] == head.arch.split
        assert head.flops <= whole.flops == whole.arch.flops
        Architecture.parse(head.key.split("/", 1)[1], space)
    assert build_plan(space, models=3, seed=1) == build_plan(space, models=3, seed=1)


def test_head_costs_match_fvcore_even_when_split_inside_a_bottleneck() -> None:
    space = get_space("fbnet-extended-cifar100")
    blocks = ["k3_e1/4", "k5_e1/2"] + ["k3_e3"] * 20
    for split in (0, 1, 2, 7):
        arch = Architecture(space, tuple(blocks), (split,))
        head = build_parts(arch)[0].train()
        fvcore_flops = FlopCountAnalysis(head, torch.randn(1, 3, 32, 32)).unsupported_ops_warnings(False)
        fvcore_flops.uncalled_modules_warnings(False)
        assert model_costs(arch)["flops"] == fvcore_flops.total(), split
