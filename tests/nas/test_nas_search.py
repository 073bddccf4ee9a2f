"""Searches end to end on tiny budgets: every method, stored jobs, the CLI against the real service, reports."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from db.engine import session_scope
from nas.cli import app
from nas.config import SearchConfig
from nas.data import ImageData
from nas.jobs import load_jobs, run_search
from nas.latency_client import LatencyClient
from nas.methods import METHODS
from nas.results import SCHEMA_VERSION, Job, SplitResult, read_job
from predictor import fit_predictors
from spaces import Architecture
from tests.utils.factories import block_records, fixed_records, ingest, synthetic_ms

TINY = {
    "data": "synthetic", "data_limit": 32, "batch_size": 8, "steps_per_epoch": 1, "pretrain_epochs": 1,
    "search_epochs": 2, "retrain_epochs": 1, "predictor": "lookup", "split_eval_batches": 1,
}
# the gradient method searches a device topology file instead of one link (tests/nas/test_gradient_*.py);
# tune runs trials on Ray instead of the three stages (tests/nas/test_tune.py)
ONE_LINK_METHODS = sorted(set(METHODS) - {"gradient", "tune"})
TINY_FLAGS = ["--data", "synthetic", "--data-limit", "32", "--batch-size", "8", "--steps-per-epoch", "1",
              "--pretrain-epochs", "1", "--search-epochs", "2", "--retrain-epochs", "1", "--predictor", "lookup"]


def check_job(job: Job, method: str) -> None:
    assert job.status == "completed" and job.method == method and job.error is None
    result = job.result
    assert isinstance(result, SplitResult) and result.schema_version == SCHEMA_VERSION
    arch = Architecture.parse(result.architecture, job.space)
    assert arch.split == result.split
    latency = result.latency
    assert latency.head_ms + latency.comm_ms + latency.tail_ms == pytest.approx(latency.total_ms)
    assert latency.payload_elements == arch.payload(arch.split)
    assert result.meets_t_th == (latency.total_ms <= job.config.t_th)
    assert 0 <= result.accuracy_at_loss <= 1 and 0 <= result.accuracy_clean <= 1
    assert 0 < result.latency_time_s < result.wall_time_s
    stages = [record["stage"] for record in job.history]
    assert stages[0] == "pretrain" and stages[-1] == "retrain"


@pytest.mark.parametrize("method", ONE_LINK_METHODS)
def test_every_method_runs_and_stores_its_job(
    method: str, client: LatencyClient, db_url: str, tiny_data: ImageData
) -> None:
    job = run_search(SearchConfig(method=method, **TINY), db_url=db_url, data=tiny_data, client=client)
    check_job(job, method)
    [stored] = load_jobs(db_url, uids=[job.uid])
    assert stored.result == job.result and stored.status == "completed"
    assert [r["epoch"] for r in stored.search_records] == [1, 2]


def test_supernet_cache_is_reused_and_checked(
    client: LatencyClient, db_url: str, tiny_data: ImageData, tmp_path: Path
) -> None:
    cache = tmp_path / "supernet.pt"
    first = run_search(SearchConfig(method="nasc", supernet_cache=str(cache), **TINY), db_url=db_url,
                       data=tiny_data, client=client)
    assert cache.is_file() and "loaded" not in first.history[0]
    second = run_search(SearchConfig(method="nasc", supernet_cache=str(cache), **TINY), db_url=db_url,
                        data=tiny_data, client=client)
    assert second.history[0]["loaded"] == str(cache)
    # every stage seeds its own randomness: loading the supernet changes nothing downstream
    for key in ("architecture", "accuracy_at_loss", "accuracy_clean", "convergence"):
        assert getattr(second.result, key) == getattr(first.result, key)
    assert [r["loss"] for r in second.history[1:]] == [r["loss"] for r in first.history[1:]]
    # HWNAS pre-trains without packet loss and without split points: another supernet
    with pytest.raises(ValueError, match="other settings .*drop.*search_splits"):
        run_search(SearchConfig(method="hwnas", supernet_cache=str(cache), **TINY), db_url=db_url,
                   data=tiny_data, client=client)
    failed = load_jobs(db_url, status="failed")
    assert len(failed) == 1 and failed[0].result is None and "other settings" in (failed[0].error or "")


def test_a_supernet_cache_directory_holds_one_supernet_per_stage_one_settings(
    client: LatencyClient, db_url: str, tiny_data: ImageData, tmp_path: Path
) -> None:
    """What a sweep's cells share: nasc and random pre-train the same supernet, hwnas another."""
    cache = tmp_path / "supernets"  # made by the first search: its name ends in /
    jobs = {method: run_search(SearchConfig(method=method, supernet_cache=f"{cache}/", **TINY), db_url=db_url,
                               data=tiny_data, client=client) for method in ("nasc", "hwnas", "random")}
    assert len(list(cache.glob("supernet-*.pt"))) == 2
    assert "loaded" not in jobs["nasc"].history[0] and "loaded" not in jobs["hwnas"].history[0]
    assert Path(jobs["random"].history[0]["loaded"]).parent == cache


def test_cli_search_against_the_service_then_report(service_url: str, db_url: str, tmp_path: Path) -> None:
    """The issue's end-to-end check: latencies from the real service, the job in the database and a JSON file."""
    runner = CliRunner()
    output = tmp_path / "job.json"
    result = runner.invoke(app, ["search", "--method", "nasc", "--predictor-url", service_url, "--db", db_url,
                                 "--seed", "3", "--output", str(output), *TINY_FLAGS])
    assert result.exit_code == 0, result.output
    job = read_job(json.loads(output.read_text()))
    check_job(job, "nasc")
    assert job.result is not None and job.result.latency_source == service_url
    assert job.config.seed == 3 and job.config.pretrain_epochs == 1
    for needle in ("search", "convergence", "total latency", "accuracy at loss 0.2", job.uid):
        assert needle in result.output
    assert load_jobs(db_url, uids=[job.uid])[0].result == job.result

    reports = tmp_path / "report"
    shown = runner.invoke(app, ["report", "--db", db_url, "--output-dir", str(reports)])
    assert shown.exit_code == 0, shown.output
    assert job.uid[:8] in shown.output
    pngs = sorted(p.name for p in reports.glob("*.png"))
    assert pngs == ["accuracy_latency.png", f"convergence_nasc_{job.uid[:8]}.png"]
    assert all((reports / name).read_bytes().startswith(b"\x89PNG") for name in pngs)


def flat(output: str) -> str:
    """Click's error box as one line of words, whatever the terminal's width."""
    return " ".join(output.replace("│", " ").split())


def test_cli_refuses_bad_settings_with_readable_messages(db_url: str, hwnasbench_db: str) -> None:
    runner = CliRunner()
    stored = len(load_jobs(hwnasbench_db))
    bad_list = runner.invoke(app, ["search", "--dropout-set", "0,x", "--db", db_url])
    assert bad_list.exit_code == 2 and "expected numbers separated by commas" in flat(bad_list.output)
    bad_loss = runner.invoke(app, ["search", "--loss", "1.5", "--db", db_url])
    assert bad_loss.exit_code == 2 and "--loss: Input should be less than 1" in flat(bad_loss.output)
    bad_nested = runner.invoke(app, ["search", "--gradient-arch-lr", "-1", "--db", db_url])
    assert bad_nested.exit_code == 2 and "--gradient-arch-lr" in flat(bad_nested.output)
    unknown = runner.invoke(app, ["search", "--method", "nope", "--db", hwnasbench_db, *TINY_FLAGS])
    assert unknown.exit_code == 1 and "allowed:" in unknown.output and "nasc" in unknown.output
    no_table = runner.invoke(app, ["search", "--head-device", "jetson", "--db", hwnasbench_db, *TINY_FLAGS])
    assert no_table.exit_code == 1 and "jetson" in no_table.output
    assert len(load_jobs(hwnasbench_db)) == stored, "a mistake is found before the job is stored"


def test_extended_space_search_runs_end_to_end(db_url: str, tiny_data: ImageData) -> None:
    """fbnet-extended-cifar100 end to end, on generated latency tables (factories.synthetic_ms, not measurements)."""
    space = "fbnet-extended-cifar100"
    for device, gflops in (("raspi4", 1.5), ("edgegpu", 20.0)):
        latency = partial(synthetic_ms, gflops=gflops)
        ingest(db_url, device, block_records(space, latency) + fixed_records(space, latency))
        with session_scope(db_url) as session:
            fit_predictors(session, device=device, space=space, kinds=["lookup"], evaluate=False)
    settings = {**TINY, "space": space, "t_th": 15.0, "search_epochs": 1}
    job = run_search(SearchConfig(method="nasc", **settings), db_url=db_url, data=tiny_data)
    check_job(job, "nasc")  # payload_elements == arch.payload(split): inside a bottleneck block when split there
    assert job.space == space and job.config.t_th == 15.0
