"""Timing a workload: cold or warm caches, wall clock, robust statistics, noise flag, CPU time beside it."""

from __future__ import annotations

import functools
import math
import statistics
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from profiler.environment import cache_bytes
from profiler.settings import TimingSettings

# Fewer timer samples than this say nothing about their spread (one sample has an IQR of 0): noisy.
MIN_SAMPLES = 5
# single calls after an idle gap that ``after_wait_ms`` takes the median of, in each pass over the plan
WAIT_CALLS = 5


@dataclass(frozen=True)
class Timing:
    """Statistics of one timed workload, per single execution, in milliseconds."""

    median_ms: float
    iqr_ms: float
    mean_ms: float
    min_ms: float
    runs: int  # timer samples
    executions_per_run: int  # executions averaged inside one sample
    total_s: float  # wall time spent, warm-up and calibration included
    noisy: bool
    times_ms: tuple[float, ...]
    pass_medians_ms: tuple[float, ...] = ()  # one per pass when the entry was timed in several passes
    # The timing thread's CPU time per execution in each sample (wall clock, one CPU thread; else empty)
    cpu_times_ms: tuple[float, ...] = ()

    @property
    def relative_iqr(self) -> float:
        return self.iqr_ms / self.median_ms

    @property
    def cpu_share(self) -> float | None:
        """CPU time over wall time of the samples: about 1 when nothing took the CPU from the timing thread."""
        if not self.cpu_times_ms:
            return None
        return sum(self.cpu_times_ms) / max(sum(self.times_ms), 1e-12)

    def summary(self) -> dict[str, Any]:
        """What a measurement row keeps in ``raw`` besides its statistics columns."""
        cpu = {
            "cpu_ms": round(float(np.median(self.cpu_times_ms)), 6), "cpu_share": round(self.cpu_share or 0.0, 4),
        } if self.cpu_times_ms else {}
        return {
            "executions_per_run": self.executions_per_run,
            "relative_iqr": self.relative_iqr,
            "total_s": round(self.total_s, 4),
            "times_ms": [round(t, 6) for t in self.times_ms],
            **cpu,
            **({"pass_medians_ms": [round(t, 6) for t in self.pass_medians_ms]} if self.pass_medians_ms else {}),
        }


def pass_statistic(medians: Sequence[float]) -> float:
    """An entry's latency from its passes' medians: their median (the lower middle one for an even count)."""
    return statistics.median_low(medians)


def across_passes(visits: list[Timing]) -> Timing:
    """One timing from an entry's passes: the median pass (``pass_statistic``), with every pass's median kept.

    Not the quietest pass: the lowest of several medians sits below the latency a network has when it
    is called again and again, by about one pass-to-pass deviation for three passes, however quiet the
    machine (BENCHMARKS.md, "Wall-clock ground truth"). The median pass is what a user typically sees,
    and one pass caught by another process's burst does not move it. Its samples and noise flag are
    kept with it, so every statistic of the row comes from one pass.
    """
    middle = pass_statistic([t.median_ms for t in visits])
    chosen = next(t for t in visits if t.median_ms == middle)
    return replace(
        chosen, runs=sum(t.runs for t in visits), total_s=sum(t.total_s for t in visits),
        pass_medians_ms=tuple(t.median_ms for t in visits) if len(visits) > 1 else (),
    )


def clock_function(settings: TimingSettings) -> Callable[[], float]:
    """The timer: wall time (after waiting for queued CUDA work), or the thread's CPU time if asked for."""
    if settings.clock == "thread":
        return time.thread_time
    if settings.device.startswith("cuda"):

        def wall() -> float:
            torch.cuda.synchronize()
            return time.perf_counter()

        return wall
    return time.perf_counter


def cpu_clock(settings: TimingSettings) -> Callable[[], float] | None:
    """The diagnostic beside a wall-clock timing: the timing thread's CPU time, with one CPU thread only.

    With one torch thread all of an execution's work runs in the calling thread, so CPU time below
    wall time is time the thread lost to other processes or to the hypervisor: interference, recorded
    (``Timing.cpu_share``), not subtracted. With more threads or on CUDA it says nothing: None.
    """
    if settings.clock == "wall" and settings.device == "cpu" and settings.threads == 1:
        return time.thread_time
    return None


@functools.lru_cache(maxsize=2)
def cache_flusher(device: str = "cpu") -> Callable[[], object]:
    """A call that evicts the caches of ``device``: it rewrites, in place, a buffer of twice their size."""
    with torch.inference_mode(False):  # an inference tensor could not be rewritten outside inference mode
        buffer = torch.ones(2 * cache_bytes(device) // 4, device=device)
    return buffer.neg_  # reads and writes every line (a memset may bypass the cache)


def call_time(run: Callable[[], object], clock: Callable[[], float], at_least: float) -> float:
    """Seconds per call of ``run``, from calls lasting ``at_least`` seconds in all (one call is too coarse)."""
    calls = 1
    while True:
        tic = clock()
        for _ in range(calls):
            run()
        elapsed = clock() - tic
        if elapsed >= at_least or calls >= 1 << 20:
            return max(elapsed, 1e-9) / calls
        calls *= 4


def warm_samples(
    run: Callable[[], object], clock: Callable[[], float], settings: TimingSettings,
    cpu: Callable[[], float] | None = None,
) -> tuple[list[float], list[float], int]:
    """Back-to-back calls: timer samples of about ``block_time`` seconds, ``adaptive_autorange``'s rule.

    Sampling goes on for ``min_run_time`` seconds of the clock and at least ``MIN_SAMPLES`` samples, then
    while IQR/median is above ``threshold``, up to ``max_run_time``. The loop is written out over the
    standard library's ``timeit.Timer`` (what torch's ``Timer`` wraps) because ``adaptive_autorange``
    sizes its samples itself: on a busy machine its overhead check fails and makes each sample ten times
    longer, leaving one or two samples in the budget, whose IQR of 0 looked settled.
    Returns seconds per call of ``run``, one value per timer sample, the same in ``cpu`` time (empty
    without it), and the calls one sample makes.
    """
    repeat = max(1, math.ceil(settings.block_time / call_time(run, clock, settings.block_time / 4)))

    def block() -> None:
        for _ in range(repeat):
            run()

    timer = timeit.Timer(block, timer=clock)
    samples: list[float] = []
    cpu_samples: list[float] = []
    while True:
        cpu_before = cpu() if cpu is not None else 0.0
        samples.append(timer.timeit(1))
        if cpu is not None:
            cpu_samples.append(cpu() - cpu_before)
        spent = sum(samples)
        if spent >= settings.max_run_time or (
            spent >= settings.min_run_time and len(samples) >= MIN_SAMPLES
            and relative_iqr(samples) <= settings.threshold
        ):
            return [t / repeat for t in samples], [t / repeat for t in cpu_samples], repeat


def relative_iqr(times: list[float] | np.ndarray) -> float:
    q1, median, q3 = np.percentile(times, (25, 50, 75))
    return float((q3 - q1) / median)


def cold_samples(
    run: Callable[[], object], clock: Callable[[], float], settings: TimingSettings,
    cpu: Callable[[], float] | None = None,
) -> tuple[list[float], list[float]]:
    """Seconds of single calls of ``run``, each made right after flushing the caches (untimed).

    torch's ``Timer`` cannot take one call per sample without warm-up calls, which would warm the
    caches, so the loop is written out. Single cold calls spread more than ``adaptive_autorange``'s
    samples (means of many warm calls), so its rule is applied to the median's uncertainty instead
    (``cold_uncertainty``): sample for ``min_run_time`` seconds, then on while the uncertainty is
    above ``threshold``, up to ``max_run_time`` (wall time, flushes included). Also returns the calls'
    ``cpu`` times (empty without it), read outside the timed interval.
    """
    flush = cache_flusher(settings.device)
    times: list[float] = []
    cpu_times: list[float] = []
    started = time.perf_counter()
    while True:
        flush()
        cpu_before = cpu() if cpu is not None else 0.0
        tic = clock()
        run()
        times.append(clock() - tic)
        if cpu is not None:
            cpu_times.append(cpu() - cpu_before)
        elapsed = time.perf_counter() - started
        if elapsed >= settings.max_run_time or (
            elapsed >= settings.min_run_time and len(times) >= MIN_SAMPLES
            and cold_uncertainty(times) <= settings.threshold
        ):
            return times, cpu_times


def after_wait_ms(
    run: Callable[[], object], clock: Callable[[], float], *, wait: float, calls: int = WAIT_CALLS,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Median milliseconds of single calls of ``run``, each made after ``wait`` idle seconds (untimed).

    A part fed by a link (a server's part of a split network) idles until its payload arrives. While a device
    idles its caches, clocks and scheduler cool down (a frequency governor, a hypervisor that parks an idle
    vCPU), and the first call after the wait pays for it; back-to-back timings never see that cost
    (``predictor.correction.Wait``). ``run`` should be warmed up already.
    """
    times = []
    for _ in range(calls):
        sleep(wait)
        tic = clock()
        run()
        times.append(clock() - tic)
    return float(np.median(times)) * 1e3


def cold_uncertainty(times: list[float] | np.ndarray) -> float:
    """Half-width of the median's 95 % confidence notch, 1.57 IQR / sqrt(n) (McGill et al. 1978), / median."""
    q1, median, q3 = np.percentile(times, (25, 50, 75))
    return float(1.57 * (q3 - q1) / np.sqrt(len(times)) / median)


def measure(run: Callable[[], object], *, executions: int, settings: TimingSettings) -> Timing:
    """Time ``run`` (which performs ``executions`` executions of the measured thing) per execution.

    The caller sets inference mode and eval mode; this warms up, then samples with cold or warm
    caches (``settings.caches``), on the latency clock and, where it means something, in CPU time.
    """
    clock, cpu = clock_function(settings), cpu_clock(settings)
    started = time.perf_counter()
    torch.set_num_threads(settings.threads)
    for _ in range(settings.warmup):
        run()
    if settings.caches == "cold":
        (samples, cpu_samples), calls = cold_samples(run, clock, settings, cpu), 1
    else:
        samples, cpu_samples, calls = warm_samples(run, clock, settings, cpu)
    times = np.array(samples) * 1e3 / executions
    q1, median, q3 = np.percentile(times, (25, 50, 75))
    uncertainty = cold_uncertainty(times) if settings.caches == "cold" else relative_iqr(times)
    return Timing(
        median_ms=float(median),
        iqr_ms=float(q3 - q1),
        mean_ms=float(times.mean()),
        min_ms=float(times.min()),
        runs=len(times),
        executions_per_run=calls * executions,
        total_s=time.perf_counter() - started,
        noisy=bool(len(times) < MIN_SAMPLES or uncertainty > settings.threshold),
        times_ms=tuple(times.tolist()),
        cpu_times_ms=tuple((np.array(cpu_samples) * 1e3 / executions).tolist()),
    )
