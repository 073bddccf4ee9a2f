"""End-to-end split inference on one machine: head and tail in two network namespaces over an 8 Mbit/s link.

This CPU plays both devices: it is profiled under ONNX Runtime (the runtime splitnas-edge runs), with
``MODELS`` sampled networks whole and as heads (the model-level correction, and the LUT's ``wait_ms`` and
``wait_share``: what the tail adds, having idled until its payload arrived), a lookup predictor is fitted to it, and the
(architecture, split) pairs, splits spread early to late, are of two kinds:
``--searches`` of them are the answers of tiny searches (the gradient method on a two-device chain whose
split is fixed), the others are **sampled**: a seeded uniformly random architecture of the space
(``spaces.sample_architecture``) cut at the pair's split, with **fresh random-init weights** (a latency
measurement needs no trained weights: the work of a part does not depend on them), predicted by the same
head-tail latency model (DESIGN.md 3) a split search uses and exported as a searched answer is
(``nas.export.export_network``). Each pair's tail is served in namespace ``sn-tail`` and its head run in
``sn-head``, joined by a veth pair rate-shaped with ``tc qdisc ... tbf`` to 8 Mbit/s. Per pair it prints the
predicted and measured end-to-end p50 and the error by phase (head compute, transfer, tail compute; encode
and decode are not in the prediction).

The token bucket's burst is one Ethernet frame (1600 bytes): a bucket lets ``burst`` bytes through at line
rate after an idle gap, and the request-reply traffic here is idle between requests, so a 32 kbit (4 kB)
burst carried the first 4 kB of every payload unshaped (an 11.8 kB payload arrived ~3 ms, ~25 %, early).
With one frame the link runs at 8 Mbit/s for payloads of any size except for the first frame of each
payload (<= 1.5 ms early, not in the prediction), and the frames' TCP/IP and Ethernet headers (66 bytes per
1448-byte segment) go the other way: the prediction takes the link at its payload throughput, 7.65 of the 8
Mbit/s (``edge.framing.payload_mbps``; BENCHMARKS.md, "End-to-end split inference").

``--accuracy`` adds the accuracy of split networks over the bench's transport and emulated loss (``--loss``:
the sender drops each UDP datagram with that probability before sending it, since this kernel has no
netem): one tiny HWNAS search on digits, whose answer (architecture and split) is re-trained twice from the
same seed, with dropout at the split (``hwnas``) and without (``hwnas-nodropout``), so the two networks
differ in that only. Each is exported, every test image is sent through the real link ``--accuracy-passes``
times (3; one pass of the 360 digits images has a standard error near 2 points, the target's size), and the
top-1 accuracy of the answers that came back is printed beside the accuracy the search predicted at p = ``--loss``
(``accuracy_at_loss``: element-wise dropout at the split on the same test images).

Needs root and network namespaces (``ip netns``); elsewhere it says so and exits 0.

Usage (reduced runs):
  .venv/bin/python bench/e2e_split.py --pairs 8 --requests 30
  .venv/bin/python bench/e2e_split.py --pairs 8 --requests 30 --transport udp --loss 0.2 --accuracy
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from db.engine import session_scope
from db.records import E2ERecord
from edge.framing import payload_mbps
from nas.config import SearchConfig
from nas.data import ImageData, load_data, load_synthetic_data, subset
from nas.export import export_job, export_network, split_placement
from nas.jobs import run_search
from nas.latency import SplitLatencyModel
from nas.latency_client import LatencyClient
from nas.results import SplitBreakdown, SplitResult
from nas.supernet import SplitNetwork
from predictor.facade import fit_predictors
from predictor.latency import Link
from profiler.runner import BatchWriter, ProfileOptions, profile_device
from profiler.settings import TimingSettings
from spaces import sample_architecture

DEVICE = "bench-cpu"
RUNTIME = "onnxruntime"
SPACE = "fbnet-cifar100"
HEAD_NS, TAIL_NS = "sn-head", "sn-tail"
HEAD_IP, TAIL_IP = "10.77.0.1", "10.77.0.2"
LINE_MBPS = 8  # the line rate tc shapes; the prediction takes the payload's share (edge.framing.payload_mbps)
MODELS = 8  # sampled networks profiled whole and as heads: the model-level correction and the wait after a link
BURST = "1600b"  # one Ethernet frame (1514 bytes) and a little: the smallest bucket that passes every frame
TINY: dict[str, Any] = {"data": "synthetic", "data_limit": 16, "batch_size": 8, "steps_per_epoch": 1,
                        "pretrain_epochs": 1, "search_epochs": 1, "retrain_epochs": 1, "predictor": "lookup",
                        "split_eval_batches": 1, "device": "cpu"}
# the accuracy pair: a short search and re-training on digits (the demo's budget, which trains them to ~0.8)
ACCURACY: dict[str, Any] = {"data": "digits", "batch_size": 16, "steps_per_epoch": 25, "pretrain_epochs": 2,
                            "search_epochs": 2, "retrain_epochs": 6, "predictor": "lookup", "split_eval_batches": 2,
                            "device": "cpu"}


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


def make_link(rate: str, burst: str = BURST) -> None:
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
           "burst", burst, "latency", "400ms")


def drop_link() -> None:
    for ns in (HEAD_NS, TAIL_NS):
        sh("ip", "netns", "del", ns, check=False)


def profile_cpu(url: str, min_run_time: float) -> None:
    options = ProfileOptions(device=DEVICE, space=SPACE, runtime=RUNTIME, quiet_below=None, models=MODELS,
                             timing=TimingSettings(min_run_time=min_run_time))
    profile_device(options, BatchWriter(url), progress=False)
    with session_scope(url) as session:
        fit_predictors(session, device=DEVICE, space=SPACE, kinds=["lookup"], evaluate=False, runtime=RUNTIME)


def pair_plan(pairs: int, searches: int) -> list[tuple[int, bool]]:
    """(split, searched) of every pair: splits spread from 1 to 20, the searched ones spread among them."""
    splits = [round(1 + i * 19 / max(pairs - 1, 1)) for i in range(pairs)]
    searched = {round(i * (pairs - 1) / max(searches - 1, 1)) for i in range(min(searches, pairs))}
    return [(split, i in searched) for i, split in enumerate(splits)]


def sampled_pair(client: LatencyClient, split: int, seed: int, out: Path, *, bits: int, num_classes: int,
                 devices: tuple[str, str] = (DEVICE, DEVICE), mbps: float = LINE_MBPS) -> Path:
    """A seeded random architecture cut at ``split``, with fresh weights, exported with its predicted latency."""
    arch = sample_architecture(SPACE, random.Random(seed)).with_splits(split)
    model = SplitLatencyModel(client, space=SPACE, head_device=devices[0], tail_device=devices[1],
                              link=Link(mbps, bits))
    plan = split_placement(SplitBreakdown.model_validate(model.breakdown(arch)), mbps)
    torch.manual_seed(seed)
    network = SplitNetwork(arch, num_classes, model.codecs)
    runtimes = client.runtimes(SPACE)
    export_network(network, plan, out, job=f"sampled-{seed}", method="sampled",
                   runtimes=[runtimes.get(device, "torch") for device in devices])
    return out


def search_pair(url: str, split: int, seed: int, directory: Path, bits: int, mbps: float) -> Path:
    topology = {"name": "pair", "topology": "chain",
                "devices": [{"name": "head", "device": DEVICE}, {"name": "tail", "device": DEVICE}],
                "links": [{"from": "head", "to": "tail", "bandwidth_mbps": mbps, "bits": bits}],
                "assignment": {"splits": [split]}}
    config = SearchConfig(method="gradient", space=SPACE, topology=topology, runtime=RUNTIME, seed=seed, t_th=1000,
                          **TINY)
    with LatencyClient(db_url=url, predictor="lookup", runtime=RUNTIME) as client:
        job = run_search(config, db_url=url, client=client, data=subset(load_synthetic_data(), 16),
                         weights=directory / f"pair{seed}.weights.pt")
    export_job(job, directory / f"pair{seed}")
    return directory / f"pair{seed}"


def test_images(data: ImageData) -> tuple[np.ndarray, np.ndarray]:
    """Every test image, normalized as in training and evaluation, with its label."""
    batches = list(data.batches("test", 256))
    return (torch.cat([x for x, _ in batches]).numpy(), torch.cat([y for _, y in batches]).numpy())


def accuracy_pairs(url: str, directory: Path, *, bits: Literal[8, 16, 32], loss: float, seed: int, transport: str,
                   passes: int = 1) -> list[dict[str, Any]]:
    """One HWNAS answer re-trained with and without dropout at its split, each run ``passes`` times on every test
    image (each pass its own datagram losses)."""
    data = load_data("digits")
    images, labels = test_images(data)
    inputs = directory / "test-images.npz"
    np.savez(inputs, images=images, labels=labels)
    rows = []
    for method in ("hwnas", "hwnas-nodropout"):
        config = SearchConfig(method=method, space=SPACE, head_device=DEVICE, tail_device=DEVICE, runtime=RUNTIME,
                              bits=bits, loss=loss, seed=seed, t_th=1000,
                              supernet_cache=str(directory / "accuracy-supernet.pt"), **ACCURACY)
        with LatencyClient(db_url=url, predictor="lookup", runtime=RUNTIME) as client:
            job = run_search(config, db_url=url, client=client, data=data,
                             weights=directory / f"{method}.weights.pt")
        export = directory / method
        export_job(job, export)
        answers = directory / f"{method}.answers.npy"
        record = measure(export, passes * len(labels), transport, loss, "--inputs", str(inputs),
                         "--answers", str(answers))
        correct = (np.load(answers) == np.tile(labels, passes)).reshape(passes, len(labels)).mean(axis=1)
        measured = float(correct.mean())
        result = job.result
        assert isinstance(result, SplitResult)
        rows.append({
            "method": method, "retrain_dropout": result.retrain_dropout, "architecture": result.architecture,
            "payload_kB": round(record["payload_bytes"] / 1e3, 1), "images": len(labels), "passes": passes,
            "predicted_acc": round(result.accuracy_at_loss, 4), "clean_acc": round(result.accuracy_clean, 4),
            "measured_acc": round(measured, 4), "measured_acc_per_pass": [round(float(c), 4) for c in correct],
            "error_points": round(100 * (measured - result.accuracy_at_loss), 1),
            "p50_ms": round(record["p50_ms"], 1),
        })
    return rows


def measure(export: Path, requests: int, transport: str, loss: float, *extra: str) -> dict[str, Any]:
    server = subprocess.Popen(["ip", "netns", "exec", TAIL_NS, sys.executable, "-m", "edge", "serve", str(export),
                               "--host", TAIL_IP, "--port", "9000", "--transport", transport],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        server.stdout.readline()
        done = sh("ip", "netns", "exec", HEAD_NS, sys.executable, "-m", "edge", "run", str(export), "--server",
                  f"{TAIL_IP}:9000", "--requests", str(requests), "--transport", transport, "--loss", str(loss),
                  "--json", *extra, check=False)
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
        "kind": "sampled" if manifest["method"] == "sampled" else "searched", "split": record["splits"][0],
        "payload_kB": round(record["payload_bytes"] / 1e3, 1),
        "mbps": round(record["throughput_mbps"], 2), "predicted_ms": round(record["predicted_ms"], 1),
        "p50_ms": round(record["p50_ms"], 1), "p90_ms": round(record["p90_ms"], 1),
        "error_pct": round(E2ERecord.model_validate(record).error_pct, 1),
        "head_ms": round(b["head"], 2), "head_predicted_ms": round(head["predicted_ms"], 2),
        "tail_ms": round(b["tail"], 2), "tail_predicted_ms": round(tail["predicted_ms"], 2),
        "head_err_ms": round(b["head"] - head["predicted_ms"], 2),
        "transfer_err_ms": round(b["transfer"] - link["predicted_ms"], 2),
        "tail_err_ms": round(b["tail"] - tail["predicted_ms"], 2),
        "codec_ms": round(b["encode"] + b["decode"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=30, help="(architecture, split) pairs, splits early to late")
    parser.add_argument("--searches", type=int, default=6,
                        help="pairs that are searched answers; the others are sampled architectures")
    parser.add_argument("--requests", type=int, default=100, help="timed requests per pair")
    parser.add_argument("--transport", default="tcp", choices=["tcp", "udp"])
    parser.add_argument("--loss", type=float, default=0.0, help="emulated loss injected by the sender (udp)")
    parser.add_argument("--bits", type=int, default=32, choices=[8, 16, 32], help="bits per element on the link")
    parser.add_argument("--mbps", type=float, default=LINE_MBPS, help="line rate of the link (tbf), Mbit/s")
    parser.add_argument("--burst", default=BURST, help="tbf burst of the link (32kbit: the first 4 kB unshaped)")
    parser.add_argument("--min-run-time", type=float, default=0.05, help="profiling time per entry (s)")
    parser.add_argument("--accuracy", action="store_true",
                        help="also the accuracy over the link of a network trained with and without dropout")
    parser.add_argument("--accuracy-passes", type=int, default=3,
                        help="times every test image is sent (each pass its own losses; the accuracy is their mean)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if (missing := namespaces_missing()) is not None:
        print(f"skipped: {missing}")
        return
    torch.set_num_threads(1)
    load = {"before": [round(x, 2) for x in os.getloadavg()]}
    rows, accuracy_rows = [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        url = f"sqlite:///{directory / 'e2e.db'}"
        os.environ["SPLITNAS_DATA_DIR"] = str(directory / "data")
        profile_cpu(url, args.min_run_time)
        profiled_s = time.perf_counter() - started
        make_link(f"{args.mbps:g}mbit", args.burst)
        mbps = payload_mbps(args.mbps, args.transport, args.bits)
        try:
            num_classes = load_synthetic_data().num_classes  # the searched pairs' data: the same classifier
            with LatencyClient(db_url=url, predictor="lookup", runtime=RUNTIME) as client:
                for seed, (split, searched) in enumerate(pair_plan(args.pairs, args.searches)):
                    export = (search_pair(url, split, seed, directory, args.bits, mbps) if searched else
                              sampled_pair(client, split, seed, directory / f"sampled{seed}", bits=args.bits,
                                           num_classes=num_classes, mbps=mbps))
                    record = measure(export, args.requests, args.transport, args.loss)
                    rows.append(row(record, json.loads((export / "manifest.json").read_text())))
                    if not args.json:
                        print(rows[-1], flush=True)
            if args.accuracy:
                accuracy_rows = accuracy_pairs(url, directory, bits=args.bits, loss=args.loss, seed=0,
                                               transport=args.transport, passes=args.accuracy_passes)
                if not args.json:
                    for accuracy_row in accuracy_rows:
                        print(accuracy_row, flush=True)
        finally:
            drop_link()
    load["after"] = [round(x, 2) for x in os.getloadavg()]
    summary = {"rows": rows, "accuracy": accuracy_rows, "load_average": load, "profile_s": round(profiled_s, 1),
               "bench_s": round(time.perf_counter() - started, 1), "settings": vars(args)}
    print(json.dumps(summary, indent=1) if args.json else
          f"profile {summary['profile_s']} s, whole bench {summary['bench_s']} s, load {load}")


if __name__ == "__main__":
    main()
