"""The machine's load around every entry, from fake /proc trees (a busy VM, an idle box, no /proc at all)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from db import queries, session_scope
from profiler import load as load_module
from profiler.cli import app
from profiler.load import LoadProbe, LoadWatch
from profiler.runner import BatchWriter, ProfileOptions, profile_device
from profiler.settings import TimingSettings


class FakeProc:
    """A fake /proc whose CPU counters the test advances: ``tick(others, own, idle, steal)`` in clock ticks."""

    def __init__(self, root: Path, *, cores: int = 2, steal: bool = True) -> None:
        self.root = root
        self.cores = cores
        self.steal = steal
        self.user = self.system = self.idle = self.stolen = self.own = 0
        (root / "proc/self").mkdir(parents=True)
        (root / "proc/loadavg").write_text("3.52 2.10 1.05 3/412 12345\n")
        self.write()

    def tick(self, *, others: int = 0, own: int = 0, idle: int = 0, steal: int = 0) -> None:
        self.user += others + own
        self.system += 0
        self.idle += idle
        self.stolen += steal
        self.own += own
        self.write()

    def write(self) -> None:
        fields = [self.user, 0, self.system, self.idle, 0, 0, 0] + ([self.stolen, 0, 0] if self.steal else [])
        lines = ["cpu  " + " ".join(map(str, fields))]
        lines += [f"cpu{i} 0 0 0 0 0 0 0" for i in range(self.cores)]
        (self.root / "proc/stat").write_text("\n".join(lines) + "\nintr 0\n")
        # A command name with spaces and a parenthesis, as /proc allows: fields are counted after the last ')'.
        (self.root / "proc/self/stat").write_text(
            f"4242 (python (x) 3) R 1 4242 4242 0 -1 4194560 100 0 0 0 {self.own - 3} 3 0 0 20 0 1 0\n"
        )


@pytest.fixture
def fake_busy_vm(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path / "fake_vm_root")


def test_shares_of_other_processes_and_steal_over_an_interval(fake_busy_vm: FakeProc) -> None:
    probe = LoadProbe(fake_busy_vm.root)
    before = probe.snapshot()
    assert before is not None and before.cores == 2 and before.own == 0
    # 200 ticks of 2 cores: this process 80, others 60, the hypervisor stole 20, idle 40.
    fake_busy_vm.tick(own=80, others=60, steal=20, idle=40)
    state = probe.read(since=before)
    assert state["loadavg"] == [3.52, 2.10, 1.05] and state["cores"] == 2
    assert state["others_share"] == pytest.approx(0.3) and state["steal_share"] == pytest.approx(0.1)
    assert load_module.busy_share(state) == pytest.approx(0.4)


def test_kernel_without_steal_and_machine_without_proc(tmp_path: Path) -> None:
    old_kernel = FakeProc(tmp_path / "fake_old_kernel_root", steal=False)
    probe = LoadProbe(old_kernel.root)
    before = probe.snapshot()
    old_kernel.tick(own=50, idle=50)
    state = probe.read(since=before)
    assert state["others_share"] == 0.0 and "steal_share" not in state
    empty = LoadProbe(tmp_path / "no_proc")
    assert empty.read() == {} and empty.snapshot() is None
    assert empty.wait_quiet(0.1, latest={"others_share": 0.9}, timeout=10, sleep=pytest.fail)[0] == 0.0


def test_waits_for_quiet_until_others_stop_or_the_budget_is_spent(fake_busy_vm: FakeProc) -> None:
    probe = LoadProbe(fake_busy_vm.root)
    quiet_after = iter([False, False, True])

    def fake_sleep(seconds: float) -> None:  # others keep both cores busy for two polls, then stop
        if next(quiet_after):
            fake_busy_vm.tick(idle=100)
        else:
            fake_busy_vm.tick(others=90, idle=10)

    waited, state = probe.wait_quiet(0.25, latest={"others_share": 0.7}, timeout=10, poll=0.5, sleep=fake_sleep)
    assert waited == 1.5 and state["others_share"] == 0.0
    # Quiet already: no wait at all.
    assert probe.wait_quiet(0.25, latest={"others_share": 0.1}, timeout=10, sleep=pytest.fail)[0] == 0.0
    # Busy for ever: it gives up after the timeout.
    waited, state = probe.wait_quiet(
        0.25, latest={"others_share": 0.7}, timeout=2.0, poll=0.5, sleep=lambda s: fake_busy_vm.tick(others=100)
    )
    assert waited == 2.0 and state["others_share"] == 1.0


class BusyFakeProc(LoadProbe):
    """A fake /proc of a machine where other processes take 60 % of the cores: each read advances it."""

    def __init__(self, fake: FakeProc) -> None:
        super().__init__(fake.root)
        self.fake = fake

    def snapshot(self):
        self.fake.tick(own=30, others=60, idle=10)
        return super().snapshot()


def test_a_run_on_a_busy_machine_warns_once_records_the_load_and_waits_within_its_budget(
    fake_busy_vm: FakeProc, db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(load_module.time, "sleep", sleeps.append)  # the fake machine never quiets down
    options = ProfileOptions(
        device="busy-box", layers=(21,), quiet_below=0.25, max_quiet_wait=3.0,
        timing=TimingSettings(min_run_time=0.003, max_run_time=0.006, copies=1, warmup=1),
    )
    summary = profile_device(options, BatchWriter(db_url), load=BusyFakeProc(fake_busy_vm), progress=False)
    assert sum(sleeps) == pytest.approx(3.0)  # the run's whole budget, then no more waiting
    err = capsys.readouterr().err
    assert err.count("warning: the machine is busy") == 1
    assert "other processes took 60% of its 2 cores (load average 3.52)" in err
    assert summary.load["busy"] and summary.load["busy_entries"] == summary.load["entries"] == summary.timed * 3
    assert summary.load["quiet_wait_s"] == pytest.approx(3.0)
    with session_scope(db_url) as session:
        (run,) = queries.list_runs(session, device="busy-box")
        rows = queries.list_measurements(session, device="busy-box")
    assert run.environment["load"]["loadavg"][0] == 3.52 and run.environment["load"]["cores"] == 2
    assert run.environment["load_summary"]["busy_share_median"] == pytest.approx(0.6)
    assert run.settings["quiet_below"] == 0.25 and run.settings["max_quiet_wait"] == 3.0
    assert all(r.raw["load"]["others_share"] == pytest.approx(0.6) for r in rows)
    assert sum(r.raw.get("quiet_wait_s", 0) for r in rows) <= 3.0


def test_load_watch_without_waiting_still_counts_busy_entries(fake_busy_vm: FakeProc) -> None:
    watch = LoadWatch(BusyFakeProc(fake_busy_vm), quiet_below=None, max_wait=30)
    assert watch.before_entry() == {}
    assert watch.after_entry()["others_share"] == pytest.approx(0.6)
    assert "not waiting for quiet" in (watch.warning() or "") and watch.warning() is None
    assert watch.summary()["busy"] and watch.summary()["quiet_wait_s"] == 0


def test_quiet_options_have_help_and_are_checked(db_url: str) -> None:
    help_text = " ".join(CliRunner().invoke(app, ["run", "--help"]).output.replace("│", " ").split())
    assert "--quiet-below" in help_text and "--max-quiet-wait" in help_text and "0: never wait" in help_text
    result = CliRunner().invoke(app, ["run", "--quiet-below", "2", "--db", db_url])
    assert result.exit_code == 2


def test_this_machines_proc_is_read() -> None:
    probe = LoadProbe()
    before = probe.snapshot()
    if before is None:
        pytest.skip("no /proc/stat here (not Linux)")
    sum(i * i for i in range(200_000))  # some CPU time of our own
    state = probe.read(since=before)
    assert state["cores"] >= 1 and len(state["loadavg"]) == 3
    assert 0.0 <= state.get("others_share", 0.0) <= 1.0
