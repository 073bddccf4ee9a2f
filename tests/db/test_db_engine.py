"""Settings, URLs, engine and session_scope on real databases (SQLite files, a PostgreSQL server)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from platformdirs import user_data_path
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from db import DatabaseURLError, check_database_url, database_url, get_engine, get_settings, session_scope
from db.models import Device, ProfilingRun
from tests.db.test_db_migrations import TABLES


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


def test_first_use_migrates_the_schema(database_url: str) -> None:
    engine = get_engine(database_url)
    assert TABLES | {"alembic_version"} == set(inspect(engine).get_table_names())


def test_sqlite_runs_in_wal_mode_with_foreign_keys(db_url: str) -> None:
    with get_engine(db_url).connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    path = db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:  # WAL is a property of the file: every other reader sees it too
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_foreign_keys_are_enforced(database_url: str) -> None:
    with pytest.raises(IntegrityError), session_scope(database_url) as session:
        session.add(ProfilingRun(uid="orphan", device_id=12345))


def test_session_scope_commits_on_success(database_url: str) -> None:
    with session_scope(database_url) as session:
        device = Device(name="jetson", kind="gpu")
        session.add(device)
    assert device.name == "jetson"  # still readable after the session closed
    with session_scope(database_url) as session:
        assert session.scalars(select(Device.kind).where(Device.name == "jetson")).all() == ["gpu"]


def test_session_scope_rolls_back_on_error(database_url: str) -> None:
    with session_scope(database_url) as session:
        session.add(Device(name="kept"))

    class Abort(Exception):
        pass

    with pytest.raises(Abort), session_scope(database_url) as session:
        session.add(Device(name="discarded"))
        session.flush()  # written inside the transaction, then rolled back
        raise Abort
    with session_scope(database_url) as session:
        assert session.scalars(select(Device.name)).all() == ["kept"]


def test_session_scope_uses_the_url_from_the_environment(database_url: str) -> None:
    with session_scope() as session:  # no url: SPLITNAS_DATABASE_URL, set by the fixture
        session.add(Device(name="from-env"))
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/srv/data/plain.db", "'/srv/data/plain.db' is not a database URL; for a SQLite file write "
                               "sqlite:////srv/data/plain.db"),
        ("mysql://u:secret@db.example/splitnas", "unsupported database backend 'mysql' in "
                                                 "mysql://u:***@db.example/splitnas; supported: sqlite, "
                                                 "postgresql+psycopg"),
        ("postgresql://u@db.example/splitnas", "unsupported database backend 'postgresql' in"),
        ("sqlite:////no/such/dir/x.db", "directory /no/such/dir of the SQLite database x.db does not exist; "
                                        "create it first"),
        ("sqlite+pysqlite:////no/such/dir/x.db", "directory /no/such/dir of the SQLite database x.db"),
        ("post gres://u@db/x", "'post gres://u@db/x' is not a valid database URL; examples: sqlite:////"),
    ],
)
def test_database_url_mistakes_are_one_line_errors(url: str, message: str, clean_settings: Path) -> None:
    with pytest.raises(DatabaseURLError) as info:
        get_engine(url)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert not Path("/no/such/dir").exists()


def test_a_sqlite_file_in_a_directory_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory")
    with pytest.raises(DatabaseURLError, match="directory .*data of the SQLite database x.db is not a directory"):
        check_database_url(f"sqlite:///{tmp_path / 'data' / 'x.db'}")


def test_usable_urls_pass(tmp_path: Path, clean_settings: Path) -> None:
    for url in (f"sqlite:///{tmp_path / 'x.db'}", "sqlite://", "sqlite:///:memory:", "sqlite:///relative.db",
                "postgresql+psycopg://u:p@localhost:5432/splitnas", database_url()):
        assert check_database_url(url).drivername in ("sqlite", "postgresql+psycopg")


def test_postgresql_without_its_driver_says_which_extra_to_install() -> None:
    """A Python without psycopg (imports of it fail, as where the postgres extra is not installed)."""
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from db import DatabaseURLError, get_engine\n"
        "try:\n    get_engine('postgresql+psycopg://u@localhost/splitnas')\n"
        "except DatabaseURLError as exc:\n    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout == 'PostgreSQL needs the psycopg driver: pip install "splitnas[postgres]"\n'


def test_a_database_made_from_a_template_holds_its_rows_apart(make_database_url: Callable[..., str]) -> None:
    """The fixture the service tests use to copy a filled database once per test, on both backends."""
    template = make_database_url()
    with session_scope(template) as session:
        session.add(Device(name="pi4"))
    copy = make_database_url(template=template)
    with session_scope(copy) as session:
        session.add(Device(name="jetson"))
    for url, names in ((template, ["pi4"]), (copy, ["jetson", "pi4"])):
        with session_scope(url) as session:
            assert session.scalars(select(Device.name).order_by(Device.name)).all() == names
