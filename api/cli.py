"""``splitnas-api``: run the latency service and manage its bearer tokens."""

from __future__ import annotations

import os
import re
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from db import database_url, get_settings, queries, session_scope
from db.command_line import console_script

app = typer.Typer(help="The splitnas latency service.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens for the write endpoints (stored hashed).", no_args_is_help=True)
entry_point = console_script(app)
app.add_typer(token_app, name="token")
console = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option("--db", help="database URL (default: SPLITNAS_DATABASE_URL or SQLite)")]
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@app.callback()
def main() -> None:
    """Latency service of splitnas."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on (default: SPLITNAS_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: SPLITNAS_API_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes (each holds its own table cache)")] = 1,
    access_log: Annotated[bool, typer.Option(help="log every request")] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    db: DbOption = None,
) -> None:
    """Serve ``api.main:app`` with uvicorn; the database schema is migrated on startup."""
    import uvicorn

    if db:
        os.environ["SPLITNAS_DATABASE_URL"] = db  # the workers build the app from the environment
        get_settings.cache_clear()
    settings = get_settings()
    uvicorn.run(
        "api.main:app", host=host or settings.api_host, port=port or settings.api_port, workers=workers,
        access_log=access_log, log_level=log_level,
    )


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="a name for the token, e.g. raspi4-agent")],
    device: Annotated[str | None, typer.Option(help="allow writes for this device only (default: all)")] = None,
    db: DbOption = None,
) -> None:
    """Create a token and print it once on stdout (only its hash is stored)."""
    for label, value in (("NAME", name), ("--device", device)):
        if value is not None and not NAME_PATTERN.match(value):
            raise typer.BadParameter(f"{value!r}: use 1-64 letters, digits, '_', '.' or '-'", param_hint=label)
    with session_scope(database_url(db)) as session:
        if queries.get_token(session, name=name) is not None:
            console.print(f"[red]a token named {name!r} exists already[/]: revoke it or choose another name")
            raise typer.Exit(1)
        token = queries.create_token(session, name=name, device=device)
    scope = f"device {device!r}" if device else "every device"
    console.print(f"token {name!r} created, may write for {scope}; it is shown only now:")
    typer.echo(token)


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="the token's name")], db: DbOption = None) -> None:
    """Revoke a token: requests with it get 401 from then on."""
    with session_scope(database_url(db)) as session:
        if not queries.revoke_token(session, name=name):
            known = ", ".join(t.name for t in queries.list_tokens(session)) or "none"
            console.print(f"[red]no token named {name!r}[/]; tokens: {known}")
            raise typer.Exit(1)
    console.print(f"token {name!r} revoked")


@token_app.command("list")
def token_list(db: DbOption = None) -> None:
    """List tokens: name, device scope, state, creation time (never the tokens themselves)."""
    table = Table("name", "device", "state", "created")
    with session_scope(database_url(db)) as session:
        for token in queries.list_tokens(session):
            table.add_row(token.name, token.device or "(every device)", "revoked" if token.revoked else "active",
                          f"{token.created_at:%Y-%m-%d %H:%M}")
    Console().print(table)
