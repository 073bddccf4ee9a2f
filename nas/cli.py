"""``nas``: search architectures and split points, report on search jobs."""

from __future__ import annotations

import typer

app = typer.Typer(help="Jointly search a network architecture and its split point(s).", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Neural architecture search for split computing."""
