"""The ``tune`` method: trials of (architecture, split, lr, batch size, dropout) on a local Ray, ASHA and TPE."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from nas.cli import app
from nas.config import SearchConfig
from nas.data import ImageData
from nas.jobs import load_jobs, run_search
from nas.latency_client import LatencyClient
from nas.results import SplitResult
from spaces import Architecture

pytest.importorskip("ray.tune", reason="the tune method needs the sweep extra (ray[tune], optuna)")

TUNE = {
    "method": "tune", "data": "synthetic", "data_limit": 32, "steps_per_epoch": 2, "retrain_epochs": 1,
    "predictor": "lookup",
    "tune": {"trials": 4, "epochs": 2, "startup_trials": 2, "lr_min": 0.005, "lr_max": 0.05,
             "batch_sizes": (4, 8), "dropout_min": 0.1, "dropout_max": 0.4},
}


@pytest.fixture(scope="module", autouse=True)
def _local_ray() -> Iterator[None]:
    """One local Ray for the module's searches (the method starts it on demand), shut down afterwards."""
    import ray

    started = not ray.is_initialized()
    yield
    if started and ray.is_initialized():
        ray.shutdown()


def test_tune_stores_a_job_with_the_chosen_hyperparameters(
    client: LatencyClient, db_url: str, tiny_data: ImageData
) -> None:
    config = SearchConfig.model_validate(TUNE)
    job = run_search(config, db_url=db_url, data=tiny_data, client=client)
    [stored] = load_jobs(db_url, uids=[job.uid])
    assert stored.status == "completed" and stored.result == job.result
    result = stored.result
    assert isinstance(result, SplitResult)
    arch = Architecture.parse(result.architecture, job.space)
    assert arch.split == result.split
    chosen = result.hyperparameters
    assert chosen is not None
    assert 0.005 <= chosen.lr <= 0.05 and chosen.batch_size in (4, 8) and 0.1 <= chosen.dropout <= 0.4
    assert result.trials == 4 and 4 <= result.trial_epochs <= 8  # ASHA may stop trials after their first epoch
    assert result.trial_steps == 2 * result.trial_epochs
    latency = client_breakdown(client, arch)
    assert result.latency.total_ms == pytest.approx(latency)
    assert result.meets_t_th == (latency <= config.t_th)
    assert result.latency_penalty_ms == pytest.approx(max(0.0, latency - config.t_th))
    assert 0 <= result.accuracy_at_loss <= 1 and result.weights is not None
    trials = stored.search_records
    assert [r["epoch"] for r in trials] == [1, 2, 3, 4]
    assert {r["batch_size"] for r in trials} <= {4, 8}
    assert all(0.005 <= r["lr"] <= 0.05 and 0.1 <= r["dropout"] <= 0.4 for r in trials)
    assert result.trial_objective == pytest.approx(min(r["loss"] for r in trials))
    assert stored.history[-1]["stage"] == "retrain"


def client_breakdown(client: LatencyClient, arch: Architecture) -> float:
    """T of ``arch`` from the latency model of section 3, computed here from the same tables."""
    from predictor.latency import Link, split_latency

    head, tail = (client.lut(device, arch.space.name) for device in ("raspi4", "edgegpu"))
    return split_latency(arch, head, tail, Link(8.0, 32)).total_ms


def test_tune_is_reproducible_given_the_seed(client: LatencyClient, db_url: str, tiny_data: ImageData) -> None:
    settings = {**TUNE, "tune": {**TUNE["tune"], "trials": 3, "epochs": 1}, "retrain_epochs": 0}
    first, second = (run_search(SearchConfig.model_validate(settings), db_url=db_url, data=tiny_data, client=client)
                     for _ in range(2))
    assert first.result is not None and second.result is not None
    assert first.result.architecture == second.result.architecture
    assert first.result.hyperparameters == second.result.hyperparameters
    assert [r["loss"] for r in first.search_records] == [r["loss"] for r in second.search_records]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("trials", 0, "greater than or equal to 1"),
    ("epochs", 0, "greater than or equal to 1"),
    ("grace_epochs", 3, "--tune-grace-epochs 3 is more than --tune-epochs 2"),
    ("lr_min", 0.5, "--tune-lr-min 0.5 is above --tune-lr-max 0.05"),
    ("batch_sizes", (), "at least one size"),
])
def test_bad_budget_or_ranges_are_refused(option: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SearchConfig.model_validate({**TUNE, "tune": {**TUNE["tune"], option: value}})


def flat(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


def test_cli_refuses_a_bad_budget_naming_the_option(db_url: str) -> None:
    result = CliRunner().invoke(app, ["search", "--method", "tune", "--tune-trials", "0", "--db", db_url])
    assert result.exit_code == 2 and "--tune-trials" in flat(result.output)
    result = CliRunner().invoke(app, ["search", "--method", "tune", "--tune-batch-sizes", "8,x", "--db", db_url])
    assert result.exit_code == 2 and "expected whole numbers separated by commas" in flat(result.output)


def test_without_ray_the_cli_says_so_in_one_line(
    hwnasbench_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without the sweep extra sees
    result = CliRunner().invoke(app, ["search", "--method", "tune", "--db", hwnasbench_db, "--data", "synthetic",
                                      "--data-limit", "16", "--predictor", "lookup", "--quiet"])
    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if line.strip()]
    assert "error:" in line and "ray is not installed" in line and "sweep extra" in line
