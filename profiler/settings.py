"""How entries are timed: the settings of a profiling run's timer (no torch import, so the CLI starts fast)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

CLOCKS = ("wall", "thread")
CACHES = ("cold", "warm")


@dataclass(frozen=True)
class TimingSettings:
    """How long and how each entry is timed.

    An entry is timed in ``passes`` passes over the whole plan, each spending its share of
    ``min_run_time`` (and, while still noisy, of ``max_run_time``) seconds; the median pass is kept
    (``profiler.timing.across_passes``). Other tenants of a shared machine slow it down in episodes
    lasting seconds to minutes; passes minutes apart rarely all fall into one.

    ``caches`` is ``warm`` (default) or ``cold``. Warm: executions run back to back, the weights staying
    in whatever cache holds them; one timer sample runs for about ``block_time`` seconds and an entry is
    noisy while the samples' IQR/median exceeds ``threshold`` (``Timer.adaptive_autorange``'s rule) or it
    has fewer than ``profiler.timing.MIN_SAMPLES`` samples. Cold:
    before every execution the caches are flushed (a buffer twice the last-level cache is rewritten,
    untimed) and each execution is one timer sample, so every op reads its weights from memory, as it
    does inside a network on a device whose cache cannot hold the model (a Raspberry Pi 4's 1 MiB L2);
    an entry is noisy while the 95 % confidence notch of its median (1.57 IQR / sqrt(samples)) exceeds
    ``threshold`` times the median. On the reference machine, whose 32 MiB last-level cache is shared
    with other tenants, cold timings follow their memory traffic (blocks 5.9 % apart run to run against
    2.2 % warm) while whole models are about as accurately predicted either way (BENCHMARKS.md).

    ``wait`` is the idle gap, in seconds, before each of the single calls that time a whole network (a
    ``model`` entry) after waiting, as a part fed by a link runs (``profiler.timing.after_wait_ms``);
    0 leaves that timing out.

    ``clock`` is ``wall`` (default: ``perf_counter``, synchronizing CUDA) or ``thread`` (the calling
    thread's CPU time, one CPU thread only). Wall time is what a user of the deployed network waits
    for; the thread's CPU time leaves out whatever the thread was not running for (other processes,
    the hypervisor), and the whole-model latencies it gave were below a plain wall-clock timing of the
    same networks (BENCHMARKS.md, "Wall-clock ground truth"). Every entry, op or network, is timed on
    the same clock: the model-level correction is a ratio of networks to summed ops, which a mix of
    clocks would make depend on the load. With the wall clock and one CPU thread the thread's CPU
    time is recorded beside it as a diagnostic of interference (``profiler.timing.cpu_clock``).
    """

    min_run_time: float = 0.3
    max_run_time: float = 1.5
    threshold: float = 0.05
    block_time: float = 0.025
    warmup: int = 2
    copies: int = 8
    threads: int = 1
    device: str = "cpu"
    clock: str = "wall"
    caches: str = "warm"
    passes: int = 3
    wait: float = 0.05

    def __post_init__(self) -> None:
        if self.min_run_time <= 0 or self.max_run_time < self.min_run_time:
            raise ValueError(
                f"need 0 < min_run_time <= max_run_time, got {self.min_run_time} and {self.max_run_time}"
            )
        if self.threads < 1 or self.copies < 1 or self.passes < 1 or self.warmup < 0 or self.threshold <= 0:
            raise ValueError("threads, copies and passes must be at least 1, warmup at least 0, threshold positive")
        if not self.wait >= 0:
            raise ValueError(f"wait must be at least 0 seconds, got {self.wait}")
        if self.clock not in CLOCKS:
            raise ValueError(f"unknown clock {self.clock!r}; allowed: {', '.join(CLOCKS)}")
        if self.caches not in CACHES:
            raise ValueError(f"unknown caches {self.caches!r}; allowed: {', '.join(CACHES)}")
        if self.clock == "thread" and (self.threads != 1 or self.device != "cpu"):
            raise ValueError("the thread clock measures latency only with one CPU thread; use the wall clock")

    def one_pass(self) -> TimingSettings:
        """The settings of one of the ``passes``: its share of the time budget."""
        return replace(
            self, min_run_time=self.min_run_time / self.passes, max_run_time=self.max_run_time / self.passes,
            passes=1,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
