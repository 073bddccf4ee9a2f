"""What a sweep found (``nas report --sweep NAME``): per scenario and method, the share of runs meeting
T_th, median latency and accuracy, the latency reduction against the HWNAS baselines, and Pareto plots.

A scenario is one point of the sweep's grid without its method and seed axes (e.g. ``t_th=30
bandwidth_mbps=8``); a sweep whose grid has only those has one scenario. Each cell counts once: its last
completed job (a resumed sweep may hold failed attempts beside it).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from nas.results import Job

BASELINES = ("hwnas", "hwnas-nodropout")  # conventional HW-NAS, split afterwards (DESIGN.md 5.2)
REPLICATES = ("method", "seed")  # the grid axes a scenario's runs vary in


@dataclass(frozen=True)
class MethodSummary:
    scenario: str
    method: str
    runs: int
    meets_t_th: float  # share of runs
    median_latency_ms: float
    median_accuracy_at_loss: float
    median_accuracy_clean: float
    latency_reduction: float | None  # 1 - median T / median T of the HWNAS baselines in the scenario

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def load_sweep(db_url: str | None, name: str) -> tuple[list[str], list[Job]]:
    """The sweep's grid axes and its jobs, oldest first (an unknown name is a ValueError listing the known)."""
    from db import queries
    from db.engine import session_scope
    from nas.jobs import load_jobs

    jobs = load_jobs(db_url, sweep=name)
    with session_scope(db_url) as session:
        sweep = queries.get_sweep(session, name=name)
        axes = list(sweep.spec.get("grid", {})) if sweep is not None else []
    return axes, jobs


def cell_jobs(jobs: Sequence[Job]) -> list[Job]:
    """The last completed job of every cell, in the order the cells first ran."""
    latest: dict[str, Job] = {}
    for job in jobs:
        if job.status == "completed" and job.result is not None:
            latest[job.cell or job.uid] = job
    return list(latest.values())


def scenario(job: Job, axes: Sequence[str]) -> str:
    """The job's scenario: its values of the grid's axes other than method and seed."""
    settings = job.config.model_dump(mode="json")
    values = []
    for axis in axes:
        if axis in REPLICATES:
            continue
        value: Any = settings
        for part in axis.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values.append(f"{axis}={value}")
    return " ".join(values) or "all runs"


def summarize(jobs: Sequence[Job], axes: Sequence[str]) -> list[MethodSummary]:
    """One row per (scenario, method), scenarios in the order they first ran, methods likewise."""
    groups: dict[str, dict[str, list[Job]]] = {}
    for job in cell_jobs(jobs):
        groups.setdefault(scenario(job, axes), {}).setdefault(job.method, []).append(job)
    rows = []
    for name, methods in groups.items():
        baseline = [_latency(j) for m in BASELINES for j in methods.get(m, [])]
        reference = statistics.median(baseline) if baseline else None
        for method, mine in methods.items():
            latency = statistics.median(_latency(j) for j in mine)
            rows.append(MethodSummary(
                scenario=name, method=method, runs=len(mine),
                meets_t_th=sum(bool(j.result and j.result.meets_t_th) for j in mine) / len(mine),
                median_latency_ms=latency,
                median_accuracy_at_loss=statistics.median(j.result.accuracy_at_loss for j in mine if j.result),
                median_accuracy_clean=statistics.median(j.result.accuracy_clean for j in mine if j.result),
                latency_reduction=None if reference is None or method in BASELINES else 1 - latency / reference,
            ))
    return rows


def _latency(job: Job) -> float:
    assert job.result is not None
    return job.result.latency.total_ms


def summary_table(name: str, rows: Sequence[MethodSummary]) -> Table:
    table = Table(title=f"sweep {name}: per scenario and method (medians over seeds)")
    for column in ("scenario", "method", "runs", "meet T_th", "T ms", "acc@p", "acc p=0", "T vs HWNAS"):
        table.add_column(column, justify="left" if column in ("scenario", "method") else "right")
    for row in rows:
        reduction = "" if row.latency_reduction is None else f"{-100 * row.latency_reduction:+.0f} %"
        table.add_row(row.scenario, row.method, str(row.runs), f"{row.meets_t_th:.0%}", f"{row.median_latency_ms:.2f}",
                      f"{row.median_accuracy_at_loss:.3f}", f"{row.median_accuracy_clean:.3f}", reduction)
    return table


def plot_scenarios(jobs: Sequence[Job], axes: Sequence[str], output_dir: Path) -> list[Path]:
    """One Pareto plot per scenario (``pareto_NN.png``), in the order the scenarios first ran."""
    from nas.plots import plot_pareto

    by_scenario: dict[str, list[Job]] = {}
    for job in cell_jobs(jobs):
        by_scenario.setdefault(scenario(job, axes), []).append(job)
    return [plot_pareto(mine, name, output_dir / f"pareto_{index:02d}.png")
            for index, (name, mine) in enumerate(by_scenario.items())]
