"""``alembic upgrade head`` creates the schema that db.models describes, with no drift, on both backends;
processes that open a new database together migrate it once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from db.migrate import alembic_config
from db.models import Base

REPO_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC = Path(sys.executable).parent / "alembic"
TABLES = {"devices", "profiling_runs", "measurements", "fitted_predictors", "search_jobs", "api_tokens",
          "e2e_measurements", "sweeps"}


def _alembic(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real ``alembic`` command, run from the repository root as a user would."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SPLITNAS_")}
    environment.update(env or {})
    return subprocess.run(
        [str(ALEMBIC), *args], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=120, check=False
    )


def _head() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _schema(url: str) -> tuple[set[str], str | None, list]:
    """(tables, alembic revision, differences between the database and Base.metadata)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            return (
                set(inspect(connection).get_table_names()),
                context.get_current_revision(),
                compare_metadata(context, Base.metadata),
            )
    finally:
        engine.dispose()


def test_upgrade_head_with_an_explicit_url_creates_the_schema(database_url: str) -> None:
    url = database_url
    result = _alembic("-x", f"url={url}", "upgrade", "head")
    assert result.returncode == 0, result.stderr
    tables, revision, diff = _schema(url)
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert tables >= TABLES
    assert revision == _head()
    assert diff == [], f"models and migrations disagree: {diff}"

    check = _alembic("-x", f"url={url}", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def test_upgrade_head_uses_the_environment_url(tmp_path: Path) -> None:
    path = tmp_path / "from-env.db"
    result = _alembic("upgrade", "head", env={"SPLITNAS_DATABASE_URL": f"sqlite:///{path}"})
    assert result.returncode == 0, result.stderr
    assert _schema(f"sqlite:///{path}")[0] == TABLES | {"alembic_version"}


def test_upgrade_head_refuses_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "x.db"
    result = _alembic("upgrade", "head", env={"SPLITNAS_DATABASE_URL": f"sqlite:///{path}"})
    assert result.returncode != 0
    assert f"directory {path.parent} of the SQLite database x.db does not exist" in result.stderr
    assert not path.parent.exists()


def test_upgrade_head_on_the_default_database_of_a_new_user(tmp_path: Path) -> None:
    """No configuration at all: the per-user data directory does not exist yet and is created."""
    home = tmp_path / "home"
    home.mkdir()
    result = _alembic("upgrade", "head", env={"HOME": str(home), "XDG_DATA_HOME": ""})
    assert result.returncode == 0, result.stderr
    path = home / ".local" / "share" / "splitnas" / "splitnas.db"
    assert _schema(f"sqlite:///{path}")[1] == _head()


def test_downgrade_to_base_and_back(database_url: str) -> None:
    url = database_url
    config = alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    tables, revision, _ = _schema(url)
    assert revision is None and not tables & TABLES
    command.upgrade(config, "head")
    tables, revision, diff = _schema(url)
    assert (tables >= TABLES, revision, diff) == (True, _head(), [])



FIRST_USE = """
import pathlib, sys, time
from db import get_engine
url, directory, name = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
(directory / f"{name}.ready").touch()
while not (directory / "go").exists():  # all start migrating within a few milliseconds of each other
    time.sleep(0.005)
get_engine(url)
"""


def test_processes_opening_a_new_database_together_all_succeed(database_url: str, tmp_path: Path) -> None:
    """Four processes open one brand-new database at once: one migrates under the lock, the others wait."""
    processes = [
        subprocess.Popen([sys.executable, "-c", FIRST_USE, database_url, str(tmp_path), str(n)], cwd=REPO_ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("*.ready"))) < len(processes) and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()
    errors = [process.communicate(timeout=180)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], "\n".join(errors)
    tables, revision, diff = _schema(database_url)
    assert (tables >= TABLES, revision, diff) == (True, _head(), [])


def test_upgrade_from_0001_keeps_every_row_and_labels_it_torch(database_url: str) -> None:
    """A database of the first schema, with data, upgraded: its runs and predictors were PyTorch eager's."""
    config = alembic_config(database_url)
    command.upgrade(config, "0001")
    engine = create_engine(database_url)
    now = "2026-11-30 10:00:00+00:00"
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO devices (id, name, kind, description, facts, created_at) "
                f"VALUES (1, 'raspi4', 'cpu', '', '{{}}', '{now}')"
            ))
            connection.execute(text(
                "INSERT INTO profiling_runs (id, uid, device_id, host, environment, environment_key, settings, "
                f"status, started_at) VALUES (1, 'r1', 1, 'pi', '{{}}', 'k', '{{}}', 'completed', '{now}')"
            ))
            connection.execute(text(
                "INSERT INTO measurements (id, run_id, device_id, target, key, space, layer, block, config, "
                "latency_ms, raw, noisy, source, created_at) VALUES (1, 1, 1, 'block', 'fbnet-cifar100/L0/k3_e1', "
                f"'fbnet-cifar100', 0, 'k3_e1', '{{}}', 1.5, '{{}}', false, 'measured', '{now}')"
            ))
            connection.execute(text(
                "INSERT INTO fitted_predictors (id, device_id, space, kind, version, metrics, meta, artifact, "
                f"created_at) VALUES (1, 1, 'fbnet-cifar100', 'lookup', 1, '{{}}', '{{}}', :artifact, '{now}')"
            ), {"artifact": b"lut"})
        command.upgrade(config, "head")
        with engine.begin() as connection:
            assert connection.execute(text("SELECT uid, runtime FROM profiling_runs")).all() == [("r1", "torch")]
            assert connection.execute(text("SELECT latency_ms FROM measurements")).all() == [(1.5,)]
            assert connection.execute(text("SELECT kind, version, runtime FROM fitted_predictors")).all() == [
                ("lookup", 1, "torch")
            ]
            # version 1 of the same predictor under another runtime is a different predictor now
            connection.execute(text(
                "INSERT INTO fitted_predictors (id, device_id, runtime, space, kind, version, metrics, meta, artifact, "
                f"created_at) VALUES (2, 1, 'onnxruntime', 'fbnet-cifar100', 'lookup', 1, '{{}}', '{{}}', :a, '{now}')"
            ), {"a": b"lut"})
        assert _schema(database_url)[2] == []

        # going back would label the onnxruntime predictor torch's: refused, nothing changed
        refused = "1 row\\(s\\) of fitted_predictors belong to a runtime other than torch"
        with pytest.raises(RuntimeError, match=refused):
            command.downgrade(config, "0001")
        assert _schema(database_url)[1] == _head()
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM fitted_predictors WHERE runtime = 'onnxruntime'"))
        command.downgrade(config, "0001")
        with engine.begin() as connection:
            assert connection.execute(text("SELECT uid FROM profiling_runs")).all() == [("r1",)]
            assert connection.execute(text("SELECT kind FROM fitted_predictors")).all() == [("lookup",)]
    finally:
        engine.dispose()
