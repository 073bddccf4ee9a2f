"""``nas search``'s options are SearchConfig's fields; mistakes are one line, exit non-zero, store nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
import typer
import yaml

from db import queries, session_scope
from nas.cli import SEARCH_OPTIONS, app, build_config
from nas.cli_options import FieldOption, given_values
from nas.config import SearchConfig
from nas.jobs import load_jobs
from nas.results import ResultError, SplitResult, TopologyResult
from tests.nas.test_gradient_e2e import CHAIN3
from tests.utils.api_data import build_service_db

NAS = Path(sys.executable).parent / "nas"


def leaf_fields(model: type[Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            paths += leaf_fields(annotation, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


def run_nas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NAS), *args], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1"})


def test_help_documents_every_field() -> None:
    result = run_nas("search", "--help")
    assert result.returncode == 0, result.stderr
    shown = " ".join(result.stdout.replace("│", " ").split())
    options = {option.path: option for option in SEARCH_OPTIONS}
    assert set(options) == set(leaf_fields(SearchConfig)), "every field, nested ones too, is an option"
    for option in options.values():
        assert f" {option.flag} " in f" {shown} ", option.flag
        assert option.field.description, f"{option.flag}: give the field a description (it is the help)"
        assert " ".join(option.field.description.split()) in shown


def other_value(option: FieldOption, tmp_path: Path) -> tuple[list[str], Any]:
    """Command-line words setting the option's field to a value other than its default, and that value."""
    annotation = option.field.annotation
    kind = annotation
    if isinstance(annotation, types.UnionType):  # X | None
        [kind] = [a for a in typing.get_args(annotation) if a is not type(None)]
    if option.path == ("method",):
        return [option.flag, "gradient"], "gradient"  # a topology is searched by the gradient method only
    if option.path == ("codec",):
        return [option.flag, "int8"], "int8"  # the codec sending --bits 8 (the other value of bits below)
    if option.path == ("topology",):
        path = tmp_path / "chain3.yaml"
        path.write_text(yaml.safe_dump(CHAIN3))
        return [option.flag, str(path)], CHAIN3
    if typing.get_origin(kind) is Literal:
        value = next(v for v in typing.get_args(kind) if v != option.default)
        return [option.flag, str(value)], value
    if kind is bool:
        return [f"--no-{option.flag[2:]}" if option.default else option.flag], not option.default
    if kind is int:
        value = (option.default or 1) + 1
        return [option.flag, str(value)], value
    if kind is float:
        value = 0.25 if option.default != 0.25 else 0.3
        return [option.flag, str(value)], value
    if kind is str:
        return [option.flag, "other"], "other"
    if typing.get_origin(kind) is tuple and typing.get_args(kind) == (int, ...):
        return [option.flag, "3,5"], (3, 5)
    if typing.get_origin(kind) is tuple:
        return [option.flag, "0.1,0.3"], (0.1, 0.3)
    if typing.get_origin(kind) is dict:
        return [option.flag, "alpha=1.5", option.flag, "population_size=10"], {"alpha": 1.5, "population_size": 10}
    raise AssertionError(f"{option.flag}: no test value for {annotation!r}")


def test_every_option_reaches_the_config(tmp_path: Path) -> None:
    args, expected = [], {}
    for option in SEARCH_OPTIONS:
        words, value = other_value(option, tmp_path)
        args += words
        expected[option.path] = value
    command = typer.main.get_command(app).commands["search"]  # type: ignore[attr-defined]
    parsed = command.make_context("search", args).params
    config = build_config(None, given_values(SEARCH_OPTIONS, parsed))
    for path, value in expected.items():
        got: Any = config
        for name in path:
            got = getattr(got, name)
        if path == ("topology",):
            value = {"name": "chain3", **value}
        assert got == value, path
        assert got != getattr(SearchConfig(), path[0]) or path == ("topology",) or len(path) > 1


def test_config_file_then_options(tmp_path: Path) -> None:
    file = tmp_path / "search.yaml"
    file.write_text(yaml.safe_dump({"t_th": 12.5, "seed": 4, "gradient": {"arch_lr": 0.01, "arch_every": 3}}))
    given = given_values(SEARCH_OPTIONS, {"seed": 5, "gradient_arch_every": 2})
    config = build_config(file, given)
    assert (config.t_th, config.seed) == (12.5, 5)
    assert (config.gradient.arch_lr, config.gradient.arch_every) == (0.01, 2)  # nested: field by field


@pytest.mark.parametrize(
    ("content", "message"),
    [("- 1\n- 2\n", "must be a mapping of settings (field: value), not a list"),
     ("t_th: [1\n", "is not valid YAML"),
     ("t_th: 10\nspeed: 3\n", "unknown setting 'speed'; allowed: method, space"),
     (None, "cannot read")],
)
def test_config_file_mistakes_are_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    file = tmp_path / "search.yaml"
    if content is not None:
        file.write_text(content)
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    result = run_nas("search", "--config", str(file), "--db", db)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_typo_stores_no_failed_job(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    build_service_db(db)  # raspi4 and edgegpu tables: each mistake below is the only one
    tiny = ["--data", "synthetic", "--data-limit", "16", "--db", db]
    for args, code, needle in (
        (["--method", "nasx"], 1, "unknown search method 'nasx'"),
        (["--space", "fbnet-cifar1000"], 1, "fbnet-cifar1000"),
        (["--head-device", "raspi5"], 1, "raspi5"),
        (["--device", "gpu"], 1, "unknown --device 'gpu'"),
        (["--bits", "7"], 2, "'7' is not one of"),
        (["--data", "/no/such/cifar"], 1, "/no/such/cifar"),
    ):
        result = run_nas("search", *tiny, *args)
        assert result.returncode == code, (args, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    report = run_nas("report", "--json", "--db", db)
    assert report.returncode == 0 and json.loads(report.stdout) == [], "no job, failed or other, was stored"


OLD_SPLIT_RESULT = {  # a result stored before results had a schema version (and a kind)
    "architecture": "k3_e1@0", "split": 4, "latency": {
        "total_ms": 10.0, "head_ms": 4.0, "comm_ms": 1.0, "tail_ms": 5.0, "payload_elements": 1000,
        "payload_bytes": 4000, "head_device": "raspi4", "tail_device": "edgegpu",
        "predictors": {"head": "lookup", "tail": "lookup"}},
    "payload_bytes": 4000, "meets_t_th": True, "latency_penalty_ms": 0.0, "loss_rate": 0.2,
    "accuracy_at_loss": 0.5, "accuracy_clean": 0.6, "convergence": 0.9, "wall_time_s": 10.0,
    "latency_time_s": 0.01, "latency_share": 0.001, "latency_queries": 100, "latency_source": "sqlite:///x.db",
    "data": "digits", "num_classes": 10, "device": "cpu", "split_objective": {"4": 0.3}, "retrain_dropout": 0.5,
}


def store(db_url: str, uid: str, result: dict[str, Any], config: dict[str, Any] | None = None) -> None:
    with session_scope(db_url) as session:
        queries.create_job(session, uid=uid, method="hwnas", space="fbnet-cifar100",
                           config=config or SearchConfig(method="hwnas").model_dump(mode="json"))
        queries.finish_job(session, uid=uid, status="completed", result=result)


def test_old_results_load_and_bad_ones_are_named(db_url: str) -> None:
    store(db_url, "old", OLD_SPLIT_RESULT)
    [job] = load_jobs(db_url, uids=["old"])
    assert isinstance(job.result, SplitResult) and job.result.latency.tail_ms == 5.0 and job.result.splits == [4]
    assert not isinstance(job.result, TopologyResult)
    store(db_url, "future", {**OLD_SPLIT_RESULT, "schema_version": 2})
    with pytest.raises(ResultError, match="job future: result schema version 2; this splitnas reads 1"):
        load_jobs(db_url, uids=["future"])
    store(db_url, "broken", {**OLD_SPLIT_RESULT, "accuracy_clean": "high"})
    with pytest.raises(ResultError, match="job broken: stored result does not match schema 1: split.accuracy_clean"):
        load_jobs(db_url, uids=["broken"])
    result = run_nas("report", "--db", db_url)
    assert result.returncode == 1 and "job future: result schema version 2" in result.stderr
