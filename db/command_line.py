"""What the console scripts run: a user's mistake is one ``error:`` line on stderr and exit status 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from db import urls
from db.config import get_settings
from db.errors import DatabaseURLError
from spaces.errors import UserError

if TYPE_CHECKING:
    # typer vendors click (it no longer depends on it): get_command gives typer's Command, not click's
    from typer._click import Command


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


def _check_db_option(command: Command) -> None:
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
    """DatabaseURLError, naming where the URL came from, unless ``--db`` (or SPLITNAS_DATABASE_URL) can work."""
    text = override or get_settings().database_url
    if not text:
        return
    try:
        urls.check_database_url(text)
    except DatabaseURLError as exc:
        raise DatabaseURLError(f"{'--db' if override else 'SPLITNAS_DATABASE_URL'}: {exc}") from None
