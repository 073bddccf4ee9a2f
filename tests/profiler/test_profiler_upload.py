"""Uploading through the spool to a real HTTP server that is killed mid-upload: nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from typer.testing import CliRunner

from db import queries, session_scope
from pipeline.service import free_port
from profiler.cli import app

TOKEN = "test-token-7f3a"
FAST = ["--min-run-time", "0.003", "--max-run-time", "0.006", "--copies", "1", "--warmup", "1", "--no-progress"]


@contextmanager
def ingest_server(db_url: str, *, die_after: int = 0) -> Iterator[tuple[str, subprocess.Popen]]:
    """The test ingest app under real uvicorn on a free port of 127.0.0.1."""
    port = free_port()
    env = {**os.environ, "INGEST_DB_URL": db_url, "INGEST_TOKEN": TOKEN, "INGEST_DIE_AFTER": str(die_after)}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ingest_app:app", "--app-dir", str(Path(__file__).parent),
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "the ingest server exited while starting"
            assert time.monotonic() < deadline, "the ingest server did not start within 30 s"
            time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def keys_per_run(db_url: str) -> Counter[tuple[str, str]]:
    with session_scope(db_url) as session:
        return Counter((m.run.uid, m.key) for m in queries.list_measurements(session))


def test_server_killed_mid_upload_then_every_measurement_arrives_exactly_once(tmp_path: Path) -> None:
    local, remote = f"sqlite:///{tmp_path / 'agent.db'}", f"sqlite:///{tmp_path / 'server.db'}"
    spool = tmp_path / "spool"
    upload = ["--token", TOKEN, "--spool", str(spool), "--retries", "1", "--backoff", "0.05"]
    with ingest_server(remote, die_after=1) as (url, process):
        result = CliRunner().invoke(
            app, ["run", "--device", "pi-7", "--layers", "0", "--batch-size", "3", "--server", url, *upload,
                  "--db", local, "--json", *FAST],
        )
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert process.wait(timeout=10) == -9  # killed right after storing the first batch
    measured = keys_per_run(local)
    assert summary["measured"] == len(measured) == 9 + 4
    assert summary["upload"]["batches"] == 0 and summary["upload"]["errors"]
    assert summary["upload"]["pending"] == len(list(spool.glob("*.json"))) == 5  # 3+3+3+3+1 rows
    assert sum(keys_per_run(remote).values()) == 3  # the first batch was stored, never acknowledged
    kept = tmp_path / "kept.json"
    shutil.copy(sorted(spool.glob("*.json"))[0], kept)

    with ingest_server(remote) as (url, _):
        result = CliRunner().invoke(app, ["upload", "--server", url, *upload, "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report == {"batches": 5, "inserted": 10, "duplicates": 3, "pending": 0, "errors": []}
        assert keys_per_run(remote) == measured  # every key once, in the agent's run

        shutil.copy(kept, spool / kept.name)  # sending a batch again stores nothing twice
        report = json.loads(CliRunner().invoke(app, ["upload", "--server", url, *upload, "--json"]).stdout)
        assert report["inserted"] == 0 and report["duplicates"] == 3 and report["pending"] == 0
    assert keys_per_run(remote) == measured
    with session_scope(remote) as session, session_scope(local) as agent:
        (run,) = queries.list_runs(session, device="pi-7")
        assert run.status == "completed" and run.uid == summary["run_uid"]
        theirs = {m.key: m.latency_ms for m in queries.list_measurements(session)}
        ours = {m.key: m.latency_ms for m in queries.list_measurements(agent)}
        assert theirs == ours


def test_refused_token_keeps_the_spool_and_fails(tmp_path: Path) -> None:
    local, remote = f"sqlite:///{tmp_path / 'agent.db'}", f"sqlite:///{tmp_path / 'server.db'}"
    spool = tmp_path / "spool"
    with ingest_server(remote) as (url, _):
        result = CliRunner().invoke(
            app, ["run", "--layers", "21", "--max-entries", "2", "--server", url, "--token", "wrong",
                  "--spool", str(spool), "--db", local, "--json", *FAST],
        )
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["upload"]["pending"] == 1 and "401" in summary["upload"]["errors"][0]
        result = CliRunner().invoke(app, ["upload", "--server", url, "--token", "wrong", "--spool", str(spool)])
        assert result.exit_code == 1 and "401" in result.output
        result = CliRunner().invoke(app, ["upload", "--server", url, "--token", TOKEN, "--spool", str(spool), "--json"])
        assert result.exit_code == 0 and json.loads(result.stdout)["inserted"] == 2
    assert sum(keys_per_run(remote).values()) == 2


def test_invalid_batch_is_set_aside_not_blocking(tmp_path: Path) -> None:
    remote = f"sqlite:///{tmp_path / 'server.db'}"
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "00000000000000000001-bad.json").write_text('{"run": {"uid": "x"}, "measurements": []}')
    with ingest_server(remote) as (url, _):
        result = CliRunner().invoke(app, ["upload", "--server", url, "--token", TOKEN, "--spool", str(spool)])
    assert result.exit_code == 0, result.output
    assert "422" in result.output and (spool / "rejected" / "00000000000000000001-bad.json").is_file()
