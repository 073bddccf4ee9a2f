"""Timing a workload with ``torch.utils.benchmark``: adaptive autorange, robust statistics, noise flag."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.utils import benchmark

CLOCKS = ("auto", "wall", "thread")


@dataclass(frozen=True)
class TimingSettings:
    """How long and how each entry is timed.

    ``min_run_time`` seconds are always spent; an entry whose IQR/median is still above ``threshold``
    keeps being timed up to ``max_run_time`` and is flagged noisy when it does not settle. One timer
    sample runs the workload for about ``block_time`` seconds (long enough that the timer's own
    overhead is negligible, short enough to give many samples).

    ``clock`` is ``wall`` (``perf_counter``, synchronizing CUDA) or ``thread`` (the calling thread's CPU
    time). With one CPU thread all of torch's work runs in the calling thread, so its CPU time is the
    latency the op has on an otherwise idle machine, while time the thread spends descheduled by other
    processes is left out; ``auto`` picks ``thread`` for one CPU thread and ``wall`` otherwise.
    """

    min_run_time: float = 0.3
    max_run_time: float = 0.6
    threshold: float = 0.05
    block_time: float = 0.025
    warmup: int = 2
    copies: int = 8
    threads: int = 1
    device: str = "cpu"
    clock: str = "auto"

    def __post_init__(self) -> None:
        if self.min_run_time <= 0 or self.max_run_time < self.min_run_time:
            raise ValueError(
                f"need 0 < min_run_time <= max_run_time, got {self.min_run_time} and {self.max_run_time}"
            )
        if self.threads < 1 or self.copies < 1 or self.warmup < 0 or self.threshold <= 0:
            raise ValueError("threads and copies must be at least 1, warmup at least 0, threshold positive")
        if self.clock not in CLOCKS:
            raise ValueError(f"unknown clock {self.clock!r}; allowed: {', '.join(CLOCKS)}")
        if self.clock == "thread" and (self.threads != 1 or self.device != "cpu"):
            raise ValueError("the thread clock measures latency only with one CPU thread; use the wall clock")

    @property
    def resolved_clock(self) -> str:
        if self.clock != "auto":
            return self.clock
        return "thread" if self.threads == 1 and self.device == "cpu" else "wall"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "clock": self.resolved_clock}


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
