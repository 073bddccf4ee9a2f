"""Plots of search jobs (matplotlib, Agg): accuracy versus latency, and distribution convergence.

Each function takes typed jobs (``nas.results.Job``) and writes one PNG, so reports can embed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from nas.results import Job
from predictor.plots import save_figure


def completed(jobs: Sequence[Job]) -> list[Job]:
    return [job for job in jobs if job.status == "completed" and job.result is not None]


def plot_accuracy_latency(jobs: Sequence[Job], path: Path) -> Path:
    """Accuracy at the link's loss rate against predicted latency, one colour per method, T_th as lines."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    done = completed(jobs)
    for method in sorted({job.method for job in done}):
        mine = [job.result for job in done if job.method == method and job.result is not None]
        ax.scatter([r.latency.total_ms for r in mine], [r.accuracy_at_loss for r in mine], label=method, alpha=0.8)
    for t_th in sorted({job.config.t_th for job in done}):
        ax.axvline(t_th, color="grey", linestyle="--", linewidth=1)
        ax.annotate(f"T_th {t_th:g} ms", (t_th, 1.0), xycoords=("data", "axes fraction"), ha="left", va="top",
                    fontsize=8, color="grey")
    ax.set_xlabel("predicted latency (ms): head + link + tail")
    ax.set_ylabel("test accuracy at the link's loss rate")
    ax.set_title("search results: accuracy vs latency")
    if done:
        ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_convergence(job: Job, path: Path) -> Path:
    """Distribution convergence (mean of row maxima) and objective per search epoch of one job."""
    records = job.search_records
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    epochs = [r["epoch"] for r in records]
    ax.plot(epochs, [r["convergence"] for r in records], marker="o", color="tab:blue", label="convergence")
    ax.set_xlabel("search epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("convergence (mean max probability)", color="tab:blue")
    ax.set_ylim(0, 1)
    other = ax.twinx()
    other.plot(epochs, [r["loss"] for r in records], marker=".", color="tab:orange", label="objective")
    other.set_ylabel("mean objective J", color="tab:orange")
    ax.set_title(f"{job.method} {job.uid[:8]}: distribution update")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_pareto(jobs: Sequence[Job], title: str, path: Path) -> Path:
    """Accuracy at the link's loss rate against latency, one colour per method, with the Pareto front."""
    done = completed(jobs)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for method in dict.fromkeys(job.method for job in done):
        points = [(r.latency.total_ms, r.accuracy_at_loss) for job in done if job.method == method
                  for r in [job.result] if r is not None]
        ax.scatter(*zip(*points, strict=True), label=method, alpha=0.8)
    front = pareto_front([(r.latency.total_ms, r.accuracy_at_loss) for job in done for r in [job.result]
                          if r is not None])
    if front:
        ax.step(*zip(*front, strict=True), where="post", color="black", linewidth=1, label="Pareto front")
    for t_th in sorted({job.config.t_th for job in done}):
        ax.axvline(t_th, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("predicted latency (ms): head + link + tail")
    ax.set_ylabel("test accuracy at the link's loss rate")
    ax.set_title(title, fontsize=9)
    if done:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (latency, accuracy) points no other beats in both (lower latency and higher accuracy), by latency."""
    front: list[tuple[float, float]] = []
    for latency, accuracy in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or accuracy > front[-1][1]:
            front.append((latency, accuracy))
    return front
