"""``profiler``: measure a device's latencies, import public tables, list and export measurements."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Measure every candidate block of a search space on this device and store or upload the results.",
    no_args_is_help=True,
)


@app.callback()
def main() -> None:
    """Device agent of splitnas."""
