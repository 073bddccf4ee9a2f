"""Progress and results of searches on the terminal (rich)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from nas.config import SearchConfig
from nas.methods import SearchCallback
from nas.results import Job, SplitResult, TopologyResult


class RichProgress(SearchCallback):
    """A progress bar per stage and one line per epoch: loss, argmax architecture, its latency, convergence."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), console=self.console, transient=True,
        )
        self.task: Any = None

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_stage(self, stage: str, epochs: int, steps_per_epoch: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(stage, total=max(epochs * steps_per_epoch, 1))

    def on_step(self, stage: str) -> None:
        if self.task is not None:
            self.progress.advance(self.task)

    def on_epoch(self, record: dict[str, Any]) -> None:
        self.progress.console.print(format_record(record), highlight=False)


def format_record(record: dict[str, Any]) -> str:
    """One readable line for a progress record."""
    if record.get("loaded"):
        return f"[cyan]{record['stage']:>8}[/] pre-trained supernet loaded from {record['loaded']}"
    parts = [f"[cyan]{record['stage']:>8}[/] epoch {record['epoch']:>3}"]
    if record.get("loss") is not None:
        parts.append(f"loss {record['loss']:.4f}")
    if record.get("convergence") is not None:
        parts.append(f"convergence {record['convergence']:.3f}")
    if record.get("latency_ms") is not None:
        parts.append(f"T {record['latency_ms']:.2f} ms")
    if record.get("arch"):
        parts.append(f"[dim]{record['arch']}[/]")
    return "  ".join(parts)


def print_summary(console: Console, job: Job) -> None:
    """The found architecture, split point(s), latency breakdown, payload and accuracy of a finished job."""
    result = job.result
    if result is None:
        console.print(f"search job {job.uid} ({job.method}): {job.status}" + (f": {job.error}" if job.error else ""))
        return
    table = Table(title=f"search job {job.uid} ({job.method}, {job.space})", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows = split_rows(job.config, result) if isinstance(result, SplitResult) else topology_rows(job.config, result)
    if result.weights:
        rows.append(("weights", f"{result.weights}  (nas export {job.uid} --out DIR)"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def split_rows(config: SearchConfig, result: SplitResult) -> list[tuple[str, str]]:
    """Rows of the summary table for a head-tail split."""
    latency = result.latency
    meets = "[green]yes[/]" if result.meets_t_th else "[red]no[/]"
    return [
        ("architecture", result.architecture),
        ("split point", f"{result.split} (head: {latency.head_device}, tail: {latency.tail_device})"),
        ("head compute", f"{latency.head_ms:.2f} ms"),
        ("link", f"{latency.comm_ms:.2f} ms ({config.bandwidth_mbps} Mbit/s, {config.bits} bits, "
                 f"{config.payload_codec})"),
        ("tail compute", f"{latency.tail_ms:.2f} ms"),
        ("total latency", f"{latency.total_ms:.2f} ms  (T_th {config.t_th} ms, met: {meets})"),
        ("payload", f"{latency.payload_elements} elements = {result.payload_bytes} bytes"),
        (f"accuracy at loss {result.loss_rate}", f"{result.accuracy_at_loss:.4f}"),
        ("accuracy without loss", f"{result.accuracy_clean:.4f}"),
        ("search wall time", f"{result.wall_time_s:.1f} s, latency queries {100 * result.latency_share:.3f} %"),
    ]


def topology_rows(config: SearchConfig, result: TopologyResult) -> list[tuple[str, str]]:
    """Rows of the summary table for a job searched on a chain or mesh of devices."""
    latency, topology = result.latency, result.topology
    met = "yes" if result.meets_t_th else "no"
    rows = [
        ("architecture", result.architecture),
        ("topology", f"{topology.name} ({topology.kind}): {topology.stages}"),
        ("split points", f"{result.splits}" + (" (searched)" if result.search_splits else " (given)")),
    ]
    for segment in latency.segments:
        layers = segment.layers
        span = f"layers {layers[0]}..{layers[-1]}" if layers else "no searchable layer"
        sent = f"send {segment.comm_ms:.2f} ms ({segment.payload_elements} elements)"
        rows.append((f"  {segment.device}", f"{span}: compute {segment.compute_ms:.2f} ms, {sent}"))
    if latency.branch_ms:
        branches = ", ".join(f"{name} {ms:.2f} ms" for name, ms in latency.branch_ms.items())
        rows.append(("branches (root + branch)", f"{branches}; slowest: {latency.critical_branch}"))
    if topology.derived_devices:
        rows.append(("derived devices", "; ".join(topology.derived_devices)))
    rows += [
        ("completion latency", f"{latency.total_ms:.2f} ms  (T {config.t_th} ms, met: {met}; "
                               f"E[T] at the end of the search {result.expected_ms:.2f} ms)"),
        ("bytes sent", f"{result.payload_bytes} over all links"),
        ("accuracy", f"{result.accuracy_clean:.4f} (lossless links)"),
        ("search wall time", f"{result.wall_time_s:.1f} s, latency {100 * result.latency_share:.3f} %"),
    ]
    return rows


def jobs_table(jobs: Sequence[Job]) -> Table:
    """One row per job: method, seed, architecture, split(s), latency against T_th, accuracy, time."""
    table = Table(title="search jobs")
    for column in ("uid", "method", "seed", "architecture", "split", "T ms", "T_th", "acc@p", "acc p=0", "wall s",
                   "lat %"):
        # every cell whole: the architecture folds onto lines of at most 48 characters, the rest never wrap
        arch = column == "architecture"
        table.add_column(column, justify="left" if column in ("uid", "method", "architecture") else "right",
                         overflow="fold" if arch else "ellipsis", no_wrap=not arch, max_width=48 if arch else None)
    for job in jobs:
        row = [job.uid[:8], job.method, str(job.config.seed)]
        result = job.result
        if result is None:
            table.add_row(*row, "", f"[red]{job.status}[/]", *[""] * 6)
            continue
        met = "green" if result.meets_t_th else "red"
        table.add_row(
            *row, result.architecture, ",".join(map(str, result.splits)), f"[{met}]{result.latency.total_ms:.2f}[/]",
            f"{job.config.t_th:g}", f"{result.accuracy_at_loss:.3f}", f"{result.accuracy_clean:.3f}",
            f"{result.wall_time_s:.0f}", f"{100 * result.latency_share:.3f}",
        )
    return table
