"""``profiler``: measure a device's latencies, import public tables, list and export measurements."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from db import database_url, get_settings, session_scope
from db.command_line import console_script
from db.records import DEFAULT_RUNTIME
from profiler.load import BUSY_SHARE
from profiler.runtimes import runtime_names
from profiler.runtimes.onnx_runtime import LEVELS
from profiler.settings import TimingSettings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

app = typer.Typer(
    help="Measure every candidate block of a search space on this device and store or upload the results.",
    no_args_is_help=True,
)
entry_point = console_script(app)
console = Console(stderr=True)
TIMING = TimingSettings()  # the defaults

DbOption = Annotated[str | None, typer.Option("--db", help="database URL (default: SPLITNAS_DATABASE_URL or SQLite)")]
JsonOption = Annotated[bool, typer.Option("--json", help="print a machine-readable summary on stdout")]
ServerOption = Annotated[str | None, typer.Option("--server", help="service URL to upload to, e.g. http://host:8000")]
TokenOption = Annotated[str | None, typer.Option("--token", envvar="SPLITNAS_TOKEN", help="bearer token for --server")]
SpoolOption = Annotated[
    Path | None, typer.Option("--spool", help="directory of batches awaiting upload (default: <data dir>/spool)")
]
RetriesOption = Annotated[int, typer.Option("--retries", min=0, help="upload retries per batch")]
BackoffOption = Annotated[float, typer.Option("--backoff", min=0.0, help="first retry delay in s, doubled each time")]


@app.callback()
def main() -> None:
    """Device agent of splitnas."""


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=1, default=str) + "\n")


def parse_layers(text: str | None) -> tuple[int, ...] | None:
    """``"0,1,5-7"`` -> (0, 1, 5, 6, 7)."""
    if not text:
        return None
    layers: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            layers += range(int(first), int(last or first) + 1)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected layer indices like '0,1' or '0-3,7'") from None
    return tuple(layers)


def _uploader(server: str | None, token: str | None, retries: int, backoff: float):
    from profiler.upload import Uploader

    if server is None:
        return None
    if not token:
        raise typer.BadParameter("--server needs --token (or SPLITNAS_TOKEN)", param_hint="--token")
    return Uploader(server, token, retries=retries, backoff=backoff)


def _require_known_device(session: Session, device: str | None) -> None:
    """Exit with one line naming the known devices when ``device`` is not one of them."""
    from db import queries

    known = queries.device_names(session)
    if device is not None and device not in known:
        console.print(
            f"unknown device {device!r}; known devices: {', '.join(known) or 'none yet (profiler run stores one)'}",
            highlight=False, soft_wrap=True,
        )
        raise typer.Exit(2)


@app.command()
def run(
    device: Annotated[
        str | None, typer.Option(help="device name to store measurements under (default: local-cpu / local-cuda)")
    ] = None,
    space: Annotated[str, typer.Option(help="search space to profile")] = "fbnet-cifar100",
    device_kind: Annotated[str | None, typer.Option(help="cpu, gpu, mobile, ... (default from --torch-device)")] = None,
    models: Annotated[int, typer.Option(min=0, help="sampled architectures to time end to end, each with a head")] = 0,
    sample_configs: Annotated[int, typer.Option(min=0, help="extra block configurations around the space")] = 0,
    seed: Annotated[int, typer.Option(help="seed of the model and config samples")] = 0,
    layers: Annotated[str | None, typer.Option(help="only these layers, e.g. '0,1' or '0-3' (default: all)")] = None,
    max_entries: Annotated[int | None, typer.Option(min=1, help="measure at most this many entries")] = None,
    resume: Annotated[bool, typer.Option(help="skip entries already measured on this device and environment")] = False,
    min_run_time: Annotated[
        float, typer.Option(min=0.001, help="seconds of timing per entry (all passes)")
    ] = TIMING.min_run_time,
    max_run_time: Annotated[
        float, typer.Option(min=0.001, help="seconds per entry while noisy (all passes)")
    ] = TIMING.max_run_time,
    threshold: Annotated[float, typer.Option(min=0.0001, help="relative uncertainty above which an entry is noisy")] = (
        TIMING.threshold
    ),
    warmup: Annotated[int, typer.Option(min=0, help="untimed calls before timing each entry")] = TIMING.warmup,
    copies: Annotated[int, typer.Option(min=1, help="independent copies an op is timed as")] = TIMING.copies,
    passes: Annotated[int, typer.Option(min=1, help="passes over the plan; each entry keeps its median pass")] = (
        TIMING.passes
    ),
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads (fixed and recorded)")] = TIMING.threads,
    torch_device: Annotated[str, typer.Option(help="torch device to run on: cpu, cuda, cuda:1")] = "cpu",
    runtime: Annotated[str, typer.Option(
        help=f"what runs the networks: {', '.join(runtime_names())} (ONNX runtimes time an ONNX export of each "
        "op and model, cached on disk)",
    )] = DEFAULT_RUNTIME,
    graph_optimization: Annotated[str | None, typer.Option(
        help=f"ONNX Runtime's graph optimization level: {', '.join(LEVELS)} (default: all; recorded)",
    )] = None,
    onnx_cache: Annotated[Path | None, typer.Option(
        help="directory of cached ONNX exports (default: $SPLITNAS_ONNX_CACHE or ~/.cache/splitnas/onnx)",
    )] = None,
    clock: Annotated[
        str, typer.Option(help="wall (what a user waits for) or thread (CPU time of the timing thread; one CPU thread)")
    ] = TIMING.clock,
    caches: Annotated[
        str, typer.Option(help="warm (back-to-back executions) or cold (flush the caches before every execution)")
    ] = TIMING.caches,
    wait: Annotated[float, typer.Option(
        min=0.0, help="idle seconds before each single call that times a --models network after waiting, as a part "
        "fed by a link runs (0: not timed)",
    )] = TIMING.wait,
    trace_dir: Annotated[Path | None, typer.Option(help="also write torch.profiler traces per entry here")] = None,
    cool_below: Annotated[float | None, typer.Option(help="wait before each entry until the CPU is below (C)")] = None,
    cool_timeout: Annotated[float, typer.Option(min=0.0, help="longest wait for --cool-below (s)")] = 600.0,
    quiet_below: Annotated[float, typer.Option(
        min=0.01, max=1.0,
        help="before each entry, wait while other processes (and steal time) take at least this share of all "
        "cores, e.g. 0.25: a quarter of the machine; timing on a busy machine is also warned about",
    )] = BUSY_SHARE,
    max_quiet_wait: Annotated[float, typer.Option(
        min=0.0, help="seconds the whole run may wait for --quiet-below (0: never wait, only warn)",
    )] = 30.0,
    batch_size: Annotated[int, typer.Option(min=1, help="measurements per stored / uploaded batch")] = 32,
    progress: Annotated[bool, typer.Option(help="show a progress bar on stderr")] = True,
    server: ServerOption = None,
    token: TokenOption = None,
    spool: SpoolOption = None,
    retries: RetriesOption = 5,
    backoff: BackoffOption = 0.5,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Measure every block of a space (and its fixed layers, configs, models) on this machine."""
    from profiler.environment import default_device_name
    from profiler.runner import BatchWriter, ProfileOptions, check_torch_device, profile_device
    from profiler.runtimes import RuntimeUnavailable
    from profiler.upload import Spool, SpoolError
    from spaces import SpaceError, get_space

    try:
        get_space(space)
        timing = TimingSettings(
            min_run_time=min_run_time, max_run_time=max(max_run_time, min_run_time), threshold=threshold,
            warmup=warmup, copies=copies, threads=threads, device=torch_device, clock=clock, caches=caches,
            passes=passes, wait=wait,
        )
        options = ProfileOptions(
            device=device or default_device_name(torch_device), space=space, device_kind=device_kind,
            layers=parse_layers(layers), models=models, sample_configs=sample_configs, seed=seed, resume=resume,
            max_entries=max_entries, batch_size=batch_size, trace_dir=trace_dir, cool_below=cool_below,
            cool_timeout=cool_timeout, quiet_below=quiet_below, max_quiet_wait=max_quiet_wait, timing=timing,
            runtime=runtime, graph_optimization=graph_optimization, export_cache=onnx_cache,
        )
        if options.layers is not None:
            for index in options.layers:
                get_space(space).layer(index)
        check_torch_device(torch_device)
        options.create_runtime()
    except RuntimeUnavailable as exc:  # not the user's typo: one line naming the extra that installs it
        console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except (SpaceError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    uploader = _uploader(server, token, retries, backoff)
    spool_dir = spool or get_settings().data_dir / "spool"
    writer = BatchWriter(database_url(db), uploader=uploader, spool=Spool(spool_dir) if uploader is not None else None)
    try:
        summary = profile_device(options, writer, progress=progress)
    except SpoolError as exc:
        console.print(
            f"{exc}; the run stopped, its measurements so far are in the local database only",
            highlight=False, soft_wrap=True,
        )
        raise typer.Exit(1) from None
    finally:
        if uploader is not None:
            uploader.close()
    if as_json:
        _print_json(summary.as_dict())
    elif summary.run_uid is None:
        console.print(
            f"nothing to measure: all {summary.planned} entries already measured on {summary.device} "
            f"under {summary.runtime}"
        )
    else:
        console.print(
            f"run {summary.run_uid}: {summary.measured} measurements of {summary.device} under {summary.runtime} "
            f"({summary.timed} timed) in {summary.wall_s:.1f} s"
            + (f" ({summary.export_s:.1f} s exporting)" if summary.export_s else "")
            + f"; median IQR/median {summary.relative_iqr_median:.2%}, "
            f"{summary.share_within_threshold:.0%} settled within {threshold:.0%}, {len(summary.noisy)} noisy"
        )
        if summary.load.get("busy"):
            console.print(
                f"the machine was busy while {summary.load['busy_entries']} of {summary.load['entries']} entries "
                f"were timed (others took a median {summary.load['busy_share_median']:.0%} of it, waited "
                f"{summary.load['quiet_wait_s']:.0f} s for quiet); this is recorded in the run's environment",
                highlight=False, soft_wrap=True,
            )
    if summary.upload is not None:
        _report_upload(summary.upload, server=server, spool=spool_dir, brief=as_json)


def _report_upload(report: dict[str, Any], *, server: str | None, spool: Path, brief: bool) -> None:
    """The upload's outcome on stderr; exits 1 while batches wait in the spool, saying how to send them."""
    if not brief:
        console.print(
            f"upload: {report['inserted']} inserted, {report['duplicates']} duplicates, "
            f"{report['rejected']} batches rejected, {report['pending']} pending"
        )
        for error in report["errors"][-3:]:
            console.print(f"[red]{error}", highlight=False)
    if report["pending"]:
        console.print(
            f"{report['pending']} batches are waiting in {spool}; send them with "
            f"`profiler upload --server {server} --token <token> --spool {spool}`", highlight=False, soft_wrap=True,
        )
        raise typer.Exit(1)


@app.command()
def upload(
    server: ServerOption = None,
    token: TokenOption = None,
    spool: SpoolOption = None,
    retries: RetriesOption = 5,
    backoff: BackoffOption = 0.5,
    as_json: JsonOption = False,
) -> None:
    """Send the batches waiting in the spool to the server (idempotent: nothing is stored twice)."""
    from profiler.upload import Spool

    if server is None:
        raise typer.BadParameter("the server to upload to is required", param_hint="--server")
    uploader = _uploader(server, token, retries, backoff)
    with uploader:
        report = uploader.flush(Spool(spool or get_settings().data_dir / "spool"))
    if as_json:
        _print_json(vars(report))
    else:
        console.print(
            f"{report.batches} batches sent: {report.inserted} inserted, {report.duplicates} duplicates; "
            f"{report.rejected} rejected (kept in rejected/); {report.pending} pending"
        )
        for error in report.errors:
            console.print(f"[red]{error}")
    if report.pending:
        raise typer.Exit(1)


@app.command("import-hwnasbench")
def import_hwnasbench(
    path: Annotated[Path, typer.Argument(help="the pickle, its directory, or the lut_npy directory")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import HW-NAS-Bench's FBNet lookup tables (edgegpu, raspi4, pixel3, eyeriss, fpga)."""
    from profiler.hwnasbench import import_tables, load_tables

    try:
        tables = load_tables(path)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="PATH") from None
    with session_scope(database_url(db)) as session:
        report = import_tables(session, tables, source=str(path))
    if as_json:
        _print_json(report.as_dict())
        return
    for device, counts in report.devices.items():
        console.print(f"{device}: {counts['rows']} rows ({counts['inserted']} new)")
    if report.not_understood:
        console.print(f"not understood (no registered space has them): {', '.join(report.not_understood)}")
    if report.unknown_metrics:
        console.print(f"unknown metrics: {', '.join(report.unknown_metrics)}")
    for metric, keys in report.missing.items():
        console.print(f"[red]{metric} lacks {len(keys)} keys the spaces need, e.g. {keys[0]}")


@app.command("list")
def list_(
    device: Annotated[str | None, typer.Option(help="only this device")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show devices, runs and coverage (how much of each space is measured per device)."""
    from profiler.listing import inventory

    with session_scope(database_url(db)) as session:
        _require_known_device(session, device)
        data = inventory(session, device=device)
    if as_json:
        _print_json(data)
        return
    out = Console()
    devices = Table("device", "kind", "space", "blocks", "fixed", "configs", "models", title="coverage")
    for d in data["devices"]:
        if not d["coverage"]:
            devices.add_row(d["name"], d["kind"], "-", "-", "-", "-", "-")
        for c in d["coverage"]:
            devices.add_row(
                d["name"], d["kind"], c["space"], f"{c['blocks']}/{c['blocks_total']}",
                f"{c['fixed']}/{c['fixed_total']}", str(c["configs"]), str(c["models"]),
            )
    out.print(devices)
    runs = Table("run", "device", "status", "measurements", "started", "environment", title="runs")
    for r in data["runs"]:
        runs.add_row(r["uid"], r["device"], r["status"], str(r["measurements"]), r["started_at"] or "",
                     r["environment_key"])
    out.print(runs)


@app.command()
def export(
    device: Annotated[str | None, typer.Option(help="only this device")] = None,
    space: Annotated[str | None, typer.Option(help="only this space")] = None,
    target: Annotated[str | None, typer.Option(help="only block, fixed, config or model rows")] = None,
    run_uid: Annotated[str | None, typer.Option("--run", help="only this run")] = None,
    latest: Annotated[bool, typer.Option(help="only the newest row per device and key")] = False,
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")] = None,
    db: DbOption = None,
) -> None:
    """Write measurements as CSV or JSON."""
    from profiler.export import FORMATS, measurement_dicts, write_measurements

    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r}; allowed: {', '.join(FORMATS)}", param_hint="--format")
    with session_scope(database_url(db)) as session:
        _require_known_device(session, device)
        rows = measurement_dicts(session, device=device, space=space, target=target, run_uid=run_uid, latest=latest)
    if output is None:
        write_measurements(rows, sys.stdout, fmt=fmt)
        return
    with output.open("w", newline="") as handle:
        write_measurements(rows, handle, fmt=fmt)
    console.print(f"{len(rows)} measurements written to {output}")
