"""Schema migrations: Alembic up to head, by one process at a time; the others wait, then find head.

The lock is a file beside a SQLite database (``<file>.migrate.lock``) or a PostgreSQL advisory lock:
without it, processes that open a new database together (``uvicorn --workers 2``) all create the tables
and all but one fail. A new SQLite file is switched to WAL mode under the same lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy import Connection, Engine, text

from db.urls import sqlite_file

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_TIMEOUT_S = 600  # a migration of a large table may take minutes; waiting longer means a stuck process
ADVISORY_LOCK_KEY = int.from_bytes(b"splitnas", "big") >> 1  # one signed 64-bit key for every splitnas database


def alembic_config(url: str) -> Config:
    """The Alembic configuration of splitnas's migrations, for ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _ready(engine: Engine) -> bool:
    """Whether the database is at head (and a SQLite file in WAL mode): nothing to do under the lock."""
    with engine.connect() as connection:
        wal = engine.dialect.name != "sqlite" or sqlite_file(engine.url) is None or (
            connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        )
        if not wal:
            return False
        return MigrationContext.configure(connection).get_current_revision() == head_revision()


def upgrade_schema(engine: Engine) -> None:
    """Migrate ``engine``'s database to head (a no-op when already there, without taking the lock)."""
    if _ready(engine):
        return
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with migration_lock(engine) as connection, connection.begin():
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection to ``engine``'s database, held while no other process migrates it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text(f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'"))
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            connection.commit()  # a session-level lock outlives the transaction that took it
            try:
                yield connection
            finally:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
                connection.commit()
        return
    path = sqlite_file(engine.url)
    if path is None:  # in memory: one process by definition
        with engine.connect() as connection:
            yield connection
        return
    with FileLock(f"{path}.migrate.lock", timeout=LOCK_TIMEOUT_S), engine.connect() as connection:
        # WAL (readers such as the service never block the agent's writes) is kept by the file; switching to it
        # needs the file to itself, which processes that all open a new file at once would contend for
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        connection.commit()
        yield connection
