"""How entries are timed: the settings of a profiling run's timer (no torch import, so the CLI starts fast)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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
    max_run_time: float = 1.5
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
