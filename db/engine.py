"""One engine per database URL, one ``session_scope()``; the schema is migrated when an engine is first made."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from db.config import database_url
from db.urls import check_database_url, sqlite_file


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")  # WAL mode is a property of the file, set once by db.migrate
    cursor.close()


def make_engine(url: str) -> Engine:
    """A new engine for ``url``, not migrated; a SQLite file gets foreign keys and its default directory.

    Raises DatabaseURLError for a URL splitnas cannot use (see db.urls).
    """
    parsed = check_database_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    path = sqlite_file(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)  # only the default directory can be missing here
    engine = create_engine(parsed, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _engine(url: str) -> Engine:
    from db.migrate import upgrade_schema  # alembic is imported only when an engine is made

    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = make_engine(url)
            upgrade_schema(engine)
            _engines[url] = engine
        return engine


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: settings), with the schema migrated to the newest revision."""
    return _engine(database_url(url))


@cache
def _session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success, rolls back on error, and always closes."""
    session = _session_factory(database_url(url))()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_engine(url: str | None = None) -> None:
    """Close the pooled connections of ``url``'s engine and forget it (the next use reconnects, checks the schema)."""
    url = database_url(url)
    with _engines_lock:
        engine = _engines.pop(url, None)
    _session_factory.cache_clear()
    if engine is not None:
        engine.dispose()
