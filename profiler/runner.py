"""Running a profiling plan on this device: timing, environment, storage and upload, progress bar."""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from db import queries, session_scope
from db.models import utcnow
from db.records import DEFAULT_RUNTIME, MeasurementBatch, MeasurementRecord, RunRecord
from profiler import environment
from profiler.environment import ThermalProbe
from profiler.load import BUSY_SHARE, LoadProbe, LoadWatch
from profiler.plan import Entry, build_plan, drop_measured, group_by_timing
from profiler.runtimes import Runtime, RuntimeSettings, create_runtime
from profiler.settings import TimingSettings
from profiler.timing import Timing, across_passes, after_wait_ms, clock_function, measure
from profiler.traces import record_trace, trace_name
from profiler.upload import Spool, Uploader, UploadReport
from profiler.workloads import Workload, model_workload, op_workload
from spaces import get_space


@dataclass(frozen=True)
class ProfileOptions:
    """Everything ``profiler run`` was asked to do."""

    device: str
    space: str = "fbnet-cifar100"
    device_kind: str | None = None  # default: gpu for a CUDA device, else cpu
    layers: tuple[int, ...] | None = None
    models: int = 0
    sample_configs: int = 0
    seed: int = 0
    resume: bool = False
    max_entries: int | None = None
    batch_size: int = 32
    trace_dir: Path | None = None
    cool_below: float | None = None
    cool_timeout: float = 600.0
    quiet_below: float | None = BUSY_SHARE  # wait while other processes take this share of the machine
    max_quiet_wait: float = 30.0  # seconds the whole run may wait for quiet
    timing: TimingSettings = field(default_factory=TimingSettings)
    runtime: str = DEFAULT_RUNTIME  # what runs the networks (profiler.runtimes)
    graph_optimization: str | None = None  # the runtime's graph optimization level (ONNX Runtime)
    export_cache: Path | None = None  # where ONNX exports are cached (default: runtimes.base.default_cache_dir)

    def __post_init__(self) -> None:
        if self.trace_dir is not None and self.runtime != DEFAULT_RUNTIME:
            raise ValueError(f"traces are torch.profiler traces: --trace-dir needs --runtime {DEFAULT_RUNTIME}")

    def run_settings(self) -> dict[str, Any]:
        """What is stored with the run (JSON-able)."""
        values = asdict(self)
        values["timing"] = self.timing.as_dict()
        for name in ("trace_dir", "export_cache"):
            values[name] = str(values[name]) if values[name] else None
        return values

    def create_runtime(self) -> Runtime:
        """The runtime asked for; ValueError (RuntimeUnavailable: not installed) for one that cannot run here."""
        return create_runtime(self.runtime, RuntimeSettings(
            threads=self.timing.threads, device=self.timing.device, graph_optimization=self.graph_optimization,
            export_cache=self.export_cache,
        ))


@dataclass
class RunSummary:
    """What a run did, printed by ``profiler run --json``."""

    run_uid: str | None
    device: str
    space: str
    runtime: str
    environment_key: str
    planned: int
    already_measured: int
    measured: int = 0
    timed: int = 0
    noisy: list[str] = field(default_factory=list)
    relative_iqr_median: float | None = None
    share_within_threshold: float | None = None
    wall_s: float = 0.0  # exporting included
    export_s: float = 0.0  # converting the workloads for the runtime (ONNX export; cached on disk)
    status: str = "completed"
    traces: int = 0
    load: dict[str, Any] = field(default_factory=dict)  # how busy the machine was (LoadWatch.summary)
    upload: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class BatchWriter:
    """Stores batches in the local database and, with an uploader, sends them through the spool."""

    def __init__(
        self, db_url: str | None, *, uploader: Uploader | None = None, spool: Spool | None = None,
        upload_retries: int = 1,
    ) -> None:
        if uploader is not None and spool is None:
            raise ValueError("uploading needs a spool directory")
        self.db_url = db_url
        self.uploader = uploader
        self.spool = spool
        self.upload_retries = upload_retries
        self.report = UploadReport() if uploader is not None else None

    def start(self, run: RunRecord) -> None:
        with session_scope(self.db_url) as session:
            queries.upsert_run(session, run=run)

    def write(self, run: RunRecord, records: Sequence[MeasurementRecord]) -> None:
        batch = MeasurementBatch(run=run, measurements=list(records))
        with session_scope(self.db_url) as session:
            queries.ingest_batch(session, batch=batch)
        if self.uploader is not None and self.spool is not None and self.report is not None:
            self.spool.put(batch)
            # A short retry during the run: an unreachable server must not stall measuring.
            self.report.add(self.uploader.flush(self.spool, retries=self.upload_retries))

    def finish(self) -> UploadReport | None:
        """A last flush with the uploader's full retries; the report of every upload of the run."""
        if self.uploader is not None and self.spool is not None and self.report is not None:
            self.report.add(self.uploader.flush(self.spool))
        return self.report


def new_run(options: ProfileOptions, env: dict[str, Any]) -> RunRecord:
    kind = options.device_kind or ("gpu" if options.timing.device.startswith("cuda") else "cpu")
    return RunRecord(
        uid=uuid.uuid4().hex, device=options.device, device_kind=kind,
        device_facts=environment.device_facts(env), host=env["host"], runtime=options.runtime, environment=env,
        environment_key=environment.environment_key(env), settings=options.run_settings(), status="running",
        started_at=utcnow(),
    )


def check_torch_device(device: str) -> None:
    """Raise ValueError unless torch can run on ``device`` here."""
    try:
        parsed = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"invalid torch device {device!r}: {exc}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"torch device {device!r} asked for, but torch sees no CUDA device on this machine")
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"torch device {device!r}: only cpu and cuda devices are supported")


def workload_for(entry: Entry, settings: TimingSettings) -> Workload:
    if entry.op is not None:
        return op_workload(entry.op, copies=settings.copies, device=settings.device)
    assert entry.arch is not None
    return model_workload(entry.arch, device=settings.device)


def measure_entry(
    entry: Entry, settings: TimingSettings, probe: ThermalProbe, *, runtime: Runtime, watch: LoadWatch | None = None,
    trace_dir: Path | None = None, cool_below: float | None = None, cool_timeout: float = 600.0,
) -> tuple[Timing, dict[str, Any]]:
    """Time one entry; returns the timing and what its rows keep in ``raw`` (thermal state, load, trace)."""
    raw: dict[str, Any] = {}
    if cool_below is not None:
        raw["cooldown_s"] = probe.wait_below(cool_below, timeout=cool_timeout)
    if watch is not None:
        raw.update(watch.before_entry())
    before = probe.read()
    workload = workload_for(entry, settings)
    run = runtime.prepare(workload)
    timing = measure(run, executions=workload.executions, settings=settings)
    if entry.target == "model" and settings.wait > 0:
        raw["after_wait_ms"] = after_wait_ms(run, clock_function(settings), wait=settings.wait) / workload.executions
    if watch is not None:
        raw["load"] = watch.after_entry()
    after = probe.read()
    if before or after:
        raw["thermal_before"], raw["thermal_after"] = before, after
    if trace_dir is not None:
        files = record_trace(workload, trace_dir / trace_name(entry.key), device=settings.device)
        raw["trace"] = [str(f) for f in files]
    return timing, raw


def combine(visits: list[tuple[Timing, dict[str, Any]]]) -> tuple[Timing, dict[str, Any]]:
    """An entry's timing from its passes (the median pass), its raw facts (the trace of the first pass) and
    the median of its passes' calls after a wait."""
    timing = across_passes([t for t, _ in visits])
    best = next(raw for t, raw in visits if t.median_ms == timing.median_ms)
    raw = {**visits[0][1], **best}
    if waits := [r["after_wait_ms"] for _, r in visits if "after_wait_ms" in r]:
        raw["after_wait_ms"] = float(statistics.median(waits))
    return timing, raw


@contextmanager
def progress_bar(total: int, *, enabled: bool) -> Iterator[tuple[Progress, Any]]:
    columns = (
        TextColumn("[bold]{task.description}", table_column=None),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), disable=not enabled) as progress:
        yield progress, progress.add_task("starting", total=total)


def export_all(groups: list[list[Entry]], settings: TimingSettings, runtime: Runtime, *, progress: bool) -> None:
    """Convert what each group times for the runtime ahead of timing (its cache makes a re-run free)."""
    with progress_bar(len(groups), enabled=progress) as (bar, task), torch.inference_mode():
        for group in groups:
            bar.update(task, description=f"export for {runtime.name}: {group[0].label}")
            runtime.export(workload_for(group[0], settings))
            bar.advance(task)


def plan_run(options: ProfileOptions, env_key: str, db_url: str | None) -> tuple[list[Entry], int]:
    """The entries to measure this time, and how many of the plan were already measured."""
    entries = build_plan(
        get_space(options.space), layers=options.layers, models=options.models,
        sample_configs=options.sample_configs, seed=options.seed,
    )
    planned = len(entries)
    if options.resume:
        with session_scope(db_url) as session:
            measured = queries.measured_keys(session, device=options.device, environment_key=env_key)
        entries = drop_measured(entries, measured)
    skipped = planned - len(entries)
    if options.max_entries is not None:
        entries = entries[: options.max_entries]
    return entries, skipped


def profile_device(
    options: ProfileOptions, writer: BatchWriter, *, probe: ThermalProbe | None = None,
    load: LoadProbe | None = None, progress: bool = True,
) -> RunSummary:
    """Measure the plan of ``options`` on this machine and store (and upload) it, batch by batch."""
    probe = probe or ThermalProbe.local()
    load = load or LoadProbe(probe.root)
    settings = options.timing
    runtime = options.create_runtime()
    torch.set_num_threads(settings.threads)
    env = environment.capture(
        threads=settings.threads, device=settings.device, caches=settings.caches, clock=settings.clock, probe=probe,
        load=load, runtime=runtime.name,
    )
    env.update(runtime.environment())
    run = new_run(options, env)
    entries, skipped = plan_run(options, run.environment_key, writer.db_url)
    summary = RunSummary(
        run_uid=None, device=options.device, space=options.space, runtime=runtime.name,
        environment_key=run.environment_key, planned=len(entries) + skipped, already_measured=skipped,
    )
    if not entries:
        summary.status = "nothing to measure"
        return summary
    started = time.perf_counter()
    groups = group_by_timing(entries)
    if runtime.exports:  # before the run is stored: a workload that cannot be exported stores nothing
        export_all(groups, settings, runtime, progress=progress)
        summary.export_s = round(time.perf_counter() - started, 3)
    summary.run_uid = run.uid
    writer.start(run)
    visits: list[list[tuple[Timing, dict[str, Any]]]] = [[] for _ in groups]
    buffer: list[MeasurementRecord] = []
    stored: set[int] = set()  # groups whose records are in the buffer or the database
    relative_iqrs: list[float] = []
    settled: list[bool] = []

    def keep(index: int) -> None:
        """Buffer the records of group ``index`` from the passes it has had."""
        timing, raw = combine(visits[index])
        summary.timed += 1
        summary.traces += bool(raw.get("trace"))
        relative_iqrs.append(timing.relative_iqr)
        settled.append(not timing.noisy)
        first = groups[index][0]
        for entry in groups[index]:
            reused = {"timed_as": first.key} if entry is not first else {}
            buffer.append(entry.record(timing, **raw, **reused))
            if timing.noisy:
                summary.noisy.append(entry.key)

    watch = LoadWatch(load, quiet_below=options.quiet_below, max_wait=options.max_quiet_wait)

    def finished(status: str) -> RunRecord:
        """The run as stored at its end: status, and how busy the machine was in its environment."""
        summary.load = watch.summary()
        return run.model_copy(update={
            "status": status, "finished_at": utcnow(), "environment": {**run.environment, "load_summary": summary.load},
        })

    visit_settings = settings.one_pass()
    try:
        with progress_bar(len(entries) * settings.passes, enabled=progress) as (bar, task), torch.inference_mode():
            for number in range(settings.passes):
                order = list(range(len(groups)))
                random.Random(f"{options.seed}/{number}").shuffle(order)  # no entry always follows the same ones
                for index in order:
                    group = groups[index]
                    bar.update(task, description=f"pass {number + 1}/{settings.passes} {group[0].label}")
                    visits[index].append(measure_entry(
                        group[0], visit_settings, probe, runtime=runtime, watch=watch,
                        trace_dir=options.trace_dir if number == 0 else None,
                        cool_below=options.cool_below, cool_timeout=options.cool_timeout,
                    ))
                    if (warning := watch.warning()) is not None:
                        bar.console.print(warning, highlight=False, soft_wrap=True)
                    if number == settings.passes - 1:
                        keep(index)
                        stored.add(index)
                    if len(buffer) >= options.batch_size:
                        writer.write(run, buffer)
                        summary.measured += len(buffer)
                        buffer = []
                    bar.advance(task, len(group))
    except BaseException:
        for index, timed in enumerate(visits):  # nothing timed is lost: keep the passes they had
            if timed and index not in stored:
                keep(index)
        writer.write(finished("failed"), buffer)
        raise
    writer.write(finished("completed"), buffer)
    summary.measured += len(buffer)
    report = writer.finish()
    summary.upload = asdict(report) if report is not None else None
    summary.wall_s = round(time.perf_counter() - started, 3)
    summary.relative_iqr_median = statistics.median(relative_iqrs)
    summary.share_within_threshold = sum(settled) / len(settled)
    return summary
