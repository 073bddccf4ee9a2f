"""Settings, engine and session_scope on real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from platformdirs import user_data_path
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from db import database_url, get_engine, get_settings, session_scope
from db.models import Device, ProfilingRun

TABLES = {"devices", "profiling_runs", "measurements", "fitted_predictors", "search_jobs", "api_tokens"}


@pytest.fixture
def clean_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No SPLITNAS_* overrides; the per-user data directory moved under tmp_path (XDG_DATA_HOME)."""
    monkeypatch.delenv("SPLITNAS_DATABASE_URL", raising=False)
    monkeypatch.delenv("SPLITNAS_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    get_settings.cache_clear()
    yield tmp_path / "xdg"
    get_settings.cache_clear()


def test_default_database_lives_in_the_user_data_directory(clean_settings: Path) -> None:
    expected = clean_settings / "splitnas" / "splitnas.db"
    assert user_data_path("splitnas", appauthor=False) / "splitnas.db" == expected
    assert database_url() == f"sqlite:///{expected}"


def test_environment_and_flag_override_the_default(clean_settings: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLITNAS_DATA_DIR", str(clean_settings / "elsewhere"))
    get_settings.cache_clear()
    assert database_url() == f"sqlite:///{clean_settings / 'elsewhere' / 'splitnas.db'}"
    monkeypatch.setenv("SPLITNAS_DATABASE_URL", "postgresql+psycopg://u@db.example/splitnas")
    get_settings.cache_clear()
    assert database_url() == "postgresql+psycopg://u@db.example/splitnas"
    assert database_url("sqlite:///flag.db") == "sqlite:///flag.db"


def test_default_database_is_created_with_its_directory_on_first_use(clean_settings: Path) -> None:
    with session_scope() as session:
        session.add(Device(name="pi4"))
    path = clean_settings / "splitnas" / "splitnas.db"
    assert path.is_file()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT name FROM devices").fetchall() == [("pi4",)]


def test_first_use_migrates_the_schema(db_url: str) -> None:
    engine = get_engine(db_url)
    assert TABLES | {"alembic_version"} == set(inspect(engine).get_table_names())


def test_sqlite_runs_in_wal_mode_with_foreign_keys(db_url: str) -> None:
    with get_engine(db_url).connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    path = db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:  # WAL is a property of the file: every other reader sees it too
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_foreign_keys_are_enforced(db_url: str) -> None:
    with pytest.raises(IntegrityError), session_scope(db_url) as session:
        session.add(ProfilingRun(uid="orphan", device_id=12345))


def test_session_scope_commits_on_success(db_url: str) -> None:
    with session_scope(db_url) as session:
        device = Device(name="jetson", kind="gpu")
        session.add(device)
    assert device.name == "jetson"  # still readable after the session closed
    with session_scope(db_url) as session:
        assert session.scalars(select(Device.kind).where(Device.name == "jetson")).all() == ["gpu"]


def test_session_scope_rolls_back_on_error(db_url: str) -> None:
    with session_scope(db_url) as session:
        session.add(Device(name="kept"))

    class Abort(Exception):
        pass

    with pytest.raises(Abort), session_scope(db_url) as session:
        session.add(Device(name="discarded"))
        session.flush()  # written inside the transaction, then rolled back
        raise Abort
    with session_scope(db_url) as session:
        assert session.scalars(select(Device.name)).all() == ["kept"]


def test_session_scope_uses_the_url_from_the_environment(db_url: str) -> None:
    with session_scope() as session:  # no url: SPLITNAS_DATABASE_URL, set by the db_url fixture
        session.add(Device(name="from-env"))
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 1
