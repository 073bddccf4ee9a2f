"""``splitnas-api``: run the latency service and manage its tokens."""

from __future__ import annotations

import typer

app = typer.Typer(help="The splitnas latency service.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Latency service of splitnas."""
