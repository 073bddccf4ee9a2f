"""Independent wall-clock latencies of given architectures, timed as a user times a deployed network.

Nothing of the profiler is used: each network (or, for ``ARCH@k``, its head up to split point k) is
built once from the space, put in eval mode, and called again and again under ``torch.inference_mode``
on a stream of batch-1 inputs of the space's input size (the shape the profiler's model entries are
timed on), by a plain ``torch.utils.benchmark.Timer`` with one thread (``blocked_autorange``). Every
network is timed in ``--rounds`` rounds, in a shuffled order each round, so that a slow minute of a
shared machine does not fall on one network only; its latency is the median of its round medians.
The machine's load average before and after is written with the figures.

Usage: .venv/bin/python bench/wallclock_check.py --space fbnet-cifar100 --archs-file archs.txt --out wall.json
       [--rounds 3] [--min-run-time 0.5] [--threads 1] [ARCH ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.utils.benchmark as benchmark
from rich.console import Console
from rich.progress import Progress
from torch import nn

from spaces import Architecture, SpaceError, get_space
from spaces.modules import build_network, build_parts

STREAM = 16  # distinct inputs the network is called on in turn


def network(arch: Architecture) -> nn.Module:
    """The whole network, or with one split point its head (the first part)."""
    module = build_parts(arch)[0] if arch.splits else build_network(arch)
    return module.eval()


def time_once(module: nn.Module, inputs: list[torch.Tensor], *, threads: int, min_run_time: float) -> float:
    """Median milliseconds per call of ``module`` over ``inputs`` in turn, by ``Timer.blocked_autorange``."""
    timer = benchmark.Timer(
        stmt="module(next(stream))", globals={"module": module, "stream": itertools.cycle(inputs)},
        num_threads=threads,
    )
    with torch.inference_mode():
        return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def time_architectures(
    space_name: str, archs: list[str], *, rounds: int, min_run_time: float, threads: int, seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Latency (median of round medians, ms) of every architecture string of ``archs``, and the setting."""
    space = get_space(space_name)
    parsed = {text: Architecture.parse(text, space) for text in dict.fromkeys(archs)}
    torch.manual_seed(seed)
    modules = {text: network(arch) for text, arch in parsed.items()}
    inputs = [torch.randn(1, 3, space.input_size, space.input_size) for _ in range(STREAM)]
    medians: dict[str, list[float]] = {text: [] for text in parsed}
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    with Progress(console=Console(stderr=True), disable=not progress) as bar:  # stdout stays the caller's
        task = bar.add_task("wall-clock timing", total=rounds * len(parsed))
        for number in range(rounds):
            order = list(parsed)
            random.Random(f"{seed}/{number}").shuffle(order)
            for text in order:
                medians[text].append(time_once(modules[text], inputs, threads=threads, min_run_time=min_run_time))
                bar.advance(task)
    return {
        "space": space_name, "torch": torch.__version__, "threads": threads, "rounds": rounds,
        "min_run_time": min_run_time, "batch": 1, "input_size": space.input_size,
        "loadavg_before": load_before, "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(time.perf_counter() - started, 3),
        "latencies": {
            text: {"median_ms": statistics.median(values), "round_medians_ms": values}
            for text, values in medians.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archs", nargs="*", help="architecture strings (ARCH or ARCH@k for the head)")
    parser.add_argument("--space", default="fbnet-cifar100")
    parser.add_argument("--archs-file", type=Path, help="more architecture strings, one a line")
    parser.add_argument("--out", type=Path, required=True, help="JSON file the latencies are written to")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all networks (median of the rounds)")
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds of timing per network and round")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, inputs and round orders")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args()
    archs = list(args.archs)
    if args.archs_file is not None:
        archs += [line.strip() for line in args.archs_file.read_text().splitlines() if line.strip()]
    if not archs or args.rounds < 1 or args.min_run_time <= 0 or args.threads < 1:
        parser.error("give at least one architecture, --rounds >= 1, --min-run-time > 0 and --threads >= 1")
    try:
        result = time_architectures(
            args.space, archs, rounds=args.rounds, min_run_time=args.min_run_time, threads=args.threads,
            seed=args.seed, progress=not args.no_progress,
        )
    except SpaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
