"""``splitnas-pipeline`` (or ``python -m pipeline``): the main job end to end, what ``scripts/demo.sh`` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from db.command_line import console_script
from nas.cli_options import field_options, given_values, with_options
from nas.config import SearchConfig
from pipeline.run import DEMO_SEARCH, PIPELINE_FIELDS, Pipeline, PipelineConfig, PipelineError

app = typer.Typer(add_completion=False)
entry_point = console_script(app)
console = Console(stderr=True)

# every SearchConfig field the pipeline does not choose itself, as --search-<field> (e.g. --search-t-th)
SEARCH_OPTIONS = [
    option for option in field_options(SearchConfig, prefix=("search",), defaults=SearchConfig(**DEMO_SEARCH))
    if option.path[1] not in PIPELINE_FIELDS
]


def pipeline(
    *,
    report_dir: Annotated[Path, typer.Option(help="where the report (index.html and PNGs) goes")] = Path(
        "reports/demo"
    ),
    device: Annotated[str, typer.Option(help="name this machine's CPU is stored under")] = "local-cpu",
    space: Annotated[str, typer.Option(help="search space to profile and search")] = "fbnet-cifar100",
    models: Annotated[int, typer.Option(min=0, help="whole architectures (and heads) to measure")] = 24,
    min_run_time: Annotated[float, typer.Option(min=0.001, help="seconds of timing per measured entry")] = 0.3,
    max_run_time: Annotated[float, typer.Option(min=0.001, help="seconds per entry while it stays noisy")] = 1.5,
    hwnasbench: Annotated[
        Path | None,
        typer.Option(envvar="HWNASBENCH", help="HW-NAS-Bench data: adds raspi4 (head) and edgegpu (tail) devices"),
    ] = None,
    port: Annotated[int, typer.Option(help="port of the service on 127.0.0.1 during the search")] = 8765,
    db: Annotated[
        str | None, typer.Option("--db", help="database URL (default: SPLITNAS_DATABASE_URL or SQLite)")
    ] = None,
    **fields: Any,
) -> None:
    """The main job end to end: profile this CPU, fit predictors, serve them, search, write a report.

    Safe to run again: measured entries are reused (--resume), the pre-trained supernet is cached. The
    searches' settings are the demo's (2 / 6 / 4 epochs of 25 steps on 1,000 digits); --search-<field>
    sets any other SearchConfig field, e.g. --search-t-th 20 --search-bandwidth-mbps 4.
    """
    search = given_values(SEARCH_OPTIONS, fields).get("search", {})
    config = PipelineConfig(
        report_dir=report_dir, db=db, device=device, space=space, models=models, min_run_time=min_run_time,
        max_run_time=max_run_time, hwnasbench=hwnasbench, port=port, search=search,
    )
    try:
        Pipeline(config, console=Console()).run()
    except PipelineError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


app.command()(with_options(pipeline, SEARCH_OPTIONS))
