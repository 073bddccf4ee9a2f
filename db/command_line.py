"""What the console scripts run: a user's mistake is one ``error:`` line on stderr and exit status 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import typer
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from db.config import get_settings
from spaces.errors import UserError

BACKENDS = ("sqlite", "postgresql")
URL_FORMS = "sqlite:///PATH for a SQLite file or postgresql+psycopg://USER:PASSWORD@HOST/DATABASE"


def console_script(app: typer.Typer) -> Callable[[], None]:
    """The entry point of ``app``: checks every command's ``--db`` before it runs; UserError as one line."""

    def main() -> None:
        command = typer.main.get_command(app)
        _check_db_option(command)
        try:
            command()
        except UserError as exc:
            sys.stderr.write(f"error: {exc}\n")
            raise SystemExit(2) from None

    return main


def _check_db_option(command: click.Command) -> None:
    """Wrap the callback of ``command`` and its subcommands that take ``--db`` with check_database_url."""
    for sub in getattr(command, "commands", {}).values():
        _check_db_option(sub)
    callback = command.callback
    if callback is None or not any(param.name == "db" for param in command.params):
        return

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check_database_url(kwargs.get("db"))
        return callback(*args, **kwargs)

    command.callback = checked


def check_database_url(override: str | None) -> None:
    """UserError unless ``--db`` (or SPLITNAS_DATABASE_URL) can work: a URL of SQLite or PostgreSQL whose driver
    is installed, and for SQLite a file in a directory that exists (only the default location is created)."""
    settings = get_settings()
    source = "--db" if override else "SPLITNAS_DATABASE_URL" if settings.database_url else None
    if source is None:
        return
    text = override or settings.database_url or ""
    try:
        url = make_url(text)
    except ArgumentError:
        hint = f"sqlite:///{Path(text).expanduser().absolute()} for that SQLite file" if text else URL_FORMS
        raise UserError(f"{source} {text!r} is not a database URL: use {hint}") from None
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() not in BACKENDS:
        raise UserError(f"{source} {shown!r}: unsupported database {url.get_backend_name()!r}; use {URL_FORMS}")
    _check_driver(url, source, shown)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        directory = Path(url.database).expanduser().absolute().parent
        if not directory.is_dir() and directory != settings.data_dir.expanduser().absolute():
            raise UserError(
                f"{source} {shown!r}: directory {directory} does not exist; create it first (only the default "
                f"location {settings.data_dir} is created)"
            )


def _check_driver(url: URL, source: str, shown: str) -> None:
    try:
        url.get_dialect().import_dbapi()
    except (ImportError, NoSuchModuleError):
        install = ""
        if url.get_backend_name() == "postgresql":
            install = " (install the postgres extra: pip install 'splitnas[postgres]'; URLs postgresql+psycopg://...)"
        driver = url.get_driver_name()
        raise UserError(f"{source} {shown!r}: database driver {driver!r} is not installed{install}") from None
