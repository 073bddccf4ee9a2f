"""Fresh databases for tests on each supported backend: SQLite files, and databases on a PostgreSQL server.

The fixtures of tests/conftest.py (``database_backend``, ``make_database_url``, ``database_url``) hand
these out; a test that needs a database takes one of those fixtures rather than these classes.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from pathlib import Path
from typing import Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from db.engine import dispose_engine

POSTGRES_URL_ENV = "SPLITNAS_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


class DatabaseBackend(Protocol):
    """Makes and drops databases of one backend."""

    name: str

    def create(self, *, template: str | None = None) -> str:
        """The URL of a new empty database, or of a copy of the database at ``template``."""
        ...

    def drop(self, url: str) -> None:
        """Close this process's connections to ``url`` and delete the database."""
        ...


class SQLiteBackend:
    """Databases as files in one directory."""

    name = "sqlite"

    def __init__(self, directory: Path):
        self.directory = directory
        self._numbers = itertools.count()

    def create(self, *, template: str | None = None) -> str:
        path = self.directory / f"db{next(self._numbers)}.db"
        if template is not None:
            dispose_engine(template)  # closes the pooled connections: the WAL is checkpointed into the file
            shutil.copyfile(make_url(template).database, path)
        return f"sqlite:///{path}"

    def drop(self, url: str) -> None:
        dispose_engine(url)
        path = Path(make_url(url).database)
        for file in path.parent.glob(f"{path.name}*"):  # the database, its WAL, shared memory and migration lock
            file.unlink()


class PostgresBackend:
    """Databases on the PostgreSQL server at ``admin_url`` (any database of it, used to create the others)."""

    name = "postgresql"

    def __init__(self, admin_url: str):
        self.admin_url = make_url(admin_url)
        self._admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def ping(self) -> None:
        with self._admin.connect() as connection:
            connection.execute(text("SELECT 1"))

    def create(self, *, template: str | None = None) -> str:
        name = f"test_{uuid.uuid4().hex[:16]}"
        clause = ""
        if template is not None:
            dispose_engine(template)  # a template must have no open connection while it is copied
            clause = f' TEMPLATE "{make_url(template).database}"'
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        dispose_engine(url)
        with self._admin.connect() as connection:  # FORCE: also ends what subprocesses left connected
            connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
