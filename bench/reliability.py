"""Reliability of the service on one backend: uploads during a refit, first starts, schema fuzzing, kill -9.

On fresh databases of the backend of ``--db`` (SQLite files in a temporary directory, or databases
created and dropped on the PostgreSQL server of a ``postgresql+psycopg://`` URL), with real uvicorn
servers (``pipeline.service.Service``) and synthetic devices (``tests.utils.api_data``):

1. uploads during a refit: agents post batches to ``POST /measurements`` while ``POST /predictors/fit``
   refits every predictor kind of a device; every upload must be stored (201), none wait for the refit;
2. first starts: ``--starts`` servers started together on a brand-new database, ``--trials`` times;
   every one must migrate or wait for the one that does, and answer ``/healthz``;
3. schema fuzzing: ``tests/api/test_api_fuzz.py`` on this backend (pytest, its junit properties);
4. crash test: an agent's spool of ``--runs`` runs (a whole space each, in batches of ``--rows``) is
   uploaded (``profiler.upload.Uploader``, as ``profiler upload`` does) while the server is killed with
   SIGKILL ``--kills`` times and restarted; every row the agent produced must be stored exactly once.

Targets (issue 13): 0 upload errors, 0 failed starts, 0 server errors, 0 rows lost, 0 duplicated.
Run from the repository root (it imports the test utilities):

    .venv/bin/python -m bench.reliability [--db postgresql+psycopg://user@/postgres?host=/tmp/pg] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from db import queries, session_scope
from db.records import MeasurementBatch
from pipeline.service import Service, ServiceError
from profiler.load import LoadProbe
from profiler.upload import Spool, Uploader
from tests.utils.api_data import create_token, device_records, measurement_batch, upload
from tests.utils.databases import POSTGRES_URL_ENV, DatabaseBackend, PostgresBackend, SQLiteBackend
from tests.utils.factories import make_run

REPO = Path(__file__).resolve().parent.parent
FUZZ_TEST = "tests/api/test_api_fuzz.py"
ALL_KINDS = ["lookup", "flops-linear", "flops-linear-intercept", "gbdt"]
console = Console(stderr=True)


def backend_for(db: str, directory: Path) -> DatabaseBackend:
    """SQLite files in ``directory``, or databases on the PostgreSQL server of ``db``."""
    if db.startswith("postgresql"):
        backend = PostgresBackend(db)
        backend.ping()
        return backend
    if not db.startswith("sqlite"):
        raise SystemExit(f"--db: expected a sqlite:// or postgresql+psycopg:// URL, got {db!r}")
    return SQLiteBackend(directory)


def machine_load() -> str:
    state = LoadProbe().read()
    averages = " / ".join(f"{v:.2f}" for v in state.get("loadavg", ())) or "unknown"
    return f"load average {averages} (1/5/15 min) on {state.get('cores', '?')} cores"


def uploads_during_refit(backend: DatabaseBackend, directory: Path, *, agents: int) -> dict[str, Any]:
    """``agents`` threads post batches of a new device while all predictor kinds of another are refitted."""
    url = backend.create()
    try:
        with Service(url, log=directory / "refit.log") as service, httpx.Client(base_url=service.url,
                                                                                  timeout=120) as client:
            auth = {"Authorization": f"Bearer {create_token(url, 'refit-bench')}"}
            upload(client, "refitted", device_records("refitted", gflops=2.0), auth)
            started = client.post("/predictors/fit", json={"device": "refitted", "kinds": ALL_KINDS}, headers=auth)
            started.raise_for_status()
            start, done = time.monotonic(), threading.Event()
            records = device_records("uploader", gflops=4.0)

            def agent(n: int) -> Counter[str]:
                """Batches of 20 rows of new runs until the refit ends; the answers' statuses."""
                rng, statuses = random.Random(n), Counter[str]()
                while not done.is_set():
                    batch = measurement_batch("uploader", rng.sample(records, 20))
                    try:
                        statuses[str(client.post("/measurements", json=batch, headers=auth).status_code)] += 1
                    except httpx.HTTPError as exc:
                        statuses[type(exc).__name__] += 1
                return statuses

            with ThreadPoolExecutor(agents) as pool:
                answers = [pool.submit(agent, n) for n in range(agents)]
                job = started.json()
                while job["status"] == "running":
                    time.sleep(0.2)
                    job = client.get(started.headers["Location"]).json()
                done.set()
                statuses = sum((answer.result() for answer in answers), Counter[str]())
            fit_s = time.monotonic() - start
    finally:
        backend.drop(url)
    stored = statuses["201"] + statuses["200"]
    return {"uploads": sum(statuses.values()), "errors": sum(statuses.values()) - stored, "statuses": dict(statuses),
            "refit_status": job["status"], "refit_s": round(fit_s, 1), "refit_kinds": ALL_KINDS}


def first_starts(backend: DatabaseBackend, directory: Path, *, servers: int, trials: int) -> dict[str, Any]:
    """``servers`` services started at once on a brand-new database, ``trials`` times."""
    failures: list[str] = []

    def start(url: str, name: str) -> None:
        try:
            Service(url, log=directory / f"{name}.log", timeout=180).stop()
        except ServiceError as exc:
            failures.append(f"{name}: {exc}")

    for trial in range(trials):
        url = backend.create()
        try:
            with ThreadPoolExecutor(servers) as pool:
                list(pool.map(start, [url] * servers, [f"start-{trial}-{n}" for n in range(servers)]))
        finally:
            backend.drop(url)
    return {"starts": servers * trials, "servers_together": servers, "failures": len(failures),
            "errors": failures[:3]}


def fuzz(backend: DatabaseBackend, db: str, directory: Path) -> dict[str, Any]:
    """The schema-fuzz test on this backend; its counts from the junit report."""
    report = directory / "fuzz.xml"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if backend.name == "postgresql":
        env[POSTGRES_URL_ENV] = db
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", FUZZ_TEST, "-q", "-k", backend.name, f"--junitxml={report}",
         "-p", "no:cacheprovider", "-p", "no:hypothesispytest"],
        cwd=REPO, env=env, capture_output=True, text=True,
    )
    suite = ET.parse(report).getroot().find("testsuite")
    if suite is None:
        raise RuntimeError(f"pytest wrote no test suite:\n{result.stdout[-2000:]}")
    properties = {p.get("name", ""): p.get("value", "0") for p in suite.iter("property")}
    return {
        "operations": int(suite.get("tests", "0")) - int(suite.get("skipped", "0")),
        "failed_operations": int(suite.get("failures", "0")) + int(suite.get("errors", "0")),
        "cases": int(properties.get(f"{backend.name}_cases", "0")),
        "server_errors": int(properties.get(f"{backend.name}_server_errors", "0")),
        "statuses": {name.rpartition("_")[2]: int(value) for name, value in properties.items()
                     if name.startswith(f"{backend.name}_status_")},
        "seconds": round(time.monotonic() - start, 1),
        **({"pytest": result.stdout[-2000:]} if result.returncode else {}),
    }


def crash_test(backend: DatabaseBackend, directory: Path, *, runs: int, rows: int, kills: int,
               seed: int) -> dict[str, Any]:
    """Upload a spool of ``runs`` runs while the server is SIGKILLed ``kills`` times; compare what was stored."""
    url = backend.create()
    rng = random.Random(seed)
    try:
        Service(url, log=directory / "crash-setup.log").stop()  # migrated once: the restarts only start
        token = create_token(url, "crash-bench")
        spool, records = Spool(directory / "spool"), device_records("crashed", gflops=3.0)
        produced: set[tuple[str, str]] = set()
        for _ in range(runs):
            run = make_run("crashed", status="running")
            for start in range(0, len(records), rows):
                spool.put(MeasurementBatch(run=run, measurements=records[start:start + rows]))
            produced |= {(run.uid, r.key) for r in records}
        batches = len(spool.pending())
        service = Service(url, log=directory / "crash-0.log")
        port, killed, finished = service.port, 0, threading.Event()
        acknowledged, flushes = Counter[str](), 0

        def agent() -> None:
            nonlocal flushes
            with Uploader(service.url, token, retries=2, backoff=0.05, timeout=30) as uploader:
                while spool.pending():
                    report = uploader.flush(spool)
                    acknowledged.update(inserted=report.inserted, duplicates=report.duplicates)
                    flushes += 1
                    if report.pending:
                        time.sleep(0.2)  # the server is down or restarting: send again, as `profiler upload` would
            finished.set()

        uploading = threading.Thread(target=agent)
        uploading.start()
        try:
            while killed < kills and not finished.is_set():
                time.sleep(rng.uniform(0.05, 0.5))  # some batches get through, one is cut mid-request
                service.process.kill()
                service.process.wait()
                service.stop()
                killed += 1
                service = Service(url, port=port, log=directory / f"crash-{killed}.log")
            uploading.join(timeout=600)
        finally:
            service.stop()
        with session_scope(url) as session:
            stored = Counter((m.run.uid, m.key) for m in queries.list_measurements(session, device="crashed"))
    finally:
        backend.drop(url)
    return {"rows_produced": len(produced), "rows_stored": sum(stored.values()), "lost": len(produced - set(stored)),
            "duplicated": sum(n - 1 for n in stored.values()), "kills": killed, "batches": batches,
            "acknowledged": dict(acknowledged), "flushes": flushes, "left_in_spool": len(spool.pending())}


def print_figures(figures: dict[str, Any]) -> None:
    table = Table(title=f"reliability on {figures['backend']}")
    table.add_column("check")
    table.add_column("figures")
    table.add_column("target")
    refit, starts, fuzzed, crash = (figures[k] for k in ("refit", "first_starts", "fuzz", "crash"))
    table.add_row("uploads during a refit", f"{refit['uploads']} uploads, {refit['errors']} errors (refit of "
                  f"{len(refit['refit_kinds'])} kinds {refit['refit_status']} in {refit['refit_s']} s)", "0 errors")
    table.add_row("concurrent first starts", f"{starts['starts']} starts ({starts['servers_together']} together), "
                  f"{starts['failures']} failures", "0 failures")
    table.add_row("schema fuzzing", f"{fuzzed['cases']} cases on {fuzzed['operations']} operations, "
                  f"{fuzzed['server_errors']} server errors, {fuzzed['failed_operations']} failing", "0 5xx, 0 failing")
    table.add_row("kill -9 during uploads", f"{crash['kills']} kills in {crash['batches']} batches: "
                  f"{crash['rows_produced']} rows produced, {crash['rows_stored']} stored, {crash['lost']} lost, "
                  f"{crash['duplicated']} duplicated ({crash['acknowledged'].get('duplicates', 0)} re-sent rows "
                  "answered as duplicates)",
                  "0 lost, 0 duplicated")
    Console(width=None if sys.stdout.isatty() else 140).print(table)  # a file or pipe gets whole rows
    print(f"machine: before {figures['load_before']}; after {figures['load_after']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite://", help="the backend: sqlite:// (files in a temporary directory, "
                        "the default) or a PostgreSQL server's URL (databases are created and dropped on it)")
    parser.add_argument("--agents", type=int, default=2, help="threads uploading during the refit")
    parser.add_argument("--starts", type=int, default=4, help="servers started together on a new database")
    parser.add_argument("--trials", type=int, default=2, help="new databases started on")
    parser.add_argument("--runs", type=int, default=8, help="agents' runs spooled in the crash test "
                        "(a whole space each)")
    parser.add_argument("--rows", type=int, default=20, help="rows per batch")
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs of the server during the uploads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    load_before = machine_load()
    with tempfile.TemporaryDirectory(prefix="splitnas-reliability-") as tmp:
        directory = Path(tmp)
        backend = backend_for(args.db, directory)
        figures: dict[str, Any] = {"backend": backend.name, "load_before": load_before}
        steps = [
            ("refit", "uploads during a refit", lambda: uploads_during_refit(backend, directory, agents=args.agents)),
            ("first_starts", "concurrent first starts",
             lambda: first_starts(backend, directory, servers=args.starts, trials=args.trials)),
            ("fuzz", "schema fuzzing (pytest)", lambda: fuzz(backend, args.db, directory)),
            ("crash", "kill -9 during uploads", lambda: crash_test(backend, directory, runs=args.runs,
                                                                   rows=args.rows, kills=args.kills, seed=args.seed)),
        ]
        for key, label, step in steps:
            with console.status(f"{label} on {backend.name} ..."):
                start = time.monotonic()
                figures[key] = step()
            console.print(f"{label}: done in {time.monotonic() - start:.0f} s")
    figures["load_after"] = machine_load()
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print_figures(figures)


if __name__ == "__main__":
    main()
