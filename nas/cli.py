"""``nas``: search an architecture and its split point, and report on stored search jobs."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console

from db.command_line import console_script

app = typer.Typer(help="Jointly search a network architecture and its split point(s).", no_args_is_help=True)
entry_point = console_script(app)
console = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option("--db", help="database URL (default: SPLITNAS_DATABASE_URL or SQLite)")]


@app.callback()
def main() -> None:
    """Neural architecture search for split computing."""


def parse_floats(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected numbers separated by commas", param_hint=option) from None


def parse_epochs(text: str) -> dict[str, int]:
    """``30,90,300`` -> pre-training, search and re-training epochs."""
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise typer.BadParameter(f"{text!r}: expected three epoch counts 'PRETRAIN,SEARCH,RETRAIN', e.g. 30,90,300",
                                 param_hint="--epochs")
    return dict(zip(("pretrain_epochs", "search_epochs", "retrain_epochs"), map(int, parts), strict=True))


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["alpha=1.5", "population_size=10"]`` -> {"alpha": 1.5, "population_size": 10} (values as YAML)."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r}: expected KEY=VALUE", param_hint="--searcher-option")
        options[key.strip()] = yaml.safe_load(value)
    return options


def build_config(config_file: Path | None, overrides: dict[str, Any]) -> Any:
    """A SearchConfig from an optional YAML/JSON file, then the flags given on the command line."""
    from nas.config import SearchConfig

    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            values = yaml.safe_load(config_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise typer.BadParameter(f"cannot read {config_file}: {exc}", param_hint="--config") from None
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    try:
        return SearchConfig(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems) from None


@app.command()
def search(
    method: Annotated[
        str | None, typer.Option(help="nasc, hwnas, hwnas-nodropout, random, evolution, gradient")
    ] = None,
    space: Annotated[str | None, typer.Option(help="search space (fbnet-cifar100, fbnet-extended-cifar100)")] = None,
    head_device: Annotated[str | None, typer.Option(help="device running the head")] = None,
    tail_device: Annotated[str | None, typer.Option(help="device running the tail")] = None,
    bandwidth_mbps: Annotated[float | None, typer.Option(help="link throughput r in Mbit/s")] = None,
    bits: Annotated[int | None, typer.Option(help="bits per transmitted element q: 8, 16 or 32")] = None,
    loss: Annotated[float | None, typer.Option(help="packet-loss rate p of the link")] = None,
    t_th: Annotated[float | None, typer.Option("--t-th", help="latency threshold T_th in ms")] = None,
    predictor_url: Annotated[
        str | None, typer.Option(help="latency service, e.g. http://host:8000 (default: read --db directly)")
    ] = None,
    predictor: Annotated[str | None, typer.Option(help="predictor kind filling the tables (auto, lookup, ...)")] = None,
    data: Annotated[str | None, typer.Option(help="'digits', 'synthetic', or a CIFAR-100 directory")] = None,
    data_limit: Annotated[int | None, typer.Option(min=1, help="use at most this many images per split")] = None,
    seed: Annotated[int | None, typer.Option(help="seed of weights, sampling and searchers")] = None,
    epochs: Annotated[str | None, typer.Option(help="PRETRAIN,SEARCH,RETRAIN epochs (reference 30,90,300)")] = None,
    steps_per_epoch: Annotated[int | None, typer.Option(min=1, help="cap on the steps of every epoch")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1)] = None,
    lambda_x: Annotated[int | None, typer.Option(min=1, help="paths sampled per weight step")] = None,
    lambda_theta: Annotated[int | None, typer.Option(min=2, help="paths sampled per distribution step")] = None,
    dropout_set: Annotated[str | None, typer.Option(help="packet-loss rates averaged in l_SC, e.g. 0,0.1,0.2")] = None,
    train_dropout: Annotated[float | None, typer.Option(help="dropout at the split while training weights")] = None,
    eps_loss: Annotated[float | None, typer.Option(help="weight of l_SC in the objective")] = None,
    eps_lat: Annotated[float | None, typer.Option(help="weight of the latency hinge (per ms)")] = None,
    lr: Annotated[float | None, typer.Option(help="supernet learning rate")] = None,
    retrain_lr: Annotated[float | None, typer.Option(help="re-training learning rate")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="weight decay of both stages that train")] = None,
    searcher_option: Annotated[
        list[str] | None, typer.Option(help="searcher setting KEY=VALUE (repeatable), e.g. alpha=1.5")
    ] = None,
    supernet_cache: Annotated[
        Path | None, typer.Option(help="pre-trained supernet file: reused when it matches, written otherwise")
    ] = None,
    topology: Annotated[
        Path | None, typer.Option(help="chain or mesh of devices (YAML, see examples/topologies/): --method gradient")
    ] = None,
    latency_loss: Annotated[str | None, typer.Option(help="gradient method: squared, hinge or log")] = None,
    latency_weight: Annotated[
        float | None, typer.Option(help="gradient method: lambda_2, the hinge weight, or the log form's beta")
    ] = None,
    search_splits: Annotated[
        bool | None, typer.Option("--search-splits/--fixed-splits", help="gradient method: search the split points")
    ] = None,
    arch_lr: Annotated[float | None, typer.Option(help="gradient method: architecture learning rate")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML/JSON file of settings (flags win)")] = None,
    output: Annotated[Path | None, typer.Option(help="job JSON file (default: <data dir>/jobs/<uid>.json)")] = None,
    token: Annotated[
        str | None, typer.Option(envvar="SPLITNAS_TOKEN", help="bearer token, when the service requires one to read")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no progress output")] = False,
    db: DbOption = None,
) -> None:
    """Search an architecture and split point; store the job and write it as JSON."""
    from db import get_settings
    from nas.data import DataError
    from nas.jobs import run_search, write_job
    from nas.latency_client import LatencyClient, LatencySourceError
    from nas.progress import RichProgress, print_summary
    from predictor import PredictorError
    from spaces import SpaceError

    overrides: dict[str, Any] = {
        "method": method, "space": space, "head_device": head_device, "tail_device": tail_device,
        "bandwidth_mbps": bandwidth_mbps, "bits": bits, "loss": loss, "t_th": t_th, "predictor_url": predictor_url,
        "predictor": predictor, "data": data, "data_limit": data_limit, "seed": seed,
        "steps_per_epoch": steps_per_epoch, "batch_size": batch_size, "lambda_x": lambda_x,
        "lambda_theta": lambda_theta, "train_dropout": train_dropout, "eps_loss": eps_loss, "eps_lat": eps_lat,
        "device": device, "supernet_cache": str(supernet_cache) if supernet_cache else None,
        "dropout_set": parse_floats(dropout_set, "--dropout-set") if dropout_set else None,
        "searcher_options": parse_options(searcher_option) or None,
        "supernet_optimizer": {k: v for k, v in {"lr": lr, "weight_decay": weight_decay}.items() if v is not None}
        or None,
        "retrain_optimizer": {k: v for k, v in {"lr": retrain_lr, "weight_decay": weight_decay}.items()
                              if v is not None} or None,
        **(parse_epochs(epochs) if epochs else {}),
        "gradient": {k: v for k, v in {"latency_loss": latency_loss, "latency_weight": latency_weight,
                                       "search_splits": search_splits, "arch_lr": arch_lr}.items()
                     if v is not None} or None,
    }
    if topology is not None:
        from nas.topology import TopologyError, read_topology

        try:
            overrides["topology"] = read_topology(topology)
        except TopologyError as exc:
            raise typer.BadParameter(str(exc), param_hint="--topology") from None
    settings = build_config(config, overrides)
    progress = None if quiet else RichProgress(console)
    try:
        with (
            LatencyClient(settings.predictor_url, db_url=db, predictor=settings.predictor, token=token) as client,
            progress or nullcontext(),
        ):
            job = run_search(settings, db_url=db, client=client, callback=progress)
    except (LatencySourceError, DataError, SpaceError, PredictorError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    path = write_job(job, output or get_settings().data_dir / "jobs" / f"{job['uid']}.json")
    print_summary(console, job)
    console.print(f"job {job['uid']} stored in the database and written to {path}")


@app.command()
def report(
    output_dir: Annotated[Path, typer.Option(help="where the PNG plots go")] = Path("reports/nas"),
    method: Annotated[str | None, typer.Option(help="only jobs of this method")] = None,
    uid: Annotated[list[str] | None, typer.Option(help="only these jobs (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the jobs as JSON on stdout")] = False,
    db: DbOption = None,
) -> None:
    """Compare stored search jobs: a table, an accuracy-vs-latency scatter plot, and convergence plots."""
    from nas.jobs import load_jobs
    from nas.plots import completed, plot_accuracy_latency, plot_convergence
    from nas.progress import jobs_table
    from predictor.tables import print_table

    try:
        jobs = load_jobs(db, uids=uid, method=method)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(jobs, indent=1, default=str))
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
    paths += [plot_convergence(job, output_dir / f"convergence_{job['method']}_{job['uid'][:8]}.png")
              for job in done if any(r.get("stage") == "search" and "convergence" in r for r in job["history"])]
    for path in paths:
        console.print(f"wrote {path}")


@app.command()
def pipeline(
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
    bandwidth_mbps: Annotated[
        float | None, typer.Option(help="link rate (default: 8 with HW-NAS-Bench, else 2 Mbit/s)")
    ] = None,
    t_th: Annotated[float | None, typer.Option(help="latency threshold in ms (default: 30, or derived)")] = None,
    epochs: Annotated[str, typer.Option(help="PRETRAIN,SEARCH,RETRAIN epochs of each search")] = "2,6,4",
    steps_per_epoch: Annotated[int, typer.Option(min=1, help="cap on the steps of every epoch")] = 25,
    seed: Annotated[int, typer.Option(help="seed of sampling, weights and searchers")] = 0,
    db: DbOption = None,
) -> None:
    """The main job end to end: profile this CPU, fit predictors, serve them, search, write a report.

    Safe to run again: measured entries are reused (--resume), the pre-trained supernet is cached.
    """
    from nas.pipeline import Pipeline, PipelineConfig, PipelineError

    config = PipelineConfig(
        report_dir=report_dir, db=db, device=device, space=space, models=models, min_run_time=min_run_time,
        max_run_time=max_run_time, hwnasbench=hwnasbench, port=port, bandwidth_mbps=bandwidth_mbps, t_th=t_th,
        epochs=epochs, steps_per_epoch=steps_per_epoch, seed=seed,
    )
    try:
        Pipeline(config, console=Console()).run()
    except PipelineError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
