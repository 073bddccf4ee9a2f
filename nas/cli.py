"""``nas``: search an architecture and its split point, and report on stored search jobs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console

from db.command_line import console_script
from nas.cli_options import field_options, given_values, merge, with_options
from nas.config import SearchConfig
from nas.manifest import Exporter

app = typer.Typer(help="Jointly search a network architecture and its split point(s).", no_args_is_help=True)
entry_point = console_script(app)
console = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option("--db", help="database URL (default: SPLITNAS_DATABASE_URL or SQLite)")]


class SettingsError(ValueError):
    """The settings of a search cannot be used; the message says which and why."""


def read_topology_file(path: Path) -> dict[str, Any]:
    from predictor.topology import TopologyError
    from predictor.topology_file import read_topology

    try:
        return read_topology(path)
    except TopologyError as exc:
        raise SettingsError(f"--topology: {exc}") from None


# every field of SearchConfig is an option of `nas search` (the topology is read from the file it names)
SEARCH_OPTIONS = list(field_options(SearchConfig, readers={"topology": read_topology_file}))


@app.callback()
def main() -> None:
    """Neural architecture search for split computing."""


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings of a YAML/JSON file: a mapping of SearchConfig fields."""
    try:
        values = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SettingsError(f"--config: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"--config: {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise SettingsError(f"--config: {path} must be a mapping of settings (field: value), "
                            f"not a {type(values).__name__}")
    unknown = sorted(set(values) - set(SearchConfig.model_fields))
    if unknown:
        raise SettingsError(f"--config: {path}: unknown setting {unknown[0]!r}; allowed: "
                            f"{', '.join(SearchConfig.model_fields)}")
    return values


def build_config(config_file: Path | None, given: dict[str, Any]) -> SearchConfig:
    """A SearchConfig from an optional YAML/JSON file, then the options given on the command line."""
    values = read_config_file(config_file) if config_file is not None else {}
    try:
        return SearchConfig.model_validate(merge(values, given, SEARCH_OPTIONS))
    except ValidationError as exc:
        problems = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise SettingsError(problems) from None


def _where(loc: tuple[int | str, ...]) -> str:
    """The option a validation error is about (``("gradient", "arch_lr")`` -> ``--gradient-arch-lr``)."""
    path = tuple(map(str, loc))
    for option in SEARCH_OPTIONS:
        if path[: len(option.path)] == option.path:
            return option.flag
    return ".".join(path) or "settings"


def search(
    *,
    config: Annotated[Path | None, typer.Option("--config", help="YAML/JSON file of settings (options win)")] = None,
    output: Annotated[Path | None, typer.Option(help="job JSON file (default: <data dir>/jobs/<uid>.json)")] = None,
    token: Annotated[
        str | None, typer.Option(envvar="SPLITNAS_TOKEN", help="bearer token, when the service requires one to read")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no progress output")] = False,
    db: DbOption = None,
    **fields: Any,
) -> None:
    """Search an architecture and split point; store the job and write it as JSON.

    Every setting of nas.config.SearchConfig is an option; --config FILE sets any of them from a file.
    """
    from db import get_settings
    from nas.data import DataError
    from nas.jobs import run_search, write_job
    from nas.latency_client import LatencyClient, LatencySourceError
    from nas.progress import RichProgress, print_summary
    from nas.searched import weights_path
    from predictor import PredictorError
    from spaces import SpaceError

    try:
        settings = build_config(config, given_values(SEARCH_OPTIONS, fields))
    except SettingsError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    progress = None if quiet else RichProgress(console)
    try:
        with (
            LatencyClient(settings.predictor_url, db_url=db, predictor=settings.predictor, token=token,
                          runtime=settings.runtime) as client,
            progress or nullcontext(),
        ):
            job = run_search(settings, db_url=db, client=client, callback=progress,
                             weights=weights_path(output) if output is not None else None)
    except (LatencySourceError, DataError, SpaceError, PredictorError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    path = write_job(job, output or get_settings().data_dir / "jobs" / f"{job.uid}.json")
    print_summary(console, job)
    console.print(f"job {job.uid} stored in the database and written to {path}")


app.command()(with_options(search, SEARCH_OPTIONS))


@app.command("sweep")
def sweep_command(
    file: Annotated[Path, typer.Argument(help="sweep file (YAML): name, base settings, grid, retries, cpus_per_cell")],
    address: Annotated[str | None, typer.Option(
        help="join this Ray cluster (e.g. 10.0.0.5:6379, or auto for the one `ray start` made here); default: start "
        "a local Ray on this machine's cores, stopped at the end")] = None,
    cpus: Annotated[int | None, typer.Option(min=1, help="cores of the local Ray (default: all)")] = None,
    dry_run: Annotated[bool, typer.Option(help="list the cells and which completed before; run nothing")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    db: DbOption = None,
) -> None:
    """Run a grid of searches, each cell a Ray task stored as a job of the sweep; run again to resume.

    Cells that completed before are skipped, failed and interrupted ones run again; a failed cell is
    retried (`retries` in the file) and then reported without stopping the others.
    """
    from db.config import database_url
    from nas.sweep import SweepError, default_cache, expand, read_sweep, run_sweep

    try:
        spec = read_sweep(file)
        cells = expand(spec, topology_dir=file.parent, supernet_cache=default_cache(spec.name))
    except SweepError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if dry_run:
        done = {job.cell for job in _sweep_jobs(db, spec.name) if job.status == "completed"}
        for cell in cells:
            typer.echo(f"{cell.id}  {'completed' if cell.id in done else 'to run':<9}  {cell.label}")
        return
    if address is not None and database_url(db).startswith("sqlite"):
        console.print("[yellow]warning:[/] the cells' database is a SQLite file: workers on other machines cannot "
                      "reach it (give --db postgresql+psycopg://...)", highlight=False, soft_wrap=True)
    with _sweep_progress(quiet) as progress:
        try:
            outcome = run_sweep(spec, cells, db_url=db, address=address, num_cpus=cpus, progress=progress)
        except (SweepError, ValueError) as exc:
            console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            console.print(f"interrupted: `nas sweep {file}` again resumes it (completed cells are kept)")
            raise typer.Exit(130) from None
    labels = {cell.id: cell.label for cell in cells}
    if outcome.interrupted:
        console.print(f"{outcome.interrupted} cell(s) left running by an earlier run were marked interrupted")
    console.print(f"sweep {spec.name}: {len(cells)} cells, {len(outcome.completed)} completed now, "
                  f"{len(outcome.skipped)} completed before, {len(outcome.failed)} failed"
                  + (f"; {outcome.wall_s:.0f} s, against {outcome.cells_s:.0f} s of the cells' own wall time "
                     f"(one after another): {outcome.cells_s / outcome.wall_s:.2f}x" if outcome.wall_s else ""))
    for failed, error in outcome.failed.items():
        console.print(f"[red]failed[/] {labels[failed]}: {error}", highlight=False, soft_wrap=True)
    console.print(f"report: nas report --sweep {spec.name}" + (f" --db {db}" if db else ""))
    if outcome.failed:
        raise typer.Exit(1)


def _sweep_jobs(db: str | None, name: str) -> list[Any]:
    from nas.jobs import load_jobs

    try:
        return load_jobs(db, sweep=name)
    except ValueError:  # not stored yet: nothing ran
        return []


@contextmanager
def _sweep_progress(quiet: bool) -> Iterator[Any]:
    """A progress bar of cells done, with the running and failed counts; ``None`` when quiet."""
    if quiet:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("cells"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("running {task.fields[running]}  failed {task.fields[failed]}"), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task("cells", total=None, running=0, failed=0)

        def update(done: int, running: int, failed: int, total: int) -> None:
            bar.update(task, completed=done + failed, total=total, running=running, failed=failed)

        yield update


@app.command()
def report(
    output_dir: Annotated[Path, typer.Option(help="where the PNG plots go")] = Path("reports/nas"),
    method: Annotated[str | None, typer.Option(help="only jobs of this method")] = None,
    uid: Annotated[list[str] | None, typer.Option(help="only these jobs (repeatable)")] = None,
    sweep: Annotated[str | None, typer.Option(
        help="a sweep's summary: per scenario and method, T_th met, medians, latency against HWNAS, Pareto plots"
    )] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the jobs as JSON on stdout")] = False,
    db: DbOption = None,
) -> None:
    """Compare stored search jobs: a table, an accuracy-vs-latency scatter plot, and convergence plots."""
    from nas.jobs import load_jobs
    from nas.plots import completed, plot_accuracy_latency, plot_convergence
    from nas.progress import jobs_table
    from predictor.tables import print_table

    if sweep is not None:
        return sweep_report(sweep, output_dir, as_json, db)
    try:
        jobs = load_jobs(db, uids=uid, method=method)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps([job.model_dump(mode="json", by_alias=True) for job in jobs], indent=1))
        return
    if not jobs:
        console.print("no search jobs stored yet: run `nas search` first")
        return
    # piped: no 80-column squeeze; on a narrow terminal wider rather than with cells cut short
    print_table(Console(width=None if sys.stdout.isatty() else 120), jobs_table(jobs))
    done = completed(jobs)
    if not done:
        return
    paths = [plot_accuracy_latency(done, output_dir / "accuracy_latency.png")]
    paths += [plot_convergence(job, output_dir / f"convergence_{job.method}_{job.uid[:8]}.png")
              for job in done if any(r.get("convergence") is not None for r in job.search_records)]
    for path in paths:
        console.print(f"wrote {path}")


def sweep_report(name: str, output_dir: Path, as_json: bool, db: str | None) -> None:
    """``nas report --sweep NAME``: the summary table (or JSON with every job) and one Pareto plot per scenario."""
    from nas.sweep_report import load_sweep, plot_scenarios, summarize, summary_table
    from predictor.tables import print_table

    try:
        axes, jobs = load_sweep(db, name)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    rows = summarize(jobs, axes)
    if as_json:
        typer.echo(json.dumps({"sweep": name, "summary": [row.as_dict() for row in rows],
                               "jobs": [job.model_dump(mode="json", by_alias=True) for job in jobs]}, indent=1))
        return
    if not rows:
        console.print(f"sweep {name} has no completed cells yet: run `nas sweep FILE`")
        return
    print_table(Console(width=None if sys.stdout.isatty() else 120), summary_table(name, rows))
    for path in plot_scenarios(jobs, axes, output_dir):
        console.print(f"wrote {path}")


@app.command("export")
def export(
    job: Annotated[str, typer.Argument(help="the search job: its uid (in --db) or its JSON file")],
    out: Annotated[Path, typer.Option("--out", help="directory for the parts and manifest.json")],
    exporter: Annotated[
        Exporter, typer.Option(help="ONNX exporter: legacy (TorchScript-based, fast) or dynamo (torch.export)")
    ] = "legacy",
    verify: Annotated[bool, typer.Option(help="run the exported chain once and record its deviation")] = True,
    db: DbOption = None,
) -> None:
    """Cut a searched network at its split point(s): every part as ONNX and TorchScript, plus manifest.json
    (devices, links, payload codec and shapes, predicted latency of every part and link)."""
    from nas.export import ExportError, export_job
    from nas.jobs import load_jobs
    from nas.results import ResultError, read_job

    path = Path(job)
    try:
        found = read_job(json.loads(path.read_text())) if path.suffix == ".json" and path.is_file() \
            else load_jobs(db, uids=[job])[0]
    except (ValueError, OSError) as exc:  # unknown uid, unreadable file or result
        message = str(exc) if isinstance(exc, ResultError | ValueError) else f"cannot read {path}: {exc}"
        raise ExportError(f"{message} (give a job uid from `nas report` or a job JSON file)") from None
    with console.status(f"exporting the parts of job {found.uid}"):
        manifest = export_job(found, out, exporter=exporter, verify=verify)
    for part in manifest.parts:
        console.print(f"part {part.index} on {part.device}: {out / part.onnx}, {out / part.torchscript} "
                      f"({part.input_shape} -> {part.output_shape}, predicted {part.predicted_ms:.2f} ms)")
    for link in manifest.links:
        console.print(f"link {link.from_} -> {link.to}: {link.payload_bytes} bytes {link.codec.name} at "
                      f"{link.bandwidth_mbps:g} Mbit/s, predicted {link.predicted_ms:.2f} ms")
    checked = ", ".join(f"{k.removesuffix('_max_abs_error')} {v:.2g}" for k, v in manifest.verification.items())
    console.print(f"predicted total {manifest.predicted_total_ms:.2f} ms; wrote {out / 'manifest.json'}"
                  + (f" (largest deviation from torch: {checked})" if checked else ""))
