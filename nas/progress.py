"""Progress and results of searches on the terminal (rich)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from nas.methods import SearchCallback
from nas.topology import summary_rows


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


def print_summary(console: Console, job: dict[str, Any]) -> None:
    """The found architecture, split point, latency breakdown, payload and accuracy of a finished job."""
    config, result = job["config"], job["result"]
    latency = result["latency"]
    meets = "[green]yes[/]" if result["meets_t_th"] else "[red]no[/]"
    table = Table(title=f"search job {job['uid']} ({job['method']}, {job['space']})", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    if "segments" in latency:  # a chain or mesh of devices (the gradient method)
        for name, value in summary_rows(config, result):
            table.add_row(name, value)
        console.print(table)
        return
    rows = [
        ("architecture", result["architecture"]),
        ("split point", f"{result['split']} (head: {latency['head_device']}, tail: {latency['tail_device']})"),
        ("head compute", f"{latency['head_ms']:.2f} ms"),
        ("link", f"{latency['comm_ms']:.2f} ms ({config['bandwidth_mbps']} Mbit/s, {config['bits']} bits)"),
        ("tail compute", f"{latency['tail_ms']:.2f} ms"),
        ("total latency", f"{latency['total_ms']:.2f} ms  (T_th {config['t_th']} ms, met: {meets})"),
        ("payload", f"{latency['payload_elements']} elements = {result['payload_bytes']} bytes"),
        (f"accuracy at loss {result['loss_rate']}", f"{result['accuracy_at_loss']:.4f}"),
        ("accuracy without loss", f"{result['accuracy_clean']:.4f}"),
        ("search wall time", f"{result['wall_time_s']:.1f} s, latency queries {100 * result['latency_share']:.3f} %"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def jobs_table(jobs: Sequence[dict[str, Any]]) -> Table:
    """One row per job: method, seed, architecture, split, latency against T_th, accuracy, time."""
    table = Table(title="search jobs")
    for column in ("uid", "method", "seed", "architecture", "split", "T ms", "T_th", "acc@p", "acc p=0", "wall s",
                   "lat %"):
        # every cell whole: the architecture folds onto lines of at most 48 characters, the rest never wrap
        arch = column == "architecture"
        table.add_column(column, justify="left" if column in ("uid", "method", "architecture") else "right",
                         overflow="fold" if arch else "ellipsis", no_wrap=not arch, max_width=48 if arch else None)
    for job in jobs:
        config, result = job["config"], job.get("result") or {}
        row = [job["uid"][:8], job["method"], str(config.get("seed"))]
        if job["status"] != "completed":
            table.add_row(*row, "", f"[red]{job['status']}[/]", *[""] * 6)
            continue
        met = "green" if result["meets_t_th"] else "red"
        table.add_row(
            *row, result["architecture"],
            ",".join(map(str, result.get("splits", [result["split"]]))),  # a topology's jobs: every split
            f"[{met}]{result['latency']['total_ms']:.2f}[/]", f"{config['t_th']:g}",
            f"{result['accuracy_at_loss']:.3f}", f"{result['accuracy_clean']:.3f}", f"{result['wall_time_s']:.0f}",
            f"{100 * result['latency_share']:.3f}",
        )
    return table
