"""Terminal tables printed whole: wider than the terminal rather than with a name or a number cut short."""

from __future__ import annotations

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` at least as wide as its unwrappable cells need (rich would end them with '…')."""
    needed = Measurement.get(console, console.options.update_width(10_000), table).minimum
    width = console.width
    console.width = max(width, needed)
    try:
        console.print(table)
    finally:
        console.width = width
