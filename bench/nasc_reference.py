"""NASC's reference scenario, latency side (DESIGN.md section 6), on the digits data with short budgets.

fbnet-cifar100, head raspi4, tail edgegpu (HW-NAS-Bench latencies, imported into a bench SQLite and
served by the real latency service on 127.0.0.1), 8 Mbit/s, 32 bits, p = 0.2, T_th = 30 ms. Five seeds
per method (nasc, hwnas, hwnas-nodropout, random, evolution), all under the same latency model and the
same budget. Per method it prints the share of runs meeting T_th, the median latency and the median
accuracy at p = 0.2; and, over all runs, the share of search wall time spent on latency queries
(target: under 1 %).

Budgets are far below the reference (30 / 90 / 300 epochs on CIFAR-100) so that the whole benchmark
fits a 2-core CPU (batch 8, 25 steps per epoch, epochs 2 / 6 / 4: 50 pre-training, 150 search and 100
re-training steps): accuracies are those of seconds of training on 1,077 digits, not the paper's.

The runs are the cells of ``examples/sweeps/nasc_reference.yaml``, run by ``nas sweep`` (Ray tasks on a
local Ray, one core and one torch thread each): first on one core (the sequential reference), then on
``--workers`` cores, each run in its own sweep (``<name>-sequential``, ``<name>``) with its own supernet
cache. Within a seed, methods that pre-train the same supernet share it (nasc -> random, evolution;
hwnas -> hwnas-nodropout), which is what one-shot search allows and changes no result (every stage
seeds its own randomness). The bench checks that both sweeps found the same architecture in every cell
and prints the parallel wall time against the sequential one (on 2 cores a ratio near 2 is the limit).

    .venv/bin/python bench/nasc_reference.py [--seeds 5] [--workers 2] [--no-sequential] [--local] [--output F]

The jobs land in ``<workdir>/bench.db``: ``nas report --sweep nasc-reference --db sqlite:///<workdir>/bench.db``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
METHODS = ("nasc", "random", "evolution", "hwnas", "hwnas-nodropout")
DEVICES = ("raspi4", "edgegpu")
SPACE = "fbnet-cifar100"


def build_database(url: str, hwnasbench: Path) -> None:
    """Import HW-NAS-Bench with the profiler's importer and fit lookup predictors for both devices."""
    from db.engine import session_scope
    from predictor import fit_predictors
    from profiler.hwnasbench import import_tables, load_tables

    with session_scope(url) as session:
        import_tables(session, load_tables(hwnasbench), source=str(hwnasbench))
        for device in DEVICES:
            fit_predictors(session, device=device, space=SPACE, kinds=["lookup"], evaluate=False)


@contextmanager
def latency_service(db_url: str, log: Path) -> Iterator[str]:
    """The real service (uvicorn, ``api.main:app``) on a free port of 127.0.0.1."""
    from pipeline.service import Service

    with Service(db_url, log=log, timeout=60) as service:
        yield service.url


def summarize(jobs: list[dict], t_th: float, methods: tuple[str, ...] = METHODS) -> dict[str, Any]:
    by_method: dict[str, Any] = {}
    for method in methods:
        mine = [j["result"] for j in jobs if j["method"] == method]
        if not mine:
            continue
        by_method[method] = {
            "runs": len(mine),
            "meets_t_th": sum(r["meets_t_th"] for r in mine) / len(mine),
            "median_latency_ms": statistics.median(r["latency"]["total_ms"] for r in mine),
            "median_accuracy_at_loss": statistics.median(r["accuracy_at_loss"] for r in mine),
            "median_accuracy_clean": statistics.median(r["accuracy_clean"] for r in mine),
            "median_split": statistics.median(r["split"] for r in mine),
            "median_wall_s": statistics.median(r["wall_time_s"] for r in mine),
        }
    wall = sum(j["result"]["wall_time_s"] for j in jobs)
    latency = sum(j["result"]["latency_time_s"] for j in jobs)
    return {"t_th": t_th, "methods": by_method, "latency_share": latency / wall, "latency_time_s": latency,
            "search_wall_time_s": wall, "latency_queries": sum(j["result"]["latency_queries"] for j in jobs)}


def run_sweeps(args: argparse.Namespace, db_url: str, predictor_url: str | None) -> tuple[str, dict[str, Any]]:
    """The sweep file's cells (with this run's seeds, methods and budget) on one core, then on ``--workers``;
    returns the parallel sweep's name and, per sweep, its cores, wall time and cells."""
    from nas.sweep import expand, read_sweep, run_sweep

    spec = read_sweep(args.sweep)
    pretrain, search, retrain = (int(x) for x in args.epochs.split(","))
    base = {**spec.base, "predictor_url": predictor_url, "data": args.data, "data_limit": args.data_limit,
            "batch_size": args.batch_size, "steps_per_epoch": args.steps_per_epoch, "pretrain_epochs": pretrain,
            "search_epochs": search, "retrain_epochs": retrain}
    grid = {**spec.grid, "method": args.methods.split(","), "seed": list(range(args.seeds))}
    runs = {}
    for name, cores in ([(f"{spec.name}-sequential", 1)] if args.sequential else []) + [(spec.name, args.workers)]:
        run = spec.model_copy(update={"name": name, "base": base, "grid": grid})
        cells = expand(run, supernet_cache=args.workdir / f"supernets-{name}")
        print(f"sweep {name}: {len(cells)} cells on {cores} core(s)", flush=True)
        outcome = run_sweep(run, cells, db_url=db_url, num_cpus=cores)
        if outcome.failed:
            raise SystemExit(f"sweep {name}: cells failed: {outcome.failed}")
        runs[name] = {"cores": cores, "wall_s": outcome.wall_s, "cells": [c.id for c in cells]}
    return spec.name, runs


def sweep_jobs(db_url: str, name: str) -> list[dict]:
    from nas.jobs import load_jobs

    return [job.model_dump(mode="json", by_alias=True) for job in load_jobs(db_url, sweep=name, status="completed")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hwnasbench", type=Path, default=REPO.parent / "shared" / "hwnasbench")
    parser.add_argument("--workdir", type=Path, default=REPO / "reports" / "bench" / "nasc_reference")
    parser.add_argument("--sweep", type=Path, default=REPO / "examples" / "sweeps" / "nasc_reference.yaml")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--workers", type=int, default=2, help="cores of the parallel sweep (one torch thread each)")
    parser.add_argument("--sequential", action=argparse.BooleanOptionalAction, default=True,
                        help="first run the cells on one core: the sequential time and architectures")
    parser.add_argument("--local", action="store_true", help="read the bench database directly, no service")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--data-limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps-per-epoch", type=int, default=25)
    parser.add_argument("--epochs", default="2,6,4", help="PRETRAIN,SEARCH,RETRAIN epochs of --steps-per-epoch")
    parser.add_argument("--output", type=Path, default=None, help="write the summary and every job as JSON")
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    for stale in [*args.workdir.glob("bench.db*"), *args.workdir.glob("supernets-*/*.pt")]:
        stale.unlink()  # every run starts from scratch: no jobs or supernets of earlier runs
    db_url = f"sqlite:///{args.workdir / 'bench.db'}"
    start = time.perf_counter()
    load = os.getloadavg()
    build_database(db_url, args.hwnasbench)
    print(f"budget per run: batch {args.batch_size}, {args.steps_per_epoch} steps per epoch, epochs {args.epochs} "
          f"(pre-train / search / re-train); {args.seeds} seeds; load average {load[0]:.2f}", flush=True)
    with latency_service(db_url, args.workdir / "service.log") if not args.local else nullcontext() as url:
        print(f"latency tables from {url or db_url}", flush=True)
        name, runs = run_sweeps(args, db_url, url)
    jobs = sweep_jobs(db_url, name)
    summary = summarize(jobs, 30.0)
    summary["bench_wall_time_s"] = time.perf_counter() - start
    summary["load_before"], summary["load_after"] = load[0], os.getloadavg()[0]
    summary["sweeps"] = runs
    print_methods(summary)
    print(f"\nlatency queries: {summary['latency_queries']} in {summary['latency_time_s']:.3f} s of "
          f"{summary['search_wall_time_s']:.0f} s search wall time = {100 * summary['latency_share']:.4f} % "
          f"(target < 1 %)")
    sequential = runs.get(f"{name}-sequential")
    if sequential is not None:
        same = same_architectures(sweep_jobs(db_url, f"{name}-sequential"), jobs)
        summary["sequential_wall_s"], summary["same_architectures"] = sequential["wall_s"], same
        print(f"sweep wall time on {runs[name]['cores']} cores {runs[name]['wall_s']:.0f} s against "
              f"{sequential['wall_s']:.0f} s on one core: speed-up {sequential['wall_s'] / runs[name]['wall_s']:.2f}; "
              f"same architecture in {same} of {len(jobs)} cells")
    print(f"benchmark wall time {summary['bench_wall_time_s']:.0f} s; load average {load[0]:.2f} before, "
          f"{summary['load_after']:.2f} after")
    print(f"report: .venv/bin/nas report --sweep {name} --db {db_url} --output-dir {args.workdir / 'report'}")
    if args.output:
        args.output.write_text(json.dumps({"summary": summary, "jobs": jobs}, indent=1, default=str) + "\n")


def print_methods(summary: dict[str, Any]) -> None:
    """The per-method table of ``summarize``."""
    print(f"\n{'method':<16} {'runs':>4} {'meet T_th':>9} {'median T ms':>11} {'median acc@p=0.2':>16} "
          f"{'median acc p=0':>14} {'median split':>12}")
    for method, row in summary["methods"].items():
        print(f"{method:<16} {row['runs']:>4} {row['meets_t_th']:>9.0%} {row['median_latency_ms']:>11.2f} "
              f"{row['median_accuracy_at_loss']:>16.3f} {row['median_accuracy_clean']:>14.3f} "
              f"{row['median_split']:>12}")


def same_architectures(first: list[dict], second: list[dict]) -> int:
    """Cells (by their settings' hash) whose two runs found the same architecture and split."""
    found = {job["cell"]: job["result"]["architecture"] for job in first}
    return sum(found.get(job["cell"]) == job["result"]["architecture"] for job in second)


if __name__ == "__main__":
    main()
