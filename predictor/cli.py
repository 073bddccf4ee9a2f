"""``predictor``: fit, evaluate and query latency predictors."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Fit latency predictors to a device's measurements, evaluate them, predict.", no_args_is_help=True
)


@app.callback()
def main() -> None:
    """Latency predictors of splitnas."""
