"""The ``predictor`` command line on a real SQLite file of synthetic devices."""

from __future__ import annotations

import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from db import queries
from db.engine import session_scope
from predictor import cli
from spaces import Architecture, get_space
from tests.predictor.synthetic import MODEL_BIAS, SPACE, synthetic_records
from tests.utils.factories import e2e_record, ingest, synthetic_ms

runner = CliRunner()


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'cli.db'}"
    ingest(url, "pi", synthetic_records(configs=20, models=10))
    ingest(url, "jetson", synthetic_records(configs=0, models=0))
    return url


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(cli, "console", Console(width=250))


def invoke(*args: str):
    result = runner.invoke(cli.app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_fit_prints_pi_and_r2_for_every_device(cli_db):
    output = invoke("fit", "--db", cli_db, "--kind", "flops-linear", "--kind", "lookup", "--no-evaluate")
    assert "Pi GFLOPS" in output and "R^2" in output
    assert output.count("flops-linear") == 2 and "jetson" in output and "pi" in output
    reports = json.loads(invoke("fit", "--db", cli_db, "--device", "pi", "--kind", "flops-linear", "--json"))
    assert [(r["device"], r["kind"], r["version"]) for r in reports] == [("pi", "flops-linear", 2)]
    fit = reports[0]["metrics"]["fit"]
    assert fit["pi_gflops"] > 0 and -1 < fit["r2"] <= 1
    assert set(reports[0]["metrics"]["protocols"]) >= {"entry", "layer", "config", "model", "head"}


def test_eval_prints_every_protocol_for_every_kind(cli_db):
    output = invoke("eval", "--db", cli_db, "--device", "pi", "--kind", "lookup", "--kind", "flops-linear",
                    "--folds", "2")
    for word in ("entry", "layer", "config", "model", "head", "Spearman", "Kendall", "±10 %"):
        assert word in output
    results = json.loads(invoke("eval", "--db", cli_db, "--device", "jetson", "--kind", "flops-linear", "--json"))
    assert results["scores"]["jetson"]["torch"]["flops-linear"]["arch-sum"]["n"] == 200
    assert results["runtimes"] == {}  # one runtime: nothing to compare


def test_predict_split_matches_head_plus_payload_over_rate_plus_tail(cli_db):
    invoke("fit", "--db", cli_db, "--device", "pi", "--kind", "lookup", "--no-evaluate")
    space = get_space(SPACE)
    text = ",".join(["k5_e6"] * 10 + ["k3_e1"] * 12)
    result = json.loads(invoke("predict", "--db", cli_db, "-d", "pi", "--arch", text, "--split", "9",
                               "--tail-device", "pi", "--bandwidth-mbps", "8", "--bits", "16", "--kind", "lookup",
                               "--json"))
    arch = Architecture.parse(text, space)
    ms = [synthetic_ms(op) for op in arch.layer_ops]
    head = MODEL_BIAS * (synthetic_ms(space.fixed("stem").op) + sum(ms[:9]))
    tail = MODEL_BIAS * (sum(ms[9:]) + sum(synthetic_ms(f.op) for f in space.suffix))
    payload = 32 * 16 * 16  # layer 8 outputs 32 channels at 16x16
    head_segment, tail_segment = result["segments"]
    assert head_segment["compute_ms"] == pytest.approx(head)
    assert head_segment["payload_elements"] == payload and head_segment["payload_bytes"] == payload * 2
    assert head_segment["comm_ms"] == pytest.approx(16 * payload / 8e6 * 1e3)
    assert tail_segment["compute_ms"] == pytest.approx(tail)
    assert result["total_ms"] == pytest.approx(head + 16 * payload / 8e3 + tail)
    table = invoke("predict", "--db", cli_db, "-d", "pi", "--arch", text + "@9", "--tail-device", "jetson")
    assert "head" in table and "tail" in table and "8 Mbit/s, 32 bit" in table and "KiB" in table


def test_predict_whole_model_and_errors_without_traceback(cli_db):
    text = ",".join(["k3_e3"] * 22)
    result = json.loads(invoke("predict", "--db", cli_db, "-d", "pi", "--arch", text, "--json"))
    assert result["total_ms"] > 0 and result["device"] == "pi"
    bad = runner.invoke(cli.app, ["predict", "--db", cli_db, "-d", "nowhere", "--arch", text])
    assert bad.exit_code == 2 and "unknown device 'nowhere'" in bad.output and "Traceback" not in bad.output
    bad = runner.invoke(cli.app, ["predict", "--db", cli_db, "-d", "pi", "--arch", "k3_e3,k9_e9"])
    assert bad.exit_code == 2 and "architecture has 2 blocks" in bad.output
    bad = runner.invoke(cli.app, ["predict", "--db", cli_db, "-d", "pi", "--arch", text + "@3,9",
                                  "--tail-device", "pi"])
    assert bad.exit_code == 2 and "2 split point(s) need 2 tail device(s), got 1" in bad.output


def test_list_shows_stored_predictors(cli_db):
    invoke("fit", "--db", cli_db, "--device", "jetson", "--kind", "flops-linear", "--no-evaluate")
    rows = json.loads(invoke("list", "--db", cli_db, "--json"))
    assert ("jetson", "flops-linear") in {(r["device"], r["kind"]) for r in rows}


def test_unknown_devices_and_kinds_are_named_with_the_allowed_ones(cli_db):
    for command in ("fit", "eval"):
        bad = runner.invoke(cli.app, [command, "--db", cli_db, "--device", "pi", "--device", "typo", "--no-evaluate"]
                            if command == "fit" else [command, "--db", cli_db, "--device", "typo"])
        assert bad.exit_code == 2 and "unknown device 'typo' (known devices: " in bad.output, bad.output
        assert "jetson" in bad.output and "pi" in bad.output and "Traceback" not in bad.output
    bad = runner.invoke(cli.app, ["predict", "--db", cli_db, "-d", "pi", "--arch", ",".join(["k3_e3"] * 22),
                                  "--kind", "nosuch"])
    assert bad.exit_code == 2
    assert "unknown predictor kind 'nosuch'; allowed: auto, " in bad.output and "gbdt" in bad.output
    bad = runner.invoke(cli.app, ["fit", "--db", cli_db, "--kind", "nosuch"])
    assert bad.exit_code == 2 and "allowed: all, " in bad.output
    with session_scope(cli_db) as session:  # the refused fit of pi and typo stored nothing for pi
        assert not [r for r in queries.latest_predictors(session, device="pi") if r.kind == "gbdt"]


def test_eval_e2e_lists_stored_runs_against_their_predictions(tmp_path):
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    with session_scope(url) as session:
        for head, p50, predicted in [("pi", 44.0, 40.0), ("pi", 30.0, 40.0), ("jetson", 10.0, 10.0)]:
            queries.add_e2e(session, record=e2e_record(head, p50, predicted))
    result = json.loads(invoke("eval", "--e2e", "--db", url, "--device", "pi", "--json"))
    assert [run["error_pct"] for run in result["runs"]] == pytest.approx([10.0, -25.0])
    assert result["scores"]["n"] == 2 and result["scores"]["within_10"] == pytest.approx(50.0)
    table = invoke("eval", "--e2e", "--db", url)
    assert "pi -> server" in table and "jetson -> server" in table and "+10.0" in table and "-25.0" in table
