"""Fixtures shared by every test package.

Databases on both backends (SQLite and PostgreSQL):

- ``database_url``: a fresh, empty database for one test, also made ``SPLITNAS_DATABASE_URL`` (and the
  settings' default). A test that takes it runs twice, ``test_x[sqlite]`` and ``test_x[postgresql]``;
  the schema is created on first use, as in production. ``-k sqlite`` / ``-k postgresql`` picks one.
- ``make_database_url``: a factory for more databases of the same backend in one test
  (``make_database_url()``), or for copies of a filled one (``make_database_url(template=url)``; a
  PostgreSQL template must have no open connection, which ``make_database_url`` ensures in this process).
- ``database_backend`` (session scope): the backend itself, for session-scoped fixtures that build a
  template database once per backend (``database_backend.create()``; drop it with ``.drop(url)``).

PostgreSQL is the server at ``$SPLITNAS_TEST_POSTGRES_URL`` (``bash scripts/test.sh`` starts one and sets
it; by hand: ``export SPLITNAS_TEST_POSTGRES_URL=$(bash scripts/postgres.sh start /tmp/pg)``). Without
it the postgresql cases are skipped, except under CI (``CI`` set), where they fail.
``db_url`` is the older SQLite-only fixture, for tests whose behaviour does not depend on the backend.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.utils.databases import BACKENDS, POSTGRES_URL_ENV, DatabaseBackend, PostgresBackend, SQLiteBackend

REPO_ROOT = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing_server(reason: str) -> None:
    """Skip the PostgreSQL case, or fail it under CI, where the server is part of the test command."""
    hint = f"bash scripts/test.sh starts one; by hand: export {POSTGRES_URL_ENV}=$(bash scripts/postgres.sh start DIR)"
    if in_ci():
        pytest.fail(f"PostgreSQL is required under CI: {reason} ({hint})", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {reason} ({hint})")


@pytest.fixture(scope="session")
def hwnasbench_dir() -> Path:
    """The public HW-NAS-Bench data (``$HWNASBENCH`` or ``../shared/hwnasbench`` beside the repository)."""
    path = Path(os.environ.get("HWNASBENCH", REPO_ROOT.parent / "shared" / "hwnasbench"))
    if not (path / "hwnasbench_fbnet_lut.pickle").is_file():
        pytest.skip(f"HW-NAS-Bench data not found at {path} (set HWNASBENCH to its directory); CI always has it")
    return path


@pytest.fixture(scope="session", params=BACKENDS)
def database_backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DatabaseBackend:
    """SQLite files in a session directory, or databases on the test PostgreSQL server."""
    if request.param == "sqlite":
        return SQLiteBackend(tmp_path_factory.mktemp("sqlite"))
    admin_url = os.environ.get(POSTGRES_URL_ENV)
    if not admin_url:
        _missing_server(f"{POSTGRES_URL_ENV} is not set")
    try:
        backend = PostgresBackend(admin_url)
        backend.ping()
    except Exception as exc:  # a missing driver, a refused connection, a bad URL: all mean no server
        _missing_server(f"{POSTGRES_URL_ENV}={admin_url} does not answer: {str(exc).strip().splitlines()[0]}")
    return backend


@pytest.fixture
def make_database_url(database_backend: DatabaseBackend) -> Iterator[Callable[..., str]]:
    """``make_database_url(template=None)``: a new database of this test's backend, dropped after the test."""
    made: list[str] = []

    def make(*, template: str | None = None) -> str:
        made.append(database_backend.create(template=template))
        return made[-1]

    yield make
    for url in made:
        database_backend.drop(url)


@pytest.fixture
def database_url(make_database_url: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database on each backend (see the module docstring), also the default for code reading settings."""
    url = make_database_url()
    monkeypatch.setenv("SPLITNAS_DATABASE_URL", url)
    from db.config import get_settings

    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh SQLite database file, also made the default for code that reads the settings."""
    url = f"sqlite:///{tmp_path / 'splitnas.db'}"
    monkeypatch.setenv("SPLITNAS_DATABASE_URL", url)
    from db.config import get_settings

    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
