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
import pytest
from typer.testing import CliRunner

from db import queries, session_scope
from db.records import MeasurementBatch, MeasurementRecord, RunRecord
from pipeline.service import free_port
from profiler.cli import app
from profiler.upload import Spool, SpoolError

TOKEN = "test-token-7f3a"
FAST = ["--min-run-time", "0.003", "--max-run-time", "0.006", "--copies", "1", "--warmup", "1", "--no-progress",
        "--max-quiet-wait", "0"]  # never wait for quiet: the machine running the tests is shared


@contextmanager
def ingest_server(
    db_url: str, *, die_after: int = 0, fail_key: str = ""
) -> Iterator[tuple[str, subprocess.Popen]]:
    """The test ingest app under real uvicorn on a free port of 127.0.0.1."""
    port = free_port()
    env = {**os.environ, "INGEST_DB_URL": db_url, "INGEST_TOKEN": TOKEN, "INGEST_DIE_AFTER": str(die_after),
           "INGEST_FAIL_KEY": fail_key}
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
        assert result.exit_code == 1, result.output  # batches are pending: not done
        assert f"profiler upload --server {url} --token <token> --spool {spool}" in result.stderr
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
        assert report == {"batches": 5, "inserted": 10, "duplicates": 3, "pending": 0, "rejected": 0, "errors": []}
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
        assert result.exit_code == 1, result.output
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


def batch(uid: str, keys: list[str], *, status: str = "running") -> MeasurementBatch:
    return MeasurementBatch(
        run=RunRecord(uid=uid, device="pi-7", status=status),
        measurements=[MeasurementRecord(target="config", key=key, latency_ms=1.0 + i) for i, key in enumerate(keys)],
    )


def test_a_batch_the_server_keeps_failing_on_does_not_block_the_others(tmp_path: Path, db_url: str) -> None:
    remote = db_url  # the server's database
    spool = Spool(tmp_path / "spool")
    spool.put(batch("run-a", ["a1", "a2"]))
    poisoned = spool.put(batch("run-a", ["bug", "a3"]))  # the server answers 500 to this one
    spool.put(batch("run-a", ["a4"], status="completed"))
    upload = ["upload", "--token", TOKEN, "--spool", str(spool.directory), "--retries", "1", "--backoff", "0.01"]
    with ingest_server(remote, fail_key="bug") as (url, _):
        result = CliRunner().invoke(app, [*upload, "--server", url, "--json"])
        assert result.exit_code == 1, result.output  # one batch still pending
        report = json.loads(result.stdout)
        assert report["batches"] == 2 and report["inserted"] == 3 and report["pending"] == 1
        assert "500" in report["errors"][0] and "kept for the next upload" in report["errors"][0]
        assert spool.pending() == [poisoned] and not (spool.directory / "rejected").exists()
    assert set(keys_per_run(remote)) == {("run-a", "a1"), ("run-a", "a2"), ("run-a", "a4")}

    with ingest_server(remote) as (url, _):  # fixed server: the next upload sends the batch it skipped
        result = CliRunner().invoke(app, [*upload, "--server", url, "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["inserted"] == 2 and spool.pending() == []
    assert sum(keys_per_run(remote).values()) == 5
    with session_scope(remote) as session:
        (run,) = queries.list_runs(session, device="pi-7")
        assert run.status == "completed"  # the late early batch did not reopen the run


def test_the_run_skips_a_failing_batch_and_exits_non_zero_while_it_is_pending(tmp_path: Path, db_url: str) -> None:
    local, remote = f"sqlite:///{tmp_path / 'agent.db'}", db_url
    spool = tmp_path / "spool"
    first_key = "fbnet-cifar100/stem"
    with ingest_server(remote, fail_key=first_key) as (url, _):
        result = CliRunner().invoke(
            app, ["run", "--device", "pi-7", "--layers", "0", "--batch-size", "3", "--server", url, "--token", TOKEN,
                  "--spool", str(spool), "--retries", "1", "--backoff", "0.01", "--db", local, "--json", *FAST],
        )
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    (left,) = spool.glob("*.json")
    assert first_key in {m.key for m in Spool.load(left).measurements}
    assert summary["upload"]["pending"] == 1 and summary["upload"]["batches"] == 4
    assert sum(keys_per_run(remote).values()) == summary["measured"] - len(Spool.load(left).measurements)
    assert "1 batches are waiting" in result.stderr and "profiler upload --server" in result.stderr


@contextmanager
def tiny_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (needs root, or a user namespace that may mount)."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here to fill up ({mounted.stderr.strip() or 'mount failed'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_full_spool_disk_is_one_clear_error_and_leaves_no_partial_files(tmp_path: Path) -> None:
    local = f"sqlite:///{tmp_path / 'agent.db'}"
    with tiny_filesystem(tmp_path / "full", "8k") as spool:
        (spool / "filler").write_bytes(b"x" * 8192)  # the disk is now full
        with pytest.raises(SpoolError, match="no space left"):
            Spool(spool).put(batch("run-a", ["a1"]))
        assert sorted(p.name for p in spool.iterdir()) == ["filler"]

        result = CliRunner().invoke(
            app, ["run", "--device", "pi-7", "--layers", "0", "--batch-size", "3", "--server", "http://127.0.0.1:9",
                  "--token", TOKEN, "--spool", str(spool), "--retries", "0", "--db", local, *FAST],
        )
        assert result.exit_code == 1, result.output
        assert "no space left on its disk" in result.stderr and "Traceback" not in result.output
        assert sorted(p.name for p in spool.iterdir()) == ["filler"]  # no .part, no empty batch file
    with session_scope(local) as session:
        (run,) = queries.list_runs(session, device="pi-7")
        assert run.status == "failed" and len(queries.list_measurements(session)) == 13  # nothing timed is lost
