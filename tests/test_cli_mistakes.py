"""Command-line mistakes through the real console scripts: one line, a non-zero exit, nothing stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.predictor.synthetic import synthetic_records
from tests.utils.factories import ingest

BIN = Path(sys.executable).parent
# a command of each script that opens the database
SCRIPTS = {
    "profiler": ["list"],
    "predictor": ["list"],
    "nas": ["report"],
    "splitnas-api": ["token", "list"],
}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a new user: no database URL set, the default location under tmp_path."""
    hidden = tmp_path / "no-psycopg" / "psycopg"  # as without the postgres extra, wherever psycopg is installed
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('No module named psycopg')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITNAS_")}
    return env | {"SPLITNAS_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(hidden.parent), "COLUMNS": "80"}


def run(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / script), *args], capture_output=True, text=True, env=env, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0, output
    assert len(output.splitlines()) == 1 and output.startswith("error: "), output
    for word in words:
        assert word in output, output
    return output


@pytest.mark.parametrize("script", SCRIPTS)
def test_database_url_mistakes_are_one_line_and_store_nothing(script, env, tmp_path):
    plain = tmp_path / "plain.db"
    result = run(script, *SCRIPTS[script], "--db", str(plain), env=env)
    assert_one_line_error(result, "is not a database URL", f"sqlite:///{plain}")
    result = run(script, *SCRIPTS[script], "--db", "mysql://user:secret@127.0.0.1/splitnas", env=env)
    output = assert_one_line_error(result, "unsupported database backend 'mysql", "sqlite:///", "postgresql+psycopg://")
    assert "secret" not in output
    result = run(script, *SCRIPTS[script], "--db", "postgresql+psycopg://user:secret@127.0.0.1/splitnas", env=env)
    assert_one_line_error(result, "needs the psycopg driver", "splitnas[postgres]")
    typo = tmp_path / "typo" / "dir" / "x.db"
    result = run(script, *SCRIPTS[script], "--db", f"sqlite:///{typo}", env=env)
    assert_one_line_error(result, f"directory {typo.parent} of the SQLite database", "does not exist; create it first")
    assert not plain.exists() and not (tmp_path / "typo").exists() and not (tmp_path / "data").exists()


def test_the_default_location_is_created_on_first_use(env, tmp_path):
    result = run("predictor", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "splitnas.db").is_file()


def test_predictor_names_the_allowed_kinds_and_the_known_devices(env, tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    ingest(url, "pi", synthetic_records(configs=0, models=0))
    arch = ",".join(["k3_e3"] * 22)
    result = run("predictor", "predict", "--db", url, "-d", "pi", "--arch", arch, "--kind", "nosuch", env=env)
    assert_one_line_error(result, "unknown predictor kind 'nosuch'; allowed: auto, ", "lookup", "gbdt")
    for command in ("eval", "fit"):
        result = run("predictor", command, "--db", url, "--device", "typo", env=env)
        assert_one_line_error(result, "unknown device 'typo' (known devices: pi)")
    result = run("predictor", "list", "--db", url, "--json", env=env)
    assert result.returncode == 0 and result.stdout.strip() == "[]"  # nothing was fitted
