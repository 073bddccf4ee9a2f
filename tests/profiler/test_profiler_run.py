"""``profiler run`` end to end on this CPU into a real SQLite file, with resume, traces, list and export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from db import queries, session_scope
from profiler import runner
from profiler.cli import app

# Tiny budgets: these tests check what is stored, not how precisely (bench/profile_space.py does that).
FAST = ["--min-run-time", "0.003", "--max-run-time", "0.006", "--copies", "2", "--warmup", "1", "--no-progress",
        "--max-quiet-wait", "0", "--wait", "0.001"]  # never wait for quiet: the machine running the tests is shared


def invoke(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else {}


def test_whole_space_then_resume_measures_nothing_new(db_url: str) -> None:
    summary = invoke("run", "--device", "this-cpu", "--space", "fbnet-cifar100", "--db", db_url, "--json", *FAST)
    assert summary["measured"] == 22 * 9 + 4 and summary["timed"] == 112 and summary["status"] == "completed"
    with session_scope(db_url) as session:
        rows = queries.list_measurements(session, device="this-cpu")
        run = queries.get_run(session, uid=summary["run_uid"])
        assert run.status == "completed" and run.finished_at is not None
        assert run.environment["threads"] == 1 and run.environment["torch"] and run.environment["cpu_model"]
        assert run.settings["timing"]["clock"] == "wall" and run.environment["clock"] == "wall"
        assert run.environment_key == summary["environment_key"]
        assert run.device.facts["cpu_model"] == run.environment["cpu_model"]
        coverage = queries.coverage(session, device="this-cpu")
    assert coverage == {("fbnet-cifar100", "block"): 198, ("fbnet-cifar100", "fixed"): 4}
    assert all(r.latency_ms > 0 and r.repeats >= 1 and r.min_ms <= r.latency_ms for r in rows)
    # Three passes over the plan (the default); each entry keeps its median pass, and its CPU time beside it.
    assert all(len(r.raw["pass_medians_ms"]) == 3 for r in rows)
    assert all(r.latency_ms == pytest.approx(sorted(r.raw["pass_medians_ms"])[1], abs=1e-6) for r in rows)
    assert all(0 < r.raw["cpu_share"] <= 1.05 and r.raw["cpu_ms"] > 0 for r in rows)
    # Identical ops are timed once and the timing reused: L2..L4 share their shape.
    by_key = {r.key: r for r in rows}
    assert by_key["fbnet-cifar100/L3/k3_e3"].latency_ms == by_key["fbnet-cifar100/L2/k3_e3"].latency_ms
    assert by_key["fbnet-cifar100/L3/k3_e3"].raw["timed_as"] == "fbnet-cifar100/L2/k3_e3"

    again = invoke("run", "--device", "this-cpu", "--db", db_url, "--resume", "--json", *FAST)
    assert again["status"] == "nothing to measure" and again["measured"] == 0
    assert again["already_measured"] == 202 and again["run_uid"] is None
    with session_scope(db_url) as session:
        assert len(queries.list_measurements(session, device="this-cpu")) == 202
        assert len(queries.list_runs(session, device="this-cpu")) == 1


def test_max_entries_then_resume_completes_with_models_and_configs(db_url: str) -> None:
    common = ["--device", "dev-a", "--layers", "0,1", "--models", "1", "--sample-configs", "3", "--db", db_url]
    first = invoke("run", *common, "--max-entries", "10", "--json", *FAST)
    assert first["measured"] == 10
    rest = invoke("run", *common, "--resume", "--json", *FAST)
    assert rest["already_measured"] == 10 and rest["measured"] == 2 * 9 + 4 + 3 + 2 - 10
    with session_scope(db_url) as session:
        coverage = queries.coverage(session, device="dev-a")
        models = queries.list_measurements(session, device="dev-a", target="model")
    assert coverage[("fbnet-cifar100", "config")] == 3 and coverage[("fbnet-cifar100", "model")] == 2
    assert sorted(m.config["part"] for m in models) == ["full", "head"]
    full, head = sorted(models, key=lambda m: m.config["part"])
    assert head.flops < full.flops and head.latency_ms < full.latency_ms * 1.5
    # a network is also timed as single calls after an idle gap, as a part of a split network runs; ops are not
    assert all(m.raw["after_wait_ms"] > 0 for m in models)
    with session_scope(db_url) as session:
        assert not any("after_wait_ms" in (m.raw or {}) for m in queries.list_measurements(session, device="dev-a",
                                                                                              target="block"))

    listing = invoke("list", "--db", db_url, "--json")
    device = next(d for d in listing["devices"] if d["name"] == "dev-a")
    (cover,) = device["coverage"]
    assert cover["blocks"] == 18 and cover["blocks_total"] == 198 and cover["fixed"] == cover["fixed_total"] == 4
    assert not cover["complete"]
    assert sorted(r["measurements"] for r in listing["runs"]) == [10, 17]
    table = CliRunner().invoke(app, ["list", "--db", db_url]).stdout
    assert "dev-a" in table and "18/198" in table


def test_progress_bar_traces_and_export(db_url: str, tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    result = CliRunner().invoke(
        app, ["run", "--layers", "21", "--max-entries", "3", "--db", db_url, "--trace-dir", str(traces),
              *[a for a in FAST if a != "--no-progress"]],
    )
    assert result.exit_code == 0, result.output
    assert "3 measurements of local-cpu" in result.output
    runs = sorted(p.name for p in traces.iterdir())
    assert runs == ["fbnet-cifar100_L21_k3_e1", "fbnet-cifar100_L21_k3_e1_g2", "fbnet-cifar100_stem"]
    for run in runs:
        (trace,) = (traces / run).glob("*.pt.trace.json")
        events = json.loads(trace.read_text())["traceEvents"]
        assert any(e.get("name", "").startswith("aten::") for e in events)  # operator-level breakdown

    result = CliRunner().invoke(app, ["export", "--db", db_url, "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 3 and {r["device"] for r in rows} == {"local-cpu"}
    assert all(float(r["latency_ms"]) > 0 and json.loads(r["config"]) == {} for r in rows)
    target = tmp_path / "out.json"
    invoke("export", "--db", db_url, "--format", "json", "--target", "block", "--output", str(target))
    exported = json.loads(target.read_text())
    assert sorted(r["key"] for r in exported) == ["fbnet-cifar100/L21/k3_e1", "fbnet-cifar100/L21/k3_e1_g2"]
    assert all(r["op_key"] and r["layer"] == 21 and r["source"] == "measured" for r in exported)


def test_bad_options_name_what_is_allowed(db_url: str) -> None:
    for args, message in [
        (["--space", "nope"], "allowed: fbnet-cifar100"),
        (["--layers", "30"], "allowed layers are 0..21"),
        (["--server", "http://127.0.0.1:9"], "--server needs --token"),
        (["--torch-device", "mps"], "only cpu and cuda devices are supported"),
        (["--clock", "sundial"], "allowed: wall, thread"),
    ]:
        result = CliRunner().invoke(app, ["run", *args, "--db", db_url])
        text = " ".join(result.output.replace("│", " ").split())  # the error box wraps lines
        assert result.exit_code == 2 and message in text, (args, text)


def test_a_run_stopped_in_a_later_pass_keeps_every_entry_timed_so_far(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = runner.measure_entry

    def interrupted(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 112 + 11:  # the 11th entry of the second pass (passes go in shuffled orders)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "measure_entry", interrupted)
    result = CliRunner().invoke(app, ["run", "--device", "this-cpu", "--db", db_url, "--passes", "2", *FAST])
    assert result.exit_code != 0
    with session_scope(db_url) as session:
        (run,) = queries.list_runs(session, device="this-cpu")
        rows = queries.list_measurements(session, device="this-cpu")
        assert run.status == "failed"
    assert len(rows) == 22 * 9 + 4  # every entry had its first pass
    timed_twice = {r.raw.get("timed_as", r.key) for r in rows if "pass_medians_ms" in r.raw}
    assert len(timed_twice) == 10  # ... and the first ten its second


def test_list_and_export_of_an_unknown_device_name_the_known_ones(db_url: str) -> None:
    for command in (["list"], ["export", "--format", "json"]):
        result = CliRunner().invoke(app, [*command, "--device", "typo", "--db", db_url])
        assert result.exit_code == 2 and result.stderr == "unknown device 'typo'; known devices: none yet " \
            "(profiler run stores one)\n", result.output
    invoke("run", "--device", "dev-b", "--layers", "21", "--max-entries", "1", "--db", db_url, *FAST)
    for command in (["list"], ["export"]):
        result = CliRunner().invoke(app, [*command, "--device", "dev-c", "--db", db_url])
        assert result.exit_code == 2 and result.stderr == "unknown device 'dev-c'; known devices: dev-b\n"
        assert result.stdout == ""
    assert "dev-b" in CliRunner().invoke(app, ["list", "--device", "dev-b", "--db", db_url]).stdout
