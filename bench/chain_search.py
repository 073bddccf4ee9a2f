"""Gradient search on a 4-device chain against the Neurosurgeon baseline (issue 7), on the digits data.

Chain UE -> SBS -> MBS -> cloud over 25 / 50 / 200 Mbit/s links, float32 payloads
(``examples/topologies/chain4.yaml``). Device latencies for fbnet-cifar100 are HW-NAS-Bench's imported
measurements: UE = raspi4 (Raspberry Pi 4), MBS = edgegpu (Jetson TX2); SBS and cloud are *derived*
devices, the file's ``latency_factor`` times a measured table (SBS laptop-class = 0.25 x raspi4,
cloud server-class = 0.2 x edgegpu), and are reported as derived. For an mbconv space, give a topology
whose devices were profiled here (``profiler run --device D --space mbconv-cifar100``, ``predictor fit``).

For each latency constraint T it runs ``nas search --method gradient`` (as a stored job) with the split
points searched and, unless ``--variants searched``, with the file's fixed split points, and reports the
answer's predicted completion latency against T and its test accuracy after re-training. The baseline
is Neurosurgeon's: a fixed MobileNetV2-like architecture (k3_e6 at every layer; k3_e6_res in mbconv
spaces where the shortcut fits) with every assignment of the split points along the chain enumerated,
the fastest one taken, and the same re-training budget.

    .venv/bin/python bench/chain_search.py [--constraints 12,20,40] [--epochs 5,25,25] [--device auto]

Budgets are far below a real search; accuracies are those of short training on 1,077 digits images. On a
2-core CPU a batch-64 supernet step takes seconds: run it where CUDA is (6 min on an H100).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
HWNASBENCH_DEVICES = ("raspi4", "edgegpu")


def ensure_tables(db_url: str, space: str, devices: set[str], hwnasbench: Path) -> None:
    """Import HW-NAS-Bench and fit lookup tables for the devices it has that the database lacks."""
    from db import queries
    from db.engine import session_scope
    from predictor import fit_predictors
    from profiler.hwnasbench import import_tables, load_tables

    with session_scope(db_url) as session:
        known = set(queries.device_names(session))
    wanted = (devices & set(HWNASBENCH_DEVICES)) - known
    if wanted and space.startswith("fbnet"):
        with session_scope(db_url) as session:
            import_tables(session, load_tables(hwnasbench), source=str(hwnasbench))
        for device in sorted(wanted):
            with session_scope(db_url) as session:
                fit_predictors(session, device=device, space=space, kinds=["lookup"], evaluate=False)


def mobilenet_v2_like(space_name: str) -> Any:
    """k3_e6 at every layer, with the residual variant where an mbconv layer allows the shortcut."""
    from spaces import Architecture, get_space

    space = get_space(space_name)
    blocks = tuple("k3_e6_res" if "k3_e6_res" in layer.block_names else "k3_e6" for layer in space.layers)
    return Architecture(space, blocks)


def neurosurgeon(latency: Any, arch: Any) -> tuple[tuple[int, ...], float, int]:
    """Linear search of the split points of a fixed architecture: the fastest assignment, and how many were tried."""
    n, m = len(arch.blocks), latency.topology.n_splits
    assignments = itertools.combinations(range(n + 1), m)
    scores = [(latency.completion(arch.with_splits(*ks)).total_ms, ks) for ks in assignments]
    best_ms, best = min(scores)
    return best, best_ms, len(scores)


def train_fixed(config: Any, data: Any, latency: Any, arch: Any) -> float:
    """Test accuracy of ``arch`` after the re-training stage of the searches (lossless links)."""
    from nas.jobs import resolve_device
    from nas.methods import SearchContext
    from nas.training import retrain

    ctx = SearchContext(config, data, latency, resolve_device(config.device))
    return retrain(ctx, arch.with_splits(arch.splits[0]), drop=0.0)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="fbnet-cifar100")
    parser.add_argument("--topology", type=Path, default=REPO / "examples" / "topologies" / "chain4.yaml")
    parser.add_argument("--hwnasbench", type=Path, default=REPO.parent / "shared" / "hwnasbench")
    parser.add_argument("--workdir", type=Path, default=REPO / "reports" / "bench" / "chain_search")
    parser.add_argument("--db", help="database with the device tables and the jobs (default: <workdir>/bench.db)")
    parser.add_argument("--constraints", default="12,20,40", help="latency constraints T in ms")
    parser.add_argument("--epochs", default="5,25,25", help="WARMUP,SEARCH,RETRAIN epochs")
    parser.add_argument("--steps-per-epoch", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--loss", default="squared", choices=("squared", "hinge", "log"))
    parser.add_argument("--latency-weight", type=float, default=None)
    parser.add_argument("--arch-lr", type=float, default=0.02, help="above ProxylessNAS's 6e-3: short runs")
    parser.add_argument("--variants", default="searched,fixed", help="split points: searched and/or fixed")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from nas.config import SearchConfig
    from nas.data import load_data
    from nas.jobs import run_search
    from nas.latency import TopologyLatency
    from nas.latency_client import LatencyClient
    from predictor.topology_file import parse_topology, read_topology

    args.workdir.mkdir(parents=True, exist_ok=True)
    db_url = args.db or f"sqlite:///{args.workdir / 'bench.db'}"
    topology_data = read_topology(args.topology)
    topology = parse_topology(topology_data, source=args.topology.name)
    ensure_tables(db_url, args.space, {d.device for d in topology.devices}, args.hwnasbench)
    warmup, search_epochs, retrain_epochs = (int(x) for x in args.epochs.split(","))
    constraints = [float(x) for x in args.constraints.split(",")]
    variants = [v.strip() for v in args.variants.split(",")]
    data = load_data(args.data)

    def config(t_th: float, search_splits: bool) -> SearchConfig:
        return SearchConfig(
            method="gradient", space=args.space, topology=topology_data, t_th=t_th, data=args.data,
            pretrain_epochs=warmup, search_epochs=search_epochs, retrain_epochs=retrain_epochs,
            steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size, seed=args.seed, device=args.device,
            gradient={"search_splits": search_splits, "latency_loss": args.loss,
                      "latency_weight": args.latency_weight, "arch_lr": args.arch_lr},
        )

    rows: list[dict[str, Any]] = []
    with LatencyClient(db_url=db_url) as client:
        latency = TopologyLatency(client, space=args.space, topology=topology)
        print(f"chain: {latency.topology.describe()}; devices: {'; '.join(d.label for d in latency.topology.devices)}")
        print(f"latency tables: {', '.join(f'{n}: {lut.predictor}' for n, lut in latency.luts.items())}")

        baseline = mobilenet_v2_like(args.space)
        start = time.perf_counter()
        splits, best_ms, tried = neurosurgeon(latency, baseline)
        baseline = baseline.with_splits(*splits)
        accuracy = train_fixed(config(constraints[0], False), data, latency, baseline)
        rows.append({"method": "neurosurgeon", "constraint_ms": None, "architecture": baseline.encode(),
                     "splits": list(splits), "latency_ms": best_ms, "accuracy": accuracy, "assignments_tried": tried,
                     "wall_s": time.perf_counter() - start})
        for t_th, variant in itertools.product(constraints, variants):
            job = run_search(config(t_th, variant == "searched"), db_url=db_url, client=client,
                             data=data).model_dump(mode="json", by_alias=True)
            result = job["result"]
            rows.append({"method": f"gradient ({variant} splits)", "constraint_ms": t_th, "uid": job["uid"],
                         "architecture": result["architecture"], "splits": result["splits"],
                         "latency_ms": result["latency"]["total_ms"], "expected_ms": result["expected_ms"],
                         "accuracy": result["accuracy_clean"], "convergence": result["convergence"],
                         "wall_s": result["wall_time_s"]})
            print_row(rows[-1])

    print()
    print(f"{'method':<26} {'T ms':>6} {'latency ms':>10} {'meets':>5} {'accuracy':>8} {'splits':>14}  architecture")
    for row in rows:
        targets = constraints if row["constraint_ms"] is None else [row["constraint_ms"]]
        for t_th in targets:
            meets = "yes" if row["latency_ms"] <= t_th else "no"
            print(f"{row['method']:<26} {t_th:>6g} {row['latency_ms']:>10.2f} {meets:>5} {row['accuracy']:>8.3f} "
                  f"{','.join(map(str, row['splits'])):>14}  {row['architecture']}")
    summary = {
        "space": args.space, "topology": topology_data, "constraints_ms": constraints, "epochs": args.epochs,
        "batch_size": args.batch_size, "loss": args.loss, "data": args.data, "device": args.device,
        "torch": torch.__version__, "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "rows": rows,
    }
    out = args.workdir / "summary.json"
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\nwrote {out}; jobs in {db_url} (nas report --db {db_url})")


def print_row(row: dict[str, Any]) -> None:
    print(f"  {row['method']} T={row['constraint_ms']:g} ms: latency {row['latency_ms']:.2f} ms "
          f"(E[T] {row['expected_ms']:.2f}), accuracy {row['accuracy']:.3f}, splits {row['splits']}, "
          f"{row['wall_s']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
