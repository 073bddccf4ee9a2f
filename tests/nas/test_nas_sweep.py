"""Sweeps: the grid's cells, a real sweep on a local Ray killed halfway and resumed, and its report."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from db import queries
from db.engine import session_scope
from nas.cli import app
from nas.config import SearchConfig
from nas.jobs import load_jobs
from nas.plots import pareto_front
from nas.sweep import SweepError, SweepSpec, cell_id, expand, read_sweep, run_sweep
from nas.sweep_report import summarize

pytest.importorskip("ray", reason="nas sweep runs on Ray: pip install 'splitnas[sweep]' (the test command does)")

TINY = {
    "data": "synthetic", "data_limit": 32, "batch_size": 8, "steps_per_epoch": 1, "pretrain_epochs": 1,
    "search_epochs": 2, "retrain_epochs": 1, "predictor": "lookup", "split_eval_batches": 1, "device": "cpu",
}


def write_sweep(path: Path, **spec: Any) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_the_cells_are_the_grids_cross_product_in_the_files_order(tmp_path: Path) -> None:
    spec = read_sweep(write_sweep(tmp_path / "study.yaml", base=TINY, grid={
        "method": ["nasc", "hwnas"], "seed": [0, 1], "supernet_optimizer.lr": [0.01],
    }))
    assert spec.name == "study" and spec.retries == 1  # the name is the file's stem unless given
    cells = expand(spec, supernet_cache=tmp_path / "cache")
    assert [cell.label for cell in cells] == [
        "method=nasc seed=0 supernet_optimizer.lr=0.01", "method=nasc seed=1 supernet_optimizer.lr=0.01",
        "method=hwnas seed=0 supernet_optimizer.lr=0.01", "method=hwnas seed=1 supernet_optimizer.lr=0.01",
    ]
    assert all(c.config.supernet_optimizer.lr == 0.01 and c.config.batch_size == 8 for c in cells)
    assert {c.config.supernet_cache for c in cells} == {f"{tmp_path / 'cache'}/"}  # a directory, made when used
    assert len({c.id for c in cells}) == 4
    # the id is the settings' hash: where the supernets are cached is not part of it
    assert cell_id(cells[0].config) == cell_id(cells[0].config.model_copy(update={"supernet_cache": None}))
    assert cell_id(cells[0].config) != cell_id(cells[0].config.model_copy(update={"t_th": 31.0}))


@pytest.mark.parametrize(("spec", "message"), [
    ({"grid": {}}, "at least one field"),
    ({"grid": {"seed": []}}, "grid field 'seed' has no values"),
    ({"grid": {"seed": [0]}, "repeats": 2}, "repeats: Extra inputs are not permitted"),
    ({"grid": {"method": ["nasc"], "bits": [32, 12]}}, "cell method=nasc bits=12: bits:"),
    ({"grid": {"method": ["nasc"], "colour": ["red"]}}, "cell method=nasc colour=red: colour: Extra inputs"),
    ({"grid": {"seed": [0, 0]}}, "cells seed=0 and seed=0 are the same search"),
    ({"name": "no spaces", "grid": {"seed": [0]}}, "name: String should match pattern"),
])
def test_a_mistake_in_the_file_names_the_cell_and_runs_nothing(tmp_path: Path, spec: dict, message: str) -> None:
    path = write_sweep(tmp_path / "bad.yaml", **spec)
    with pytest.raises(SweepError, match=message.replace("(", r"\(")):
        expand(read_sweep(path))


def test_nas_sweep_refuses_a_bad_file_with_one_line_and_stores_nothing(tmp_path: Path, db_url: str) -> None:
    path = write_sweep(tmp_path / "bad.yaml", grid={"method": ["nasc"], "loss": [1.5]})
    result = CliRunner().invoke(app, ["sweep", str(path), "--db", db_url])
    assert result.exit_code == 2
    assert "error: cell method=nasc loss=1.5: loss: Input should be less than 1" in result.output

    with session_scope(db_url) as session:
        assert queries.list_sweeps(session) == [] and queries.list_jobs(session) == []


def copy_database(url: str, path: Path) -> str:
    """A copy of the SQLite database at ``url`` (its WAL included: SQLite's backup), as a URL."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as source, sqlite3.connect(path) as target:
        source.backup(target)
    return f"sqlite:///{path}"


def _completed(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "SELECT cell, uid FROM search_jobs WHERE status = 'completed' ORDER BY id"
        ).fetchall()


def test_a_sweep_killed_halfway_and_resumed_runs_every_cell_exactly_once(
    tmp_path: Path, hwnasbench_db: str
) -> None:
    """2 methods x 2 seeds on a local Ray of one core (one cell at a time): killed (SIGKILL, with its Ray)
    after the first cell completed, then resumed; the report covers every cell."""
    db = tmp_path / "study.db"
    url = copy_database(hwnasbench_db, db)  # the latency tables; the jobs land beside them
    path = write_sweep(tmp_path / "study.yaml", name="study", base=TINY,
                       grid={"method": ["nasc", "random"], "seed": [0, 1]})
    command = [str(Path(sys.executable).parent / "nas"), "sweep", str(path), "--db", url, "--cpus", "1", "--quiet"]
    env = {**os.environ, "SPLITNAS_DATA_DIR": str(tmp_path / "data")}
    sweep = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (db.exists() and _completed(db)) and sweep.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sweep.poll() is None, f"the sweep ended before it was killed: {sweep.communicate()[0]}"
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)  # the driver and the local Ray it started: a machine lost
        sweep.communicate()
    [(first_cell, first_uid)] = _completed(db)

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "3 completed now, 1 completed before, 0 failed" in resumed.stderr
    assert "of the cells' own wall time (one after another)" in resumed.stderr
    cells = {cell.id for cell in expand(read_sweep(path))}
    completed = _completed(db)
    assert sorted(cell for cell, _ in completed) == sorted(cells)  # every cell once
    assert completed[0] == (first_cell, first_uid)  # the cell done before the kill did not run again
    with sqlite3.connect(db) as connection:
        others = connection.execute("SELECT status, result FROM search_jobs WHERE status <> 'completed'").fetchall()
    # the cell the kill interrupted (if its job was stored yet) is failed as interrupted
    assert all(status == "failed" and "interrupted" in result for status, result in others) and len(others) <= 1

    shown = CliRunner().invoke(app, ["report", "--sweep", "study", "--db", url, "--output-dir", str(tmp_path / "r")])
    assert shown.exit_code == 0, shown.output
    assert "sweep study" in shown.output and "nasc" in shown.output and "random" in shown.output
    assert (tmp_path / "r" / "pareto_00.png").stat().st_size > 0
    data = json.loads(CliRunner().invoke(app, ["report", "--sweep", "study", "--db", url, "--json"]).stdout)
    assert [(row["method"], row["runs"]) for row in data["summary"]] == [("nasc", 2), ("random", 2)]
    assert {job["sweep"] for job in data["jobs"]} == {"study"}

    unknown = CliRunner().invoke(app, ["report", "--sweep", "other", "--db", url])
    assert unknown.exit_code == 1 and "no sweep named 'other' (stored sweeps: study)" in unknown.output


def test_a_failed_cell_is_reported_without_stopping_the_others(tmp_path: Path, hwnasbench_db: str) -> None:
    url = copy_database(hwnasbench_db, tmp_path / "study.db")
    spec = SweepSpec(name="partly", base={**TINY, "method": "random"}, retries=0,
                     grid={"data": ["synthetic", str(tmp_path / "no-such-dataset")]})
    seen: list[tuple[int, int, int, int]] = []
    outcome = run_sweep(spec, expand(spec), db_url=url, num_cpus=2,
                        progress=lambda *counts: seen.append(counts))
    [good, bad] = expand(spec)
    assert outcome.completed == [good.id] and list(outcome.failed) == [bad.id]
    assert 0 < outcome.cells_s < outcome.wall_s  # one cell completed, within the sweep's time
    assert "DataError" in outcome.failed[bad.id] and "no-such-dataset" in outcome.failed[bad.id]
    assert seen[0] == (0, 0, 0, 2) and seen[-1][0] + seen[-1][2] == 2
    # run again: the completed cell is skipped, the failed one tried again
    again = run_sweep(spec, expand(spec), db_url=url, num_cpus=2)
    assert again.skipped == [good.id] and list(again.failed) == [bad.id]
    with pytest.raises(ValueError, match="sweep 'partly' is stored with another grid"):
        changed = spec.model_copy(update={"retries": 1})
        run_sweep(changed, expand(changed), db_url=url)


def _job(method: str, latency: float, accuracy: float, t_th: float = 30.0, seed: int = 0) -> Any:
    """A stand-in for a stored job: only what the summary reads."""
    result = SimpleNamespace(latency=SimpleNamespace(total_ms=latency), meets_t_th=latency <= t_th,
                             accuracy_at_loss=accuracy, accuracy_clean=accuracy + 0.1)
    config = SearchConfig(method=method, t_th=t_th, seed=seed)
    return SimpleNamespace(status="completed", result=result, method=method, config=config,
                           cell=f"{method}-{t_th}-{seed}", uid=f"{method}-{t_th}-{seed}")


def test_the_summary_groups_scenarios_and_compares_latency_with_the_hwnas_baselines() -> None:
    jobs = [_job("hwnas", 50, 0.8), _job("hwnas-nodropout", 70, 0.7), _job("nasc", 24, 0.6),
            _job("nasc", 36, 0.5, seed=1), _job("nasc", 10, 0.4, t_th=20)]
    rows = summarize(jobs, ["method", "seed", "t_th"])
    assert [(r.scenario, r.method, r.runs) for r in rows] == [
        ("t_th=30.0", "hwnas", 1), ("t_th=30.0", "hwnas-nodropout", 1), ("t_th=30.0", "nasc", 2),
        ("t_th=20.0", "nasc", 1),
    ]
    nasc = rows[2]
    assert (nasc.meets_t_th, nasc.median_latency_ms, nasc.median_accuracy_at_loss) == (0.5, 30, 0.55)
    assert nasc.latency_reduction == pytest.approx(0.5)  # 30 ms against the baselines' median of 60 ms
    assert rows[0].latency_reduction is None and rows[3].latency_reduction is None  # no baseline at T_th 20


def test_the_pareto_front_keeps_the_points_nothing_beats() -> None:
    points = [(10, 0.5), (12, 0.4), (15, 0.7), (15, 0.6), (20, 0.7), (25, 0.9)]
    assert pareto_front(points) == [(10, 0.5), (15, 0.7), (25, 0.9)]
    assert pareto_front([]) == []


def test_a_tune_cell_runs_its_trials_on_a_one_core_sweep(tmp_path: Path, hwnasbench_db: str) -> None:
    """The cell holds the only core while its trials ask for one each: they run (no deadlock)."""
    url = copy_database(hwnasbench_db, tmp_path / "study.db")
    tune = {"trials": 2, "epochs": 1, "startup_trials": 1, "batch_sizes": [8]}
    spec = SweepSpec(name="tuned", base={**TINY, "method": "tune", "tune": tune}, grid={"seed": [0]}, retries=0)
    outcome = run_sweep(spec, expand(spec), db_url=url, num_cpus=1)
    assert outcome.failed == {} and len(outcome.completed) == 1
    [job] = load_jobs(url, sweep="tuned")
    assert job.status == "completed" and job.result is not None and job.result.trials == 2
