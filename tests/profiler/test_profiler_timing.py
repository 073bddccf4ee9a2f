"""Timing through torch.utils.benchmark: statistics per execution, adaptive budget, noise flag."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from profiler import timing as timing_module
from profiler.runner import combine
from profiler.settings import TimingSettings
from profiler.timing import MIN_SAMPLES, Timing, across_passes, after_wait_ms, measure
from profiler.workloads import model_workload, op_workload
from spaces import Architecture, get_space

# Samples of about 5 ms, so the budget holds MIN_SAMPLES several times over even when the calibration of a
# sample's calls is off by a factor of two (as it is on a busy machine).
FAST = dict(min_run_time=0.05, max_run_time=0.15, block_time=0.005, warmup=1)


@pytest.fixture
def linear() -> nn.Module:
    return nn.Linear(128, 128).eval()


def test_statistics_are_per_execution(linear: nn.Module) -> None:
    x = torch.randn(1, 128)
    # The thread's CPU time, so that the comparison of two timings holds on a busy machine too.
    settings = TimingSettings(**FAST, clock="thread")
    with torch.inference_mode():
        once = measure(lambda: linear(x), executions=1, settings=settings)

        def four_times() -> None:
            for _ in range(4):
                linear(x)

        four = measure(four_times, executions=4, settings=settings)
    for timing in (once, four):
        assert timing.runs >= MIN_SAMPLES and len(timing.times_ms) == timing.runs
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
    assert strict.runs >= lenient.runs >= MIN_SAMPLES
    # The strict one kept sampling up to max_run_time (of the timing clock), trying to settle; the lenient
    # one stopped once it had its minimum samples and min_run_time.
    assert sampled_s(strict) >= FAST["max_run_time"] * 0.999
    assert lenient.runs == MIN_SAMPLES or sampled_s(lenient, lenient.runs - 1) < FAST["min_run_time"]
    assert strict.summary()["relative_iqr"] == pytest.approx(strict.iqr_ms / strict.median_ms)


def sampled_s(timing: Timing, samples: int | None = None) -> float:
    """Seconds of the clock spent in the first ``samples`` timer samples (default: all)."""
    return sum(timing.times_ms[:samples]) * timing.executions_per_run / 1e3


def test_fewer_samples_than_the_minimum_are_noisy(linear: nn.Module) -> None:
    x = torch.randn(1, 128)
    # A budget below one sample: whatever their spread, so few samples do not make a settled entry. (Samples
    # five times the budget: a wall-clock calibration that the busy machine inflates still leaves one or two.)
    settings = TimingSettings(min_run_time=0.01, max_run_time=0.01, block_time=0.05, warmup=1, threshold=10.0)
    with torch.inference_mode():
        short = measure(lambda: linear(x), executions=1, settings=settings)
    assert short.runs < MIN_SAMPLES and short.noisy


def test_cold_caches_time_single_executions_each_after_a_flush(
    linear: nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = torch.randn(1, 128)
    flushes, calls = [], []
    monkeypatch.setattr(timing_module, "cache_flusher", lambda device: lambda: flushes.append(len(calls)))

    def run() -> None:
        calls.append(len(flushes))
        linear(x)

    with torch.inference_mode():
        cold = measure(run, executions=1, settings=TimingSettings(**{**FAST, "caches": "cold"}))
    assert cold.executions_per_run == 1 and cold.runs == len(cold.times_ms) >= 1
    assert cold.noisy or cold.runs >= MIN_SAMPLES  # the flushes' wall time bounds the samples on a busy machine
    timed = calls[FAST["warmup"]:]
    assert len(timed) == cold.runs and timed == list(range(1, cold.runs + 1))  # a flush before every timed call


def test_the_flush_rewrites_twice_the_cache() -> None:
    flush = timing_module.cache_flusher("cpu")
    buffer = flush.__self__
    assert buffer.numel() * buffer.element_size() == 2 * timing_module.cache_bytes("cpu")
    before = buffer[:4].clone()
    flush()
    assert torch.equal(buffer[:4], -before)


def test_the_median_pass_is_kept_with_every_pass_median() -> None:
    def timing(median: float, runs: int) -> Timing:
        return Timing(median_ms=median, iqr_ms=0.1 * runs, mean_ms=median, min_ms=median - 0.1, runs=runs,
                      executions_per_run=1, total_s=0.5, noisy=runs == 7, times_ms=(median,))

    # Not the lowest (1.5): the middle pass, with its own spread and noise flag, and every pass's count.
    kept = across_passes([timing(2.0, 5), timing(1.5, 6), timing(1.8, 7)])
    assert kept.median_ms == 1.8 and kept.iqr_ms == pytest.approx(0.7) and kept.noisy
    assert kept.runs == 18 and kept.total_s == pytest.approx(1.5)
    assert kept.summary()["pass_medians_ms"] == [2.0, 1.5, 1.8]
    # An even count keeps the lower of the two middle passes, so that the row's statistics are one pass's.
    assert across_passes([timing(2.0, 5), timing(1.5, 6), timing(1.8, 7), timing(1.6, 8)]).median_ms == 1.6
    assert "pass_medians_ms" not in across_passes([timing(2.0, 5)]).summary()
    # a network's calls after a wait: the median over its passes, whichever pass is kept
    visits = [(timing(2.0, 5), {"after_wait_ms": 3.0}), (timing(1.5, 6), {"after_wait_ms": 2.0}),
              (timing(1.8, 7), {"after_wait_ms": 9.0, "load": "busy"})]
    kept_timing, raw = combine(visits)
    assert kept_timing.median_ms == 1.8 and raw == {"after_wait_ms": 3.0, "load": "busy"}
    assert "after_wait_ms" not in combine([(timing(2.0, 5), {})])[1]  # an op is not timed after a wait
    one = TimingSettings(min_run_time=0.3, max_run_time=1.5, passes=3).one_pass()
    assert (one.min_run_time, one.max_run_time, one.passes) == (pytest.approx(0.1), pytest.approx(0.5), 1)


def test_wall_clock_latency_with_the_threads_cpu_time_beside_it(linear: nn.Module) -> None:
    x = torch.randn(1, 128)

    def run() -> None:
        linear(x)
        time.sleep(0.0005)  # wall time a CPU clock would leave out: what a thread descheduled by others loses

    with torch.inference_mode():
        warm = measure(run, executions=1, settings=TimingSettings(**FAST))
        cold = measure(run, executions=1, settings=TimingSettings(**FAST, caches="cold"))
        thread = measure(run, executions=1, settings=TimingSettings(**FAST, clock="thread"))
    for timing in (warm, cold):
        assert len(timing.cpu_times_ms) == timing.runs
        assert timing.median_ms >= 0.5  # the sleep is in the latency
        assert timing.cpu_share is not None and timing.cpu_share < 0.9
        assert timing.summary()["cpu_ms"] < timing.median_ms and timing.summary()["cpu_share"] < 0.9
    # Asked for, the thread clock leaves the sleep out, and records nothing beside itself.
    assert thread.median_ms < 0.5 and thread.cpu_times_ms == () and "cpu_share" not in thread.summary()


def test_after_a_wait_each_call_is_timed_alone_after_an_untimed_idle_gap() -> None:
    now = [0.0]
    events: list[str] = []

    def sleep(seconds: float) -> None:
        events.append(f"sleep {seconds}")
        now[0] += seconds  # idle time passes on the clock, but outside the timed interval

    costs = iter([0.004, 0.001, 0.002])

    def run() -> None:
        events.append("run")
        now[0] += next(costs)

    assert after_wait_ms(run, lambda: now[0], wait=0.05, calls=3, sleep=sleep) == pytest.approx(2.0)
    assert events == ["sleep 0.05", "run"] * 3


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="wait must be at least 0"):
        TimingSettings(wait=-1)
    with pytest.raises(ValueError, match="min_run_time"):
        TimingSettings(min_run_time=0.5, max_run_time=0.1)
    with pytest.raises(ValueError, match="thread clock"):
        TimingSettings(clock="thread", threads=2)
    with pytest.raises(ValueError, match="unknown clock"):
        TimingSettings(clock="sundial")
    with pytest.raises(ValueError, match="unknown caches"):
        TimingSettings(caches="lukewarm")
    with pytest.raises(ValueError, match="unknown clock"):
        TimingSettings(clock="auto")
    assert TimingSettings().clock == "wall" and TimingSettings().as_dict()["clock"] == "wall"
    # The thread's CPU time is a diagnostic only with one CPU thread, where all of torch's work runs in it.
    assert timing_module.cpu_clock(TimingSettings()) is time.thread_time
    assert timing_module.cpu_clock(TimingSettings(threads=2)) is None
    assert timing_module.cpu_clock(TimingSettings(clock="thread")) is None


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
        for caches in ("warm", "cold"):  # cold: the flush buffer is twice the GPU's L2 cache
            settings = TimingSettings(**{**FAST, "caches": caches}, device="cuda")
            timing = measure(lambda: module(x), executions=1, settings=settings)
            assert timing.median_ms > 0
    assert timing.cpu_times_ms == ()
