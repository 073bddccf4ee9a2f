"""End-to-end split inference on one machine: head and tail in two network namespaces over an 8 Mbit/s link.

This CPU plays both devices: it is profiled under ONNX Runtime (the runtime splitnas-edge runs), a lookup
predictor is fitted to it, and one tiny search per pair (the gradient method on a two-device chain whose
split is fixed, splits spread early to late) chooses the architecture; each answer is exported, its tail
served in namespace ``sn-tail`` and its head run in ``sn-head``, joined by a veth pair rate-shaped with
``tc qdisc ... tbf`` to 8 Mbit/s. Per pair it prints the predicted and measured end-to-end p50 and the error
by phase (head compute, transfer, tail compute; encode and decode are not in the prediction).

Needs root and network namespaces (``ip netns``); elsewhere it says so and exits 0.

Usage (reduced run):
  .venv/bin/python bench/e2e_split.py --pairs 4 --requests 20
  .venv/bin/python bench/e2e_split.py --pairs 4 --requests 20 --transport udp --loss 0.2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from db.engine import session_scope
from db.records import E2ERecord
from nas.config import SearchConfig
from nas.data import load_synthetic_data, subset
from nas.export import export_job
from nas.jobs import run_search
from nas.latency_client import LatencyClient
from predictor.facade import fit_predictors
from profiler.runner import BatchWriter, ProfileOptions, profile_device
from profiler.settings import TimingSettings

DEVICE = "bench-cpu"
RUNTIME = "onnxruntime"
SPACE = "fbnet-cifar100"
HEAD_NS, TAIL_NS = "sn-head", "sn-tail"
HEAD_IP, TAIL_IP = "10.77.0.1", "10.77.0.2"
TINY = {"data": "synthetic", "data_limit": 16, "batch_size": 8, "steps_per_epoch": 1, "pretrain_epochs": 1,
        "search_epochs": 1, "retrain_epochs": 1, "predictor": "lookup", "split_eval_batches": 1, "device": "cpu"}


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def namespaces_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces and tc)"
    probe = sh("ip", "netns", "add", "sn-probe", check=False)
    if probe.returncode != 0:
        return f"ip netns does not work here: {probe.stderr.strip()}"
    sh("ip", "netns", "del", "sn-probe", check=False)
    return None


def make_link(rate: str) -> None:
    """Two namespaces joined by a veth pair, each side shaped to ``rate`` by a token bucket."""
    drop_link()
    sh("ip", "netns", "add", HEAD_NS)
    sh("ip", "netns", "add", TAIL_NS)
    sh("ip", "link", "add", "sn-veth-h", "netns", HEAD_NS, "type", "veth", "peer", "name", "sn-veth-t",
       "netns", TAIL_NS)
    for ns, dev, ip in ((HEAD_NS, "sn-veth-h", HEAD_IP), (TAIL_NS, "sn-veth-t", TAIL_IP)):
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        # a queue of 400 ms holds a whole payload burst, so UDP loses only what the sender drops
        sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate,
           "burst", "32kbit", "latency", "400ms")


def drop_link() -> None:
    for ns in (HEAD_NS, TAIL_NS):
        sh("ip", "netns", "del", ns, check=False)


def profile_cpu(url: str, min_run_time: float) -> None:
    options = ProfileOptions(device=DEVICE, space=SPACE, runtime=RUNTIME, quiet_below=None,
                             timing=TimingSettings(min_run_time=min_run_time))
    profile_device(options, BatchWriter(url), progress=False)
    with session_scope(url) as session:
        fit_predictors(session, device=DEVICE, space=SPACE, kinds=["lookup"], evaluate=False, runtime=RUNTIME)


def search_pair(url: str, split: int, seed: int, directory: Path, bits: int) -> Path:
    topology = {"name": "pair", "topology": "chain",
                "devices": [{"name": "head", "device": DEVICE}, {"name": "tail", "device": DEVICE}],
                "links": [{"from": "head", "to": "tail", "bandwidth_mbps": 8, "bits": bits}],
                "assignment": {"splits": [split]}}
    config = SearchConfig(method="gradient", space=SPACE, topology=topology, runtime=RUNTIME, seed=seed, t_th=1000,
                          **TINY)
    with LatencyClient(db_url=url, predictor="lookup", runtime=RUNTIME) as client:
        job = run_search(config, db_url=url, client=client, data=subset(load_synthetic_data(), 16),
                         weights=directory / f"pair{seed}.weights.pt")
    export_job(job, directory / f"pair{seed}")
    return directory / f"pair{seed}"


def measure(export: Path, requests: int, transport: str, loss: float) -> dict[str, Any]:
    server = subprocess.Popen(["ip", "netns", "exec", TAIL_NS, sys.executable, "-m", "edge", "serve", str(export),
                               "--host", TAIL_IP, "--port", "9000", "--transport", transport],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        server.stdout.readline()
        done = sh("ip", "netns", "exec", HEAD_NS, sys.executable, "-m", "edge", "run", str(export), "--server",
                  f"{TAIL_IP}:9000", "--requests", str(requests), "--transport", transport, "--loss", str(loss),
                  "--json", check=False)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        return json.loads(done.stdout)  # type: ignore[no-any-return]
    finally:
        server.terminate()
        server.wait(timeout=10)


def row(record: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    link = manifest["links"][0]
    head, tail = record["parts"]
    b = record["breakdown"]
    return {
        "split": record["splits"][0], "payload_kB": round(record["payload_bytes"] / 1e3, 1),
        "mbps": round(record["throughput_mbps"], 2), "predicted_ms": round(record["predicted_ms"], 1),
        "p50_ms": round(record["p50_ms"], 1), "p90_ms": round(record["p90_ms"], 1),
        "error_pct": round(E2ERecord.model_validate(record).error_pct, 1),
        "head_err_ms": round(b["head"] - head["predicted_ms"], 2),
        "transfer_err_ms": round(b["transfer"] - link["predicted_ms"], 2),
        "tail_err_ms": round(b["tail"] - tail["predicted_ms"], 2),
        "codec_ms": round(b["encode"] + b["decode"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=8, help="(architecture, split) pairs, splits early to late")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per pair")
    parser.add_argument("--transport", default="tcp", choices=["tcp", "udp"])
    parser.add_argument("--loss", type=float, default=0.0, help="emulated loss injected by the sender (udp)")
    parser.add_argument("--bits", type=int, default=32, choices=[8, 16, 32], help="bits per element on the link")
    parser.add_argument("--rate", default="8mbit", help="tbf rate of the link")
    parser.add_argument("--min-run-time", type=float, default=0.05, help="profiling time per entry (s)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if (missing := namespaces_missing()) is not None:
        print(f"skipped: {missing}")
        return
    torch.set_num_threads(1)
    load = {"before": [round(x, 2) for x in os.getloadavg()]}
    splits = [round(1 + i * 19 / max(args.pairs - 1, 1)) for i in range(args.pairs)]
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        url = f"sqlite:///{directory / 'e2e.db'}"
        os.environ["SPLITNAS_DATA_DIR"] = str(directory / "data")
        profile_cpu(url, args.min_run_time)
        profiled_s = time.perf_counter() - started
        make_link(args.rate)
        try:
            for seed, split in enumerate(splits):
                export = search_pair(url, split, seed, directory, args.bits)
                record = measure(export, args.requests, args.transport, args.loss)
                rows.append(row(record, json.loads((export / "manifest.json").read_text())))
                if not args.json:
                    print(rows[-1], flush=True)
        finally:
            drop_link()
    load["after"] = [round(x, 2) for x in os.getloadavg()]
    summary = {"rows": rows, "load_average": load, "profile_s": round(profiled_s, 1),
               "bench_s": round(time.perf_counter() - started, 1), "settings": vars(args)}
    print(json.dumps(summary, indent=1) if args.json else
          f"profile {summary['profile_s']} s, whole bench {summary['bench_s']} s, load {load}")


if __name__ == "__main__":
    main()
