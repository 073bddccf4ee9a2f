"""Profile the whole fbnet-cifar100 space (all blocks + fixed layers) on this machine twice and report.

Figures (targets of issue 3, on the 2-core reference CPU):
  - wall time of one profiling run of the whole space            target < 90 s
  - share of timed entries with IQR/median <= 5 %                   target >= 95 %
    (with cold caches, the default, a sample is one execution, whose spread is inherent: the share of
    settled entries, whose median is known to within 5 %, is printed beside it)
  - median relative difference between the two runs, per entry      target <= 3 %
and, with ``--models N`` (default 10), the in-network bias that DESIGN.md section 7 is about: the sum
of the measured entries (stem + 22 blocks + head + pool + FC) against the same run's end-to-end
latency of N sampled architectures.

Usage: .venv/bin/python bench/profile_space.py [--models 10] [--min-run-time 0.3] [--caches cold|warm]
       [--passes 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from db import queries, session_scope
from profiler.runner import BatchWriter, ProfileOptions, RunSummary, profile_device
from profiler.settings import CACHES, TimingSettings

SPACE = "fbnet-cifar100"
TARGET_WALL_S = 90.0
TARGET_SHARE = 0.95
TARGET_RUN_TO_RUN = 0.03


def entry_stats(url: str, run_uid: str) -> dict[str, tuple[float, float, bool]]:
    """(median, IQR/median, settled) per distinct timed op (rows that reused a timing are left out)."""
    with session_scope(url) as session:
        rows = queries.list_measurements(session, run_uid=run_uid)
        return {
            row.op_key or row.key: (row.latency_ms, row.iqr_ms / row.latency_ms, not row.noisy)
            for row in rows
            if "timed_as" not in row.raw
        }


def model_bias(url: str, run_uid: str, device: str) -> list[float]:
    """(sum of entries - measured model) / measured model for every end-to-end model of the run."""
    with session_scope(url) as session:
        latest = queries.latest_measurements(session, device=device, space=SPACE)
        models = [m for m in queries.list_measurements(session, run_uid=run_uid, target="model")]
        biases = []
        for model in models:
            if model.config.get("part") != "full":
                continue
            blocks = model.config["arch"].split(",")
            parts = [f"{SPACE}/stem", *(f"{SPACE}/L{i}/{b}" for i, b in enumerate(blocks)),
                     f"{SPACE}/head", f"{SPACE}/pool", f"{SPACE}/fc"]
            predicted = sum(latest[key].latency_ms for key in parts)
            biases.append((predicted - model.latency_ms) / model.latency_ms)
        return biases


def profile(url: str, device: str, timing: TimingSettings, *, models: int = 0, resume: bool = False) -> RunSummary:
    options = ProfileOptions(device=device, space=SPACE, models=models, resume=resume, timing=timing)
    return profile_device(options, BatchWriter(url), progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=10, help="architectures for the in-network bias (0: skip)")
    parser.add_argument("--min-run-time", type=float, default=TimingSettings.min_run_time)
    parser.add_argument("--max-run-time", type=float, default=TimingSettings.max_run_time)
    parser.add_argument("--copies", type=int, default=TimingSettings.copies)
    parser.add_argument("--threads", type=int, default=TimingSettings.threads)
    parser.add_argument("--caches", choices=CACHES, default=TimingSettings.caches)
    parser.add_argument("--passes", type=int, default=TimingSettings.passes)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    timing = TimingSettings(
        min_run_time=args.min_run_time, max_run_time=args.max_run_time, copies=args.copies, threads=args.threads,
        caches=args.caches, passes=args.passes,
    )
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        runs, stats, walls = [], [], []
        for _ in range(2):
            tic = time.perf_counter()
            summary = profile(url, "bench-cpu", timing)
            walls.append(time.perf_counter() - tic)
            runs.append(summary)
            stats.append(entry_stats(url, summary.run_uid))
        # The second run's environment key equals the first's, so --resume skips the space: models only.
        biases = []
        if args.models:
            model_run = profile(url, "bench-cpu", timing, models=args.models, resume=True)
            biases = model_bias(url, model_run.run_uid, "bench-cpu")
    load_after = os.getloadavg()

    first, second = stats
    common = sorted(set(first) & set(second))
    differences = [abs(second[k][0] - first[k][0]) / ((first[k][0] + second[k][0]) / 2) for k in common]
    shift = statistics.median(second[k][0] / first[k][0] for k in common)  # the whole machine got slower or faster
    shifted = [abs(second[k][0] / shift - first[k][0]) / ((first[k][0] + second[k][0] / shift) / 2) for k in common]
    relative_iqrs = [s[k][1] for s in stats for k in common]
    share = sum(r <= 0.05 for r in relative_iqrs) / len(relative_iqrs)
    settled = sum(s[k][2] for s in stats for k in common) / (2 * len(common))
    figures = {
        "entries_timed_per_run": len(common),
        "rows_per_run": runs[0].measured,
        "wall_s": [round(w, 1) for w in walls],
        "share_iqr_within_5pct": round(share, 4),
        "share_iqr_within_5pct_per_run": [
            round(sum(s[k][1] <= 0.05 for k in common) / len(common), 4) for s in stats
        ],
        "share_settled": round(settled, 4),
        "median_relative_iqr": round(statistics.median(relative_iqrs), 5),
        "median_run_to_run_difference": round(statistics.median(differences), 5),
        "p90_run_to_run_difference": round(statistics.quantiles(differences, n=10)[-1], 5),
        "run_to_run_shift": round(shift, 4),
        "median_run_to_run_difference_after_shift": round(statistics.median(shifted), 5),
        "models": len(biases),
        "model_bias_median": round(statistics.median(biases), 4) if biases else None,
        "model_bias_range": [round(min(biases), 4), round(max(biases), 4)] if biases else None,
        "timing": timing.as_dict(),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    worst_wall = max(walls)
    print(f"fbnet-cifar100 on this CPU ({os.cpu_count()} cores, {timing.threads} thread(s)), "
          f"{len(common)} distinct entries ({runs[0].measured} rows) per run, timed twice")
    print(f"  wall time per run            {walls[0]:6.1f} s, {walls[1]:6.1f} s   target < {TARGET_WALL_S:.0f} s   "
          f"{'ok' if worst_wall < TARGET_WALL_S else 'MISSED'}")
    print(f"  entries with IQR/median <= 5% {share:6.1%}             target >= {TARGET_SHARE:.0%}   "
          f"{'ok' if share >= TARGET_SHARE else 'MISSED'}")
    run_to_run = figures["median_run_to_run_difference"]
    print(f"  median run-to-run difference {run_to_run:6.2%}             target <= {TARGET_RUN_TO_RUN:.0%}    "
          f"{'ok' if run_to_run <= TARGET_RUN_TO_RUN else 'MISSED'}")
    print(f"  (settled entries {settled:.1%}; median IQR/median {figures['median_relative_iqr']:.2%}; "
          f"90th percentile run-to-run difference "
          f"{figures['p90_run_to_run_difference']:.2%}; second run / first {shift:.3f}, difference once that shift "
          f"is divided out {figures['median_run_to_run_difference_after_shift']:.2%})")
    if biases:
        print(f"  sum of entries vs {len(biases)} whole models: median bias {figures['model_bias_median']:+.1%}, "
              f"range {min(biases):+.1%} .. {max(biases):+.1%}  (DESIGN.md 7: alone -10..-18 %, 8 copies ~ -5 %)")
    print(f"  load average before {figures['load_average_before']}, after {figures['load_average_after']}")


if __name__ == "__main__":
    main()
