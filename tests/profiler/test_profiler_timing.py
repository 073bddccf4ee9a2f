"""Timing through torch.utils.benchmark: statistics per execution, adaptive budget, noise flag."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from profiler.settings import TimingSettings
from profiler.timing import measure
from profiler.workloads import model_workload, op_workload
from spaces import Architecture, get_space

# Samples of 10 ms: long enough that the timer picks one call per sample, so 0.05 s gives several samples.
FAST = dict(min_run_time=0.05, max_run_time=0.1, block_time=0.01, warmup=1)


@pytest.fixture
def linear() -> nn.Module:
    return nn.Linear(128, 128).eval()


def test_statistics_are_per_execution(linear: nn.Module) -> None:
    x = torch.randn(1, 128)
    settings = TimingSettings(**FAST)
    with torch.inference_mode():
        once = measure(lambda: linear(x), executions=1, settings=settings)

        def four_times() -> None:
            for _ in range(4):
                linear(x)

        four = measure(four_times, executions=4, settings=settings)
    for timing in (once, four):
        assert timing.runs >= 4 and len(timing.times_ms) == timing.runs
        assert timing.min_ms <= timing.median_ms <= max(timing.times_ms)
        assert timing.iqr_ms >= 0 and timing.mean_ms > 0
    # Four executions per call, divided by four: the same per-execution latency (loosely, the machine is shared).
    assert 0.4 < four.median_ms / once.median_ms < 2.5


def test_noisy_entries_get_the_whole_budget_and_a_flag(linear: nn.Module) -> None:
    x = torch.randn(1, 128)
    with torch.inference_mode():
        strict = measure(lambda: linear(x), executions=1, settings=TimingSettings(**{**FAST, "threshold": 1e-9}))
        lenient = measure(lambda: linear(x), executions=1, settings=TimingSettings(**{**FAST, "threshold": 10.0}))
    assert strict.noisy and not lenient.noisy
    assert strict.runs > lenient.runs  # kept timing up to max_run_time, trying to settle
    assert strict.summary()["relative_iqr"] == pytest.approx(strict.iqr_ms / strict.median_ms)


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="min_run_time"):
        TimingSettings(min_run_time=0.5, max_run_time=0.1)
    with pytest.raises(ValueError, match="thread clock"):
        TimingSettings(clock="thread", threads=2)
    with pytest.raises(ValueError, match="unknown clock"):
        TimingSettings(clock="sundial")
    assert TimingSettings().resolved_clock == "thread"
    assert TimingSettings(threads=2).resolved_clock == "wall"
    assert TimingSettings(device="cuda").as_dict()["clock"] == "wall"


def test_op_workload_runs_independent_copies() -> None:
    op = get_space("fbnet-cifar100").op(5, "k5_e6")
    workload = op_workload(op, copies=3)
    assert workload.executions == 3 and len(workload.modules) == 3
    weights = [m.front[0].weight for m in workload.modules]
    assert weights[0].data_ptr() != weights[1].data_ptr()
    assert all(not m.training for m in workload.modules)
    with torch.inference_mode():
        workload.run()


def test_model_workload_head_stops_at_the_split() -> None:
    space = get_space("fbnet-cifar100")
    arch = Architecture.parse(",".join(["k3_e3"] * 22) + "@9", space)
    head = model_workload(arch)
    whole = model_workload(arch.with_splits())
    with torch.inference_mode():
        assert head.modules[0](torch.randn(1, 3, 32, 32)).shape == (1, 32, 16, 16)  # after layer 8
        assert whole.modules[0](torch.randn(1, 3, 32, 32)).shape == (1, 100)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_timing_synchronizes() -> None:
    module = nn.Conv2d(64, 64, 3, padding=1).cuda().eval()
    x = torch.randn(1, 64, 32, 32, device="cuda")
    with torch.inference_mode():
        timing = measure(lambda: module(x), executions=1, settings=TimingSettings(**FAST, device="cuda"))
    assert timing.median_ms > 0 and TimingSettings(device="cuda").resolved_clock == "wall"
