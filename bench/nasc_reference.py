"""NASC's reference scenario, latency side (DESIGN.md section 6), on the digits data with short budgets.

fbnet-cifar100, head raspi4, tail edgegpu (HW-NAS-Bench latencies, imported into a bench SQLite and
served by the real latency service on 127.0.0.1), 8 Mbit/s, 32 bits, p = 0.2, T_th = 30 ms. Five seeds
per method (nasc, hwnas, hwnas-nodropout, random, evolution), all under the same latency model and the
same budget. Per method it prints the share of runs meeting T_th, the median latency and the median
accuracy at p = 0.2; and, over all runs, the share of search wall time spent on latency queries
(target: under 1 %).

Budgets are far below the reference (30 / 90 / 300 epochs on CIFAR-100) so that the whole benchmark
fits a 2-core CPU in about ten minutes (batch 8, 25 steps per epoch, epochs 2 / 6 / 4: 50 pre-training,
150 search and 100 re-training steps): accuracies are those of seconds of training on 1,077 digits, not
the paper's. Within a seed, methods that pre-train the same supernet share it through
``supernet_cache`` (nasc -> random, evolution; hwnas -> hwnas-nodropout), which is what one-shot search
allows and changes no result (every stage seeds its own randomness). Seeds and groups run in parallel
worker processes, one torch thread each.

    .venv/bin/python bench/nasc_reference.py [--seeds 5] [--workers 2] [--local] [--output summary.json]

The jobs land in ``<workdir>/bench.db``: ``nas report --db sqlite:///<workdir>/bench.db`` plots them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
METHODS = ("nasc", "random", "evolution", "hwnas", "hwnas-nodropout")
# methods that pre-train the same supernet (with split points and dropout, or whole models without) run together
GROUPS = {"split": ("nasc", "random", "evolution"), "whole": ("hwnas", "hwnas-nodropout")}
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


def run_group(seed: int, group: str, settings: dict[str, Any], db_url: str, predictor_url: str | None,
              workdir: str) -> list[dict]:
    """One seed's methods of one group, in one process (one torch thread), sharing data, client and supernet."""
    import torch

    torch.set_num_threads(1)
    from nas.config import SearchConfig
    from nas.data import load_data, subset
    from nas.jobs import run_search
    from nas.latency_client import LatencyClient

    data = subset(load_data(settings["data"]), settings.get("data_limit"))
    jobs = []
    with LatencyClient(predictor_url, db_url=db_url, predictor="lookup") as client:
        for method in (m for m in GROUPS[group] if m in settings["methods"]):
            config = SearchConfig(method=method, seed=seed, predictor_url=predictor_url, predictor="lookup",
                                  supernet_cache=str(Path(workdir) / f"supernet-{group}-seed{seed}.pt"),
                                  **settings["config"])
            job = run_search(config, db_url=db_url, client=client, data=data).model_dump(mode="json", by_alias=True)
            result = job["result"]
            print(f"  seed {seed} {method:<16} T {result['latency']['total_ms']:6.2f} ms  "
                  f"met {str(result['meets_t_th']):<5}  acc@p {result['accuracy_at_loss']:.3f}  "
                  f"wall {result['wall_time_s']:5.1f} s  {result['architecture']}", flush=True)
            jobs.append(job)
    return jobs


def summarize(jobs: list[dict], t_th: float) -> dict[str, Any]:
    by_method: dict[str, Any] = {}
    for method in METHODS:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hwnasbench", type=Path, default=REPO.parent / "shared" / "hwnasbench")
    parser.add_argument("--workdir", type=Path, default=REPO / "reports" / "bench" / "nasc_reference")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (one torch thread each)")
    parser.add_argument("--local", action="store_true", help="read the bench database directly, no service")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--data-limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps-per-epoch", type=int, default=25)
    parser.add_argument("--epochs", default="2,6,4", help="PRETRAIN,SEARCH,RETRAIN epochs of --steps-per-epoch")
    parser.add_argument("--output", type=Path, default=None, help="write the summary and every job as JSON")
    args = parser.parse_args()

    pretrain, search, retrain = (int(x) for x in args.epochs.split(","))
    settings = {
        "data": args.data, "data_limit": args.data_limit, "methods": args.methods.split(","),
        "config": {
            "space": SPACE, "head_device": "raspi4", "tail_device": "edgegpu", "bandwidth_mbps": 8.0, "bits": 32,
            "loss": 0.2, "t_th": 30.0, "data": args.data, "data_limit": args.data_limit,
            "batch_size": args.batch_size, "steps_per_epoch": args.steps_per_epoch, "pretrain_epochs": pretrain,
            "search_epochs": search, "retrain_epochs": retrain, "split_eval_batches": 2, "device": "cpu",
        },
    }
    args.workdir.mkdir(parents=True, exist_ok=True)
    for stale in [*args.workdir.glob("bench.db*"), *args.workdir.glob("supernet-*.pt")]:
        stale.unlink()  # every run starts from scratch: no jobs or supernets of earlier runs
    db_url = f"sqlite:///{args.workdir / 'bench.db'}"
    start = time.perf_counter()
    build_database(db_url, args.hwnasbench)
    print(f"budget per run: batch {args.batch_size}, {args.steps_per_epoch} steps per epoch, epochs "
          f"{pretrain}/{search}/{retrain} (pre-train / search / re-train); {args.seeds} seeds, "
          f"{args.workers} workers", flush=True)
    with latency_service(db_url, args.workdir / "service.log") if not args.local else _no_service() as url:
        print(f"latency tables from {url or db_url}", flush=True)
        with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(run_group, seed, group, settings, db_url, url, str(args.workdir))
                       for group in GROUPS for seed in range(args.seeds)]
            jobs = [job for future in futures for job in future.result()]
    summary = summarize(jobs, 30.0)
    summary["bench_wall_time_s"] = time.perf_counter() - start
    print(f"\n{'method':<16} {'runs':>4} {'meet T_th':>9} {'median T ms':>11} {'median acc@p=0.2':>16} "
          f"{'median acc p=0':>14} {'median split':>12}")
    for method, row in summary["methods"].items():
        print(f"{method:<16} {row['runs']:>4} {row['meets_t_th']:>9.0%} {row['median_latency_ms']:>11.2f} "
              f"{row['median_accuracy_at_loss']:>16.3f} {row['median_accuracy_clean']:>14.3f} "
              f"{row['median_split']:>12}")
    print(f"\nlatency queries: {summary['latency_queries']} in {summary['latency_time_s']:.3f} s of "
          f"{summary['search_wall_time_s']:.0f} s search wall time = {100 * summary['latency_share']:.4f} % "
          f"(target < 1 %); benchmark wall time {summary['bench_wall_time_s']:.0f} s")
    print(f"plots: .venv/bin/nas report --db {db_url} --output-dir {args.workdir / 'report'}")
    if args.output:
        args.output.write_text(json.dumps({"summary": summary, "jobs": jobs}, indent=1, default=str) + "\n")


@contextmanager
def _no_service() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()
