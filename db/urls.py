"""Database URLs: the backends splitnas supports, and one clear error for every URL it cannot use."""

from __future__ import annotations

import importlib
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from db.config import get_settings
from db.errors import DatabaseURLError

SUPPORTED_BACKENDS = ("sqlite", "postgresql+psycopg")
EXAMPLES = "sqlite:////absolute/path/splitnas.db or postgresql+psycopg://user:password@host:5432/splitnas"


def check_database_url(url: str) -> URL:
    """``url`` parsed, or DatabaseURLError saying what is wrong and what is allowed."""
    if "://" not in url:
        raise DatabaseURLError(f"{url!r} is not a database URL; for a SQLite file write sqlite:///{url}")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseURLError(f"{url!r} is not a valid database URL; examples: {EXAMPLES}") from None
    backend = parsed.drivername
    if backend in ("sqlite", "sqlite+pysqlite"):
        _check_sqlite_directory(parsed)
    elif backend == "postgresql+psycopg":
        try:
            importlib.import_module("psycopg")  # the driver SQLAlchemy loads for this URL
        except ImportError:
            raise DatabaseURLError('PostgreSQL needs the psycopg driver: pip install "splitnas[postgres]"') from None
    else:
        raise DatabaseURLError(
            f"unsupported database backend {backend!r} in {parsed.render_as_string(hide_password=True)}; "
            f"supported: {', '.join(SUPPORTED_BACKENDS)} ({EXAMPLES})"
        )
    return parsed


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL, None for an in-memory database."""
    if url.database in (None, "", ":memory:") or url.database.startswith("file:"):
        return None
    return Path(url.database)


def is_default_directory(directory: Path) -> bool:
    """Whether ``directory`` is the data directory that splitnas creates on first use."""
    return directory.resolve() == get_settings().data_dir.expanduser().resolve()


def _check_sqlite_directory(url: URL) -> None:
    path = sqlite_file(url)
    if path is None or path.parent.is_dir() or is_default_directory(path.parent):
        return
    what = "is not a directory" if path.parent.exists() else "does not exist"
    raise DatabaseURLError(
        f"directory {path.parent} of the SQLite database {path.name} {what}; create it first "
        f"(only the default location {get_settings().data_dir} is created)"
    )
