"""How busy the machine is while it measures: load average, other processes' CPU time, steal time.

Read from /proc (Linux; elsewhere nothing is reported). Readers take the filesystem root so that tests
can point them at a fake /proc. Shares are of the whole machine over an interval: 0.5 on a 2-core
machine is one core's worth of other processes' work. Other processes are all CPU time but this
process's (``/proc/stat`` busy time minus ``/proc/self/stat``), so they count whether they run beside
a measurement or take turns with it; steal is the time a hypervisor gave the virtual CPUs to other
guests, reported by kernels that run virtualized.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# /proc/stat's aggregate "cpu" line, in clock ticks: user nice system idle iowait irq softirq steal guest guest_nice.
# guest and guest_nice are already counted in user and nice.
BUSY_FIELDS = (0, 1, 2, 5, 6)
IDLE_FIELDS = (3, 4)
STEAL_FIELD = 7
# Without --quiet-below, an entry counts as timed on a busy machine when others took this share of it.
BUSY_SHARE = 0.25


@dataclass(frozen=True)
class CpuSnapshot:
    """Cumulative CPU times (clock ticks) of the machine and of this process at one moment."""

    busy: int
    idle: int
    steal: int | None  # None where the kernel does not report it
    own: int  # this process: user + system
    cores: int

    @property
    def total(self) -> int:
        return self.busy + self.idle + (self.steal or 0)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def load_average(root: Path = Path("/")) -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages from /proc/loadavg."""
    text = _read(root / "proc/loadavg")
    try:
        one, five, fifteen = (float(v) for v in (text or "").split()[:3])
    except ValueError:
        return None
    return one, five, fifteen


def cpu_snapshot(root: Path = Path("/")) -> CpuSnapshot | None:
    """The machine's and this process's CPU times now; None where /proc does not hold them."""
    stat, own = _read(root / "proc/stat"), _read(root / "proc/self/stat")
    if not stat or not own:
        return None
    lines = stat.splitlines()
    try:
        ticks = [int(v) for v in lines[0].split()[1:]]
        # The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
        after_name = own.rpartition(")")[2].split()
        own_ticks = int(after_name[11]) + int(after_name[12])  # utime, stime (fields 14 and 15)
    except (IndexError, ValueError):
        return None
    cores = sum(1 for line in lines[1:] if line.startswith("cpu"))
    return CpuSnapshot(
        busy=sum(ticks[i] for i in BUSY_FIELDS if i < len(ticks)),
        idle=sum(ticks[i] for i in IDLE_FIELDS if i < len(ticks)),
        steal=ticks[STEAL_FIELD] if len(ticks) > STEAL_FIELD else None,
        own=own_ticks, cores=max(cores, 1),
    )


def shares(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """Other processes' and steal's share of the machine between two snapshots (empty if no tick passed)."""
    elapsed = after.total - before.total
    if elapsed <= 0:
        return {}
    others = (after.busy - before.busy) - (after.own - before.own)
    result = {"others_share": round(min(max(others / elapsed, 0.0), 1.0), 4)}
    if before.steal is not None and after.steal is not None:
        result["steal_share"] = round((after.steal - before.steal) / elapsed, 4)
    return result


def busy_share(state: dict[str, Any]) -> float:
    """How much of the machine others took: their processes plus what the hypervisor stole."""
    return state.get("others_share", 0.0) + state.get("steal_share", 0.0)


class LoadProbe:
    """Samples the machine's load around each entry; waits, bounded, for other processes to quiet down."""

    def __init__(self, root: Path = Path("/")) -> None:
        self.root = root

    def snapshot(self) -> CpuSnapshot | None:
        return cpu_snapshot(self.root)

    def read(self, since: CpuSnapshot | None = None) -> dict[str, Any]:
        """The load averages and, given an earlier snapshot, the shares since then; empty off Linux."""
        state: dict[str, Any] = {}
        averages = load_average(self.root)
        if averages is not None:
            state["loadavg"] = list(averages)
        now = self.snapshot()
        if now is not None:
            state["cores"] = now.cores
            if since is not None:
                state.update(shares(since, now))
        return state

    def wait_quiet(
        self, below: float, *, latest: dict[str, Any], timeout: float, poll: float = 0.5,
        sleep: Callable[[float], None] | None = None,
    ) -> tuple[float, dict[str, Any]]:
        """Wait while others take at least ``below`` of the machine, polling every ``poll`` seconds.

        ``latest`` is the state of the latest interval (the previous entry's), so a quiet machine costs
        no wait. Returns the seconds waited and the last interval's state; gives up after ``timeout``
        seconds and returns at once where /proc says nothing.
        """
        waited, state = 0.0, latest
        while busy_share(state) >= below and waited + poll <= timeout:
            before = self.snapshot()
            if before is None:
                break
            (sleep or time.sleep)(poll)
            waited += poll
            state = self.read(since=before)
        return waited, state


class LoadWatch:
    """The load around every entry of a run: waits for quiet (within the run's budget), warns, summarizes."""

    def __init__(self, probe: LoadProbe, *, quiet_below: float | None, max_wait: float) -> None:
        self.probe = probe
        self.quiet_below = quiet_below
        self.budget = max_wait
        self.waited = 0.0
        self.latest: dict[str, Any] = {}
        self.busy_shares: list[float] = []
        self.steal_shares: list[float] = []
        self.warned = False
        self._before: CpuSnapshot | None = None

    @property
    def threshold(self) -> float:
        return BUSY_SHARE if self.quiet_below is None else self.quiet_below

    def before_entry(self) -> dict[str, Any]:
        """Wait for quiet if asked to and the budget allows; what the entry's row keeps of the wait."""
        raw: dict[str, Any] = {}
        if self.quiet_below is not None and self.waited < self.budget:
            waited, state = self.probe.wait_quiet(
                self.quiet_below, latest=self.latest, timeout=self.budget - self.waited
            )
            if waited:
                self.waited += waited
                self.latest = state
                raw["quiet_wait_s"] = round(waited, 3)
        self._before = self.probe.snapshot()
        return raw

    def after_entry(self) -> dict[str, Any]:
        """The load over the entry's interval (kept in its row's ``raw``)."""
        state = self.probe.read(since=self._before)
        self.latest = state
        if "others_share" in state:
            self.busy_shares.append(busy_share(state))
            self.steal_shares.append(state.get("steal_share", 0.0))
        return state

    def warning(self) -> str | None:
        """A one-time warning once an entry was timed on a busy machine."""
        if self.warned or busy_share(self.latest) < self.threshold:
            return None
        self.warned = True
        state = self.latest
        cores = state.get("cores", "?")
        steal = f", the hypervisor stole {state['steal_share']:.0%}" if state.get("steal_share") else ""
        load = f" (load average {state['loadavg'][0]:.2f})" if state.get("loadavg") else ""
        waiting = (
            f"waiting up to {self.budget:g} s in all for it to fall below {self.quiet_below:.0%} (--max-quiet-wait)"
            if self.quiet_below is not None else "not waiting for quiet (--quiet-below)"
        )
        return (
            f"warning: the machine is busy: other processes took {state['others_share']:.0%} of its {cores} "
            f"cores{steal}{load} while an entry was timed; timings may be slower and noisier; {waiting}"
        )

    def summary(self) -> dict[str, Any]:
        """How busy the machine was over the run, for its stored environment."""
        shares = sorted(self.busy_shares)
        if not shares:
            return {}
        busy = sum(share >= self.threshold for share in shares)
        return {
            "entries": len(shares),
            "busy_entries": busy,
            "busy": busy > len(shares) / 10,
            "busy_share_median": shares[len(shares) // 2],
            "busy_share_max": shares[-1],
            "steal_share_max": max(self.steal_shares),
            "threshold": self.threshold,
            "quiet_wait_s": round(self.waited, 3),
            "loadavg_end": self.latest.get("loadavg"),
        }
