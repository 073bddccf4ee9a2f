"""Timing a workload with ``torch.utils.benchmark``: adaptive autorange, robust statistics, noise flag."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

# torch.utils.benchmark imports cpp_extension, which warns on every start that no CUDA toolkit is installed
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
from torch.utils import benchmark  # noqa: E402

from profiler.settings import TimingSettings  # noqa: E402


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
        }


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


def measure(
    run: Callable[[], object], *, executions: int, settings: TimingSettings, label: str = ""
) -> Timing:
    """Time ``run`` (which performs ``executions`` executions of the measured thing) per execution.

    The caller sets inference mode and eval mode; this warms up, sizes a timer sample to
    ``settings.block_time`` and runs ``Timer.adaptive_autorange``.
    """
    clock = clock_function(settings)
    started = time.perf_counter()
    torch.set_num_threads(settings.threads)
    for _ in range(settings.warmup):
        run()
    repeat = max(1, math.ceil(settings.block_time / call_time(run, clock, settings.block_time / 4)))

    def block() -> None:
        for _ in range(repeat):
            run()

    timer = benchmark.Timer(
        "block()", globals={"block": block}, timer=clock, num_threads=settings.threads, label=label
    )
    result = timer.adaptive_autorange(
        threshold=settings.threshold, min_run_time=settings.min_run_time, max_run_time=settings.max_run_time
    )
    per_execution = 1e3 / (repeat * executions)
    times = tuple(t * per_execution for t in result.times)
    median, iqr = result.median * per_execution, result.iqr * per_execution
    return Timing(
        median_ms=median,
        iqr_ms=iqr,
        mean_ms=result.mean * per_execution,
        min_ms=min(times),
        runs=len(times),
        executions_per_run=result.number_per_run * repeat * executions,
        total_s=time.perf_counter() - started,
        noisy=iqr > settings.threshold * median,
        times_ms=times,
    )
