"""Timing a workload: cold or warm caches, robust statistics, noise flag."""

from __future__ import annotations

import functools
import math
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from profiler.environment import cache_bytes
from profiler.settings import TimingSettings

# Fewer timer samples than this say nothing about their spread (one sample has an IQR of 0): noisy.
MIN_SAMPLES = 5


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

    @property
    def relative_iqr(self) -> float:
        return self.iqr_ms / self.median_ms

    def summary(self) -> dict[str, Any]:
        """What a measurement row keeps in ``raw`` besides its statistics columns."""
        return {
            "executions_per_run": self.executions_per_run,
            "relative_iqr": self.relative_iqr,
            "total_s": round(self.total_s, 4),
            "times_ms": [round(t, 6) for t in self.times_ms],
            **({"pass_medians_ms": [round(t, 6) for t in self.pass_medians_ms]} if self.pass_medians_ms else {}),
        }


def quietest(visits: list[Timing]) -> Timing:
    """One timing from an entry's passes: the pass with the lowest median, with every pass's median kept.

    Other processes only ever slow an op down (they take its caches, memory bandwidth and CPU), so the
    quietest pass is the best estimate of the op's own latency.
    """
    best = min(visits, key=lambda t: t.median_ms)
    return replace(
        best, runs=sum(t.runs for t in visits), total_s=sum(t.total_s for t in visits),
        pass_medians_ms=tuple(t.median_ms for t in visits) if len(visits) > 1 else (),
    )


def clock_function(settings: TimingSettings) -> Callable[[], float]:
    """The timer: the thread's CPU time, or wall time after waiting for queued CUDA work."""
    if settings.resolved_clock == "thread":
        return time.thread_time
    if settings.device.startswith("cuda"):

        def wall() -> float:
            torch.cuda.synchronize()
            return time.perf_counter()

        return wall
    return time.perf_counter


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
    run: Callable[[], object], clock: Callable[[], float], settings: TimingSettings
) -> tuple[list[float], int]:
    """Back-to-back calls: timer samples of about ``block_time`` seconds, ``adaptive_autorange``'s rule.

    Sampling goes on for ``min_run_time`` seconds of the clock and at least ``MIN_SAMPLES`` samples, then
    while IQR/median is above ``threshold``, up to ``max_run_time``. The loop is written out over the
    standard library's ``timeit.Timer`` (what torch's ``Timer`` wraps) because ``adaptive_autorange``
    sizes its samples itself: on a busy machine its overhead check fails and makes each sample ten times
    longer, leaving one or two samples in the budget, whose IQR of 0 looked settled.
    Returns seconds per call of ``run``, one value per timer sample, and the calls one sample makes.
    """
    repeat = max(1, math.ceil(settings.block_time / call_time(run, clock, settings.block_time / 4)))

    def block() -> None:
        for _ in range(repeat):
            run()

    timer = timeit.Timer(block, timer=clock)
    samples: list[float] = []
    while True:
        samples.append(timer.timeit(1))
        spent = sum(samples)
        if spent >= settings.max_run_time or (
            spent >= settings.min_run_time and len(samples) >= MIN_SAMPLES
            and relative_iqr(samples) <= settings.threshold
        ):
            return [t / repeat for t in samples], repeat


def relative_iqr(times: list[float] | np.ndarray) -> float:
    q1, median, q3 = np.percentile(times, (25, 50, 75))
    return float((q3 - q1) / median)


def cold_samples(run: Callable[[], object], clock: Callable[[], float], settings: TimingSettings) -> list[float]:
    """Seconds of single calls of ``run``, each made right after flushing the caches (untimed).

    torch's ``Timer`` cannot take one call per sample without warm-up calls, which would warm the
    caches, so the loop is written out. Single cold calls spread more than ``adaptive_autorange``'s
    samples (means of many warm calls), so its rule is applied to the median's uncertainty instead
    (``cold_uncertainty``): sample for ``min_run_time`` seconds, then on while the uncertainty is
    above ``threshold``, up to ``max_run_time`` (wall time, flushes included).
    """
    flush = cache_flusher(settings.device)
    times: list[float] = []
    started = time.perf_counter()
    while True:
        flush()
        tic = clock()
        run()
        times.append(clock() - tic)
        elapsed = time.perf_counter() - started
        if elapsed >= settings.max_run_time or (
            elapsed >= settings.min_run_time and len(times) >= MIN_SAMPLES
            and cold_uncertainty(times) <= settings.threshold
        ):
            return times


def cold_uncertainty(times: list[float] | np.ndarray) -> float:
    """Half-width of the median's 95 % confidence notch, 1.57 IQR / sqrt(n) (McGill et al. 1978), / median."""
    q1, median, q3 = np.percentile(times, (25, 50, 75))
    return float(1.57 * (q3 - q1) / np.sqrt(len(times)) / median)


def measure(run: Callable[[], object], *, executions: int, settings: TimingSettings) -> Timing:
    """Time ``run`` (which performs ``executions`` executions of the measured thing) per execution.

    The caller sets inference mode and eval mode; this warms up, then samples with cold or warm
    caches (``settings.caches``).
    """
    clock = clock_function(settings)
    started = time.perf_counter()
    torch.set_num_threads(settings.threads)
    for _ in range(settings.warmup):
        run()
    if settings.caches == "cold":
        samples, calls = cold_samples(run, clock, settings), 1
    else:
        samples, calls = warm_samples(run, clock, settings)
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
    )
