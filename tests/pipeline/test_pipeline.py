"""The README's main job, reduced to tiny budgets, end to end with the real service on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from db import queries, session_scope
from nas.results import SplitResult, read_job
from pipeline.run import Pipeline, PipelineConfig, PipelineError
from pipeline.service import free_port, port_is_free

TINY_SEARCH = {"pretrain_epochs": 1, "search_epochs": 1, "retrain_epochs": 1, "steps_per_epoch": 1, "batch_size": 16,
               "data_limit": 64}


def tiny_config(tmp_path: Path, **overrides: object) -> PipelineConfig:
    settings = dict(
        report_dir=tmp_path / "report", db=f"sqlite:///{tmp_path / 'pipeline.db'}", models=2, min_run_time=0.01,
        max_run_time=0.02, port=free_port(), search=TINY_SEARCH,
    )
    settings.update(overrides)
    return PipelineConfig(**settings)  # type: ignore[arg-type]


def measurement_count(url: str) -> int:
    with session_scope(url) as session:
        return len(queries.list_measurements(session, device="local-cpu"))


def test_pipeline_runs_end_to_end_and_twice(tmp_path: Path, hwnasbench_dir: Path) -> None:
    config = tiny_config(tmp_path, hwnasbench=hwnasbench_dir)
    index = Pipeline(config, console=Console(width=120)).run()

    page = index.read_text()
    for caption in ("Latency table of local-cpu", "Latency table of raspi4", "Latency table of edgegpu",
                    "Predicted vs measured latency of whole architectures and heads", "Convergence of the nasc search",
                    "Convergence of the hwnas search", "The nasc answer per layer",
                    "Accuracy vs latency of the searched architectures"):  # predictor.figures, inline SVG
        assert f"</svg><figcaption>{caption}" in page
    assert "Scenario: head raspi4 → tail edgegpu" in page and "T_th 30 ms" in page
    summary = json.loads((config.report_dir / "summary.json").read_text())
    jobs = [read_job(job) for job in summary["jobs"]]
    assert {job.method for job in jobs} == {"nasc", "hwnas"}
    for job in jobs:
        assert job.status == "completed" and isinstance(job.result, SplitResult)
        assert (job.result.latency.head_device, job.result.latency.tail_device) == ("raspi4", "edgegpu")
        assert job.config.t_th == 30.0 and job.config.pretrain_epochs == 1  # the settings reached the search
        assert job.result.architecture in page
    assert {row["device"] for row in summary["predictors"]} == {"local-cpu", "raspi4", "edgegpu"}
    with session_scope(config.db) as session:
        assert len(queries.list_jobs(session)) == 2
    assert port_is_free(config.port), "the service must be stopped at the end"

    measured = measurement_count(config.db)
    Pipeline(config, console=Console(width=120)).run()
    assert measurement_count(config.db) == measured, "a second run reuses what was measured"
    with session_scope(config.db) as session:
        assert len(queries.list_jobs(session)) == 4


def test_pipeline_refuses_a_port_in_use_before_any_work(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        config = tiny_config(tmp_path, port=sock.getsockname()[1])
        with pytest.raises(PipelineError, match=f"port {config.port} on 127.0.0.1 is in use"):
            Pipeline(config).run()
    assert not (tmp_path / "pipeline.db").exists()


def test_pipeline_refuses_a_bad_hwnasbench_path(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, hwnasbench=tmp_path / "missing")
    with pytest.raises(PipelineError, match="HW-NAS-Bench path .*missing does not exist"):
        Pipeline(config).run()
    (tmp_path / "empty").mkdir()
    config = tiny_config(tmp_path, hwnasbench=tmp_path / "empty")
    with pytest.raises(PipelineError, match="holds neither"):
        Pipeline(config).run()
    assert not (tmp_path / "pipeline.db").exists()


def test_pipeline_without_hwnasbench_uses_the_local_cpu_as_head_and_tail(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, methods=("nasc",))
    Pipeline(config, console=Console(width=120)).run()
    job = read_job(json.loads((config.report_dir / "summary.json").read_text())["jobs"][0])
    assert isinstance(job.result, SplitResult)
    assert job.result.latency.head_device == job.result.latency.tail_device == "local-cpu"
    assert job.config.bandwidth_mbps == 2.0
    assert job.config.t_th > 0


def test_pipeline_refuses_search_settings_it_chooses_or_that_are_invalid(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="search setting 'head_device' is chosen by the pipeline"):
        Pipeline(tiny_config(tmp_path, search={"head_device": "raspi4"})).run()
    with pytest.raises(PipelineError, match="search settings: loss: Input should be less than 1"):
        Pipeline(tiny_config(tmp_path, search={"loss": 2})).run()
    assert not (tmp_path / "pipeline.db").exists()


def test_pipeline_command_passes_search_options(tmp_path: Path) -> None:
    """``splitnas-pipeline --search-<field>``: derived from SearchConfig, refused before any work when wrong."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "splitnas-pipeline"), "--report-dir", str(tmp_path / "r"),
         "--db", f"sqlite:///{tmp_path / 'pipeline.db'}", "--port", str(free_port()), "--search-loss", "1.5"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 1 and "search settings: loss: Input should be less than 1" in result.stderr
    assert not (tmp_path / "pipeline.db").exists()
