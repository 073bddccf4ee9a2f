"""Searching training hyperparameters beside the architecture (``tune``) against NASC and random search.

The reference scenario of ``bench/nasc_reference.py`` (fbnet-cifar100, head raspi4, tail edgegpu from
HW-NAS-Bench through the real latency service, 8 Mbit/s, 32 bits, p = 0.2, T_th = 30 ms, digits) and its
helpers. NASC and random search run with that bench's fixed hyperparameters (SGD lr 0.025, batch 8,
dropout 0.5 at the split); ``tune`` samples the learning rate (log-uniform in --tune-lr), the batch size
(--tune-batch-sizes) and the dropout at the split (0 to 0.5) with the architecture and split per trial
(Optuna TPE via Ray Tune, ASHA over epochs) and re-trains its best trial with that trial's values.

Matched budget = total training steps, one step being one forward and backward pass of one network on
one batch (a pre-training step of lambda_x = 2 paths counts 2):
- nasc, random: pre-train epochs x steps per epoch x lambda_x, plus re-train epochs x steps per epoch;
  their distribution update adds forward-only evaluations (printed, not counted);
- tune: at most trials x tune epochs x tune steps per epoch for its trials (ASHA stops some early; the
  steps used are printed), plus the same number of re-training steps. By default its trials get the
  budget of NASC's pre-training. Steps are matched, not images: tune's batches may be larger or smaller.

    .venv/bin/python bench/hpo_reference.py [--seeds 5] [--workers 2] [--local] [--output summary.json]

nasc and random run as the cells of ``examples/sweeps/nasc_reference.yaml`` through ``nas sweep`` on
--workers cores (``run_sweeps`` of nasc_reference, sharing a supernet per seed), then tune seed by seed on
a local Ray (one trial at a time: reproducible given the seed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

# the sibling bench (run as a script, bench/ is on the path)
from nasc_reference import (
    REPO,
    SPACE,
    build_database,
    latency_service,
    print_methods,
    run_sweeps,
    summarize,
    sweep_jobs,
)

METHODS = ("nasc", "random", "tune")


def run_tune(seed: int, config: dict[str, Any], data_spec: str, db_url: str, predictor_url: str | None) -> dict:
    import torch

    torch.set_num_threads(1)
    from nas.config import SearchConfig
    from nas.data import load_data, subset
    from nas.jobs import run_search
    from nas.latency_client import LatencyClient

    data = subset(load_data(data_spec), config.get("data_limit"))
    with LatencyClient(predictor_url, db_url=db_url, predictor="lookup") as client:
        settings = SearchConfig(method="tune", seed=seed, predictor_url=predictor_url, predictor="lookup", **config)
        job = run_search(settings, db_url=db_url, client=client, data=data).model_dump(mode="json", by_alias=True)
    result = job["result"]
    chosen = result["hyperparameters"]
    print(f"  seed {seed} tune  T {result['latency']['total_ms']:6.2f} ms  met {str(result['meets_t_th']):<5}  "
          f"acc@p {result['accuracy_at_loss']:.3f}  lr {chosen['lr']:.4f} batch {chosen['batch_size']} "
          f"dropout {chosen['dropout']:.2f}, {result['trials']} trials, {result['trial_steps']} trial steps  "
          f"{result['architecture']}", flush=True)
    return job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hwnasbench", type=Path,
                        default=Path(os.environ.get("HWNASBENCH", REPO.parent / "shared" / "hwnasbench")))
    parser.add_argument("--workdir", type=Path, default=REPO / "reports" / "bench" / "hpo_reference")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sweep", type=Path, default=REPO / "examples" / "sweeps" / "nasc_reference.yaml")
    parser.add_argument("--workers", type=int, default=2, help="cores of the nasc and random sweep")
    parser.add_argument("--local", action="store_true", help="read the bench database directly, no service")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--data-limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8, help="nasc and random")
    parser.add_argument("--steps-per-epoch", type=int, default=25, help="nasc and random")
    parser.add_argument("--epochs", default="2,6,4", help="PRETRAIN,SEARCH,RETRAIN epochs of nasc and random")
    parser.add_argument("--tune-steps-per-epoch", type=int, default=5, help="tune's fidelity step")
    parser.add_argument("--tune-epochs", type=int, default=2, help="most epochs of a tune trial")
    parser.add_argument("--tune-trials", type=int, default=None,
                        help="default: as many as NASC's pre-training steps allow at --tune-epochs")
    parser.add_argument("--tune-lr", default="0.005,0.1", help="MIN,MAX learning rate of tune")
    parser.add_argument("--tune-batch-sizes", default="4,8,16")
    parser.add_argument("--output", type=Path, default=None, help="write the summary and every job as JSON")
    args = parser.parse_args()

    load_before = os.getloadavg()
    pretrain, search, retrain = (int(x) for x in args.epochs.split(","))
    lambda_x = 2
    pretrain_steps = pretrain * args.steps_per_epoch * lambda_x
    retrain_steps = retrain * args.steps_per_epoch
    trial_epoch_steps = args.tune_epochs * args.tune_steps_per_epoch
    trials = args.tune_trials or max(1, pretrain_steps // trial_epoch_steps)
    tune_retrain_epochs = -(-retrain_steps // args.tune_steps_per_epoch)
    scenario = {
        "space": SPACE, "head_device": "raspi4", "tail_device": "edgegpu", "bandwidth_mbps": 8.0, "bits": 32,
        "loss": 0.2, "t_th": 30.0, "data": args.data, "data_limit": args.data_limit, "device": "cpu",
    }
    # nasc and random as the cells of nasc_reference's sweep file (its scenario, with this run's budget)
    one_shot = argparse.Namespace(**vars(args), methods="nasc,random", sequential=False)
    lr_min, lr_max = (float(x) for x in args.tune_lr.split(","))
    tune_config = scenario | {
        "steps_per_epoch": args.tune_steps_per_epoch, "retrain_epochs": tune_retrain_epochs,
        "tune": {"trials": trials, "epochs": args.tune_epochs, "lr_min": lr_min, "lr_max": lr_max,
                 "batch_sizes": tuple(int(b) for b in args.tune_batch_sizes.split(",")), "startup_trials": 5},
    }
    budget = {
        "nasc_random": pretrain_steps + retrain_steps,
        "tune_max": trials * trial_epoch_steps + tune_retrain_epochs * args.tune_steps_per_epoch,
    }
    print(f"matched budget (training steps, one network on one batch forward and backward): nasc / random "
          f"{pretrain_steps} pre-training ({pretrain} epochs x {args.steps_per_epoch} x lambda_x {lambda_x}) + "
          f"{retrain_steps} re-training = {budget['nasc_random']} (plus {search * args.steps_per_epoch} "
          f"distribution-update steps of forward-only evaluations); tune at most {trials} trials x "
          f"{args.tune_epochs} epochs x {args.tune_steps_per_epoch} = {trials * trial_epoch_steps} + "
          f"{tune_retrain_epochs * args.tune_steps_per_epoch} re-training = {budget['tune_max']}; "
          f"{args.seeds} seeds", flush=True)

    args.workdir.mkdir(parents=True, exist_ok=True)
    for stale in [*args.workdir.glob("bench.db*"), *args.workdir.glob("supernets-*/*.pt")]:
        stale.unlink()
    db_url = f"sqlite:///{args.workdir / 'bench.db'}"
    start = time.perf_counter()
    build_database(db_url, args.hwnasbench)
    with latency_service(db_url, args.workdir / "service.log") if not args.local else nullcontext() as url:
        print(f"latency tables from {url or db_url}", flush=True)
        name, _ = run_sweeps(one_shot, db_url, url)
        jobs = sweep_jobs(db_url, name)
        jobs += [run_tune(seed, tune_config, args.data, db_url, url) for seed in range(args.seeds)]
    load_after = os.getloadavg()

    summary = summarize(jobs, 30.0, METHODS)
    tune_results = [j["result"] for j in jobs if j["method"] == "tune"]
    summary |= {
        "budget_training_steps": budget,
        "tune_median_trial_steps": statistics.median(r["trial_steps"] for r in tune_results),
        "tune_median_lr": statistics.median(r["hyperparameters"]["lr"] for r in tune_results),
        "tune_median_batch_size": statistics.median(r["hyperparameters"]["batch_size"] for r in tune_results),
        "tune_median_dropout": statistics.median(r["hyperparameters"]["dropout"] for r in tune_results),
        "bench_wall_time_s": time.perf_counter() - start, "loadavg_before": load_before, "loadavg_after": load_after,
    }
    print_methods(summary)
    print(f"\ntune: median {summary['tune_median_trial_steps']} trial steps used of {trials * trial_epoch_steps}; "
          f"median chosen lr {summary['tune_median_lr']:.4f}, batch {summary['tune_median_batch_size']}, dropout "
          f"{summary['tune_median_dropout']:.2f}")
    print(f"benchmark wall time {summary['bench_wall_time_s']:.0f} s; load average (1, 5, 15 min) before "
          f"{', '.join(f'{x:.2f}' for x in load_before)}, after {', '.join(f'{x:.2f}' for x in load_after)}")
    if args.output:
        args.output.write_text(json.dumps({"summary": summary, "jobs": jobs}, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
