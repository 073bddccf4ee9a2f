"""Load test of the latency service against a bare FastAPI endpoint, both on real uvicorn servers.

Builds a SQLite database from the public HW-NAS-Bench tables (raspi4 and edgegpu, fbnet-cifar100, lookup
and flops-linear predictors fitted), starts ``api.main:app`` and a bare FastAPI app whose ``GET /latency``
returns a constant with identical uvicorn settings, and drives both with ``wrk`` (falls back to an
httpx-based async generator when wrk is not installed; the output says which). Rounds alternate between
the two servers and the medians are reported, which evens out the noise of a shared machine. Then it
times one ``POST /architectures/latency/batch`` of 10,000 architecture + split queries, end to end.

    .venv/bin/python bench/api_load.py [--hwnasbench ../shared/hwnasbench] [--duration 10] [--rounds 3]

Targets (issue 5): GET /latency >= 0.8x the bare endpoint's requests/s; the 10,000-query batch < 0.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from pipeline.service import Service

REPO = Path(__file__).resolve().parent.parent
BARE_APP = '''
from fastapi import FastAPI

app = FastAPI()


@app.get("/latency")
async def latency():
    return {"latency_ms": 1.0}
'''
QUERY = "/latency?block=k5_e6&layer=7&device=edgegpu&space=fbnet-cifar100"
SPACE = "fbnet-cifar100"
DEVICES = ("raspi4", "edgegpu")


def build_database(url: str, hwnasbench: Path) -> None:
    """Import HW-NAS-Bench and fit the fast predictors of the two devices of the reference scenario."""
    from db.engine import session_scope
    from predictor import fit_predictors
    from profiler.hwnasbench import import_tables, load_tables

    with session_scope(url) as session:
        import_tables(session, load_tables(hwnasbench), source=str(hwnasbench))
    for device in DEVICES:
        with session_scope(url) as session:
            fit_predictors(session, device=device, space=SPACE, kinds=["lookup", "flops-linear"])


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(url: str, duration: float, connections: int, threads: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(percentiles["50"]), "p99_ms": _ms(percentiles["99"]),
    }


async def _httpx_load(url: str, duration: float, connections: int) -> dict[str, float]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits) as client:
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                (await client.get(url)).raise_for_status()
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed, "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
    }


def load(url: str, args: argparse.Namespace) -> dict[str, float]:
    if shutil.which("wrk"):
        return run_wrk(url, args.duration, args.connections, args.threads)
    return asyncio.run(_httpx_load(url, args.duration, args.connections))


def batch_body(n: int, seed: int) -> dict:
    from spaces import sample_architecture

    rng = random.Random(seed)
    archs = [sample_architecture(SPACE, rng, splits=1).encode() for _ in range(n)]
    return {"archs": archs, "space": SPACE, "head_device": "raspi4", "tail_device": "edgegpu",
            "bandwidth_mbps": 8, "bits": 32}


def time_batch(url: str, body: dict, repeats: int) -> list[float]:
    """Seconds per request, end to end: encode, send, compute, receive and decode 10,000 answers."""
    times = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(repeats):
            start = time.perf_counter()
            response = client.post("/architectures/latency/batch", json=body)
            response.raise_for_status()
            answer = response.json()
            times.append(time.perf_counter() - start)
            if answer["count"] != len(body["archs"]) or len(answer["total_ms"]) != len(body["archs"]):
                raise RuntimeError("the batch answer does not have one entry per architecture")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hwnasbench", type=Path, default=Path(os.environ.get("HWNASBENCH", REPO.parent / "shared"
                                                                              / "hwnasbench")))
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per server (medians reported)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of each server")
    parser.add_argument("--batch", type=int, default=10_000, help="architectures in the batch request")
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="splitnas-api-load-") as tmp:
        directory = Path(tmp)
        url = f"sqlite:///{directory / 'bench.db'}"
        build_database(url, args.hwnasbench)
        (directory / "bare_app.py").write_text(BARE_APP)
        env = {"SPLITNAS_DATABASE_URL": url, "SPLITNAS_API_MAX_BATCH": str(max(args.batch, 10_000)),
               "PYTHONPATH": str(REPO)}
        # both servers with the same uvicorn settings (uvloop, httptools, no access log), up once QUERY answers
        same = {"env": env, "cwd": directory, "health": QUERY, "timeout": 120,
                "uvicorn_args": ("--workers", str(args.workers), "--loop", "uvloop", "--http", "httptools")}
        with (Service(app="api.main:app", log=directory / "api.log", **same) as api,  # type: ignore[arg-type]
              Service(app="bare_app:app", log=directory / "bare.log", **same) as bare):  # type: ignore[arg-type]
            runs: dict[str, list[dict[str, float]]] = {"bare": [], "api": []}
            for _ in range(args.rounds):
                runs["bare"].append(load(bare.url + QUERY, args))
                runs["api"].append(load(api.url + QUERY, args))
            batch_times = time_batch(api.url, batch_body(args.batch, seed=0), args.batch_repeats)

    figures = {
        "generator": f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s" if shutil.which("wrk")
        else f"httpx async, {args.connections} connections, {args.duration:g}s",
        "uvicorn": f"--workers {args.workers} --loop uvloop --http httptools --no-access-log",
        "rounds": args.rounds,
        **{f"{name}_{key}": statistics.median(r[key] for r in results)
           for name, results in runs.items() for key in ("rps", "p50_ms", "p99_ms")},
        "batch_size": args.batch,
        "batch_s_median": statistics.median(batch_times),
        "batch_s_min": min(batch_times),
    }
    figures["ratio"] = figures["api_rps"] / figures["bare_rps"]
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    print(f"load generator: {figures['generator']}; uvicorn {figures['uvicorn']}; median of {args.rounds} rounds")
    print(f"{'endpoint':<34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, label in (("bare", "bare FastAPI constant"), ("api", "GET /latency (api.main:app)")):
        print(f"{label:<34}{figures[f'{name}_rps']:>10.0f}{figures[f'{name}_p50_ms']:>10.2f}"
              f"{figures[f'{name}_p99_ms']:>10.2f}")
    verdict = "meets" if figures["ratio"] >= 0.8 else "MISSES"
    print(f"GET /latency / bare throughput: {figures['ratio']:.2f} ({verdict} the 0.8 target)")
    verdict = "meets" if figures["batch_s_median"] < 0.5 else "MISSES"
    print(f"POST /architectures/latency/batch of {args.batch} arch+split queries: median "
          f"{figures['batch_s_median']:.3f} s, best {figures['batch_s_min']:.3f} s over {args.batch_repeats} "
          f"({verdict} the 0.5 s target)")


if __name__ == "__main__":
    main()
