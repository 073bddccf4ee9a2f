"""``predictor``: fit, evaluate and query latency predictors."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from db import queries
from db.command_line import console_script
from db.engine import session_scope
from db.records import runtime_name
from predictor.data import load_training_data
from predictor.errors import PredictorError
from predictor.evaluate import evaluate_kind, score
from predictor.facade import expand_kinds, fit_predictors, load_lut, training_data
from predictor.latency import Link, architecture_latency, chain_latency
from predictor.runtime_comparison import RuntimeComparison, compare_runtimes
from predictor.runtimes import resolve_runtime
from predictor.tables import print_table
from predictor.topology import Topology, completion_latency, topology_luts
from predictor.topology_file import load_topology
from spaces import Architecture
from spaces.errors import UserError

app = typer.Typer(
    help="Fit latency predictors to a device's measurements, evaluate them, predict.", no_args_is_help=True
)
# outside a terminal (pipes, CI logs) tables get 160 columns instead of rich's 80, so they are not truncated
entry_point = console_script(app)
console = Console(width=shutil.get_terminal_size((160, 24)).columns)

DbOption = Annotated[str | None, typer.Option("--db", help="database URL (default: SPLITNAS_DATABASE_URL or ~/.local)")]
SpaceOption = Annotated[str, typer.Option("--space", help="search space")]
DevicesOption = Annotated[
    list[str] | None, typer.Option("--device", "-d", help="device (repeatable; default: every device measured)")
]
KindsOption = Annotated[
    list[str] | None, typer.Option("--kind", "-k", help="lookup, flops-linear, flops-linear-intercept, gbdt or all")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
RuntimeOption = Annotated[
    str | None, typer.Option("--runtime", "-r", help="runtime whose measurements count (torch, onnxruntime, ...; "
                             "default: every runtime of the device)")
]


@app.callback()
def main() -> None:
    """Latency predictors of splitnas."""


@contextmanager
def _user_errors() -> Iterator[None]:
    """Errors a user can act on as one line without a traceback, and exit status 2 (as db.command_line)."""
    try:
        yield
    except (UserError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)  # not rich: it would wrap a long message over several lines
        raise typer.Exit(2) from None


def _targets(session: Any, devices: list[str] | None, space: str, runtime: str | None) -> list[tuple[str, str]]:
    """(device, runtime) pairs: the devices asked for (all known, else an error naming the known ones), or every
    device measured in ``space``; each under ``runtime``, or under every runtime it was measured with."""
    runtimes = queries.device_runtimes(session)
    if devices:
        known = [d.name for d in queries.list_devices(session)]
        unknown = [d for d in devices if d not in known]
        if unknown:
            raise PredictorError(f"unknown device {unknown[0]!r} (known devices: {', '.join(known) or 'none yet'})")
        return [(name, chosen) for name in dict.fromkeys(devices)
                for chosen in ([resolve_runtime(session, device=name, runtime=runtime)] if runtime
                               else runtimes.get(name) or [resolve_runtime(session, device=name)])]
    measured = [(name, chosen) for name, mine in runtimes.items() for chosen in mine if runtime in (None, chosen)
                and load_training_data(session, device=name, space=space, runtime=chosen).of_target("block", "fixed")]
    if not measured:
        under = f" under runtime {runtime!r}" if runtime else ""
        raise PredictorError(
            f"no device has measurements in space {space!r}{under}: run `profiler run` or an import first"
        )
    return measured


@contextmanager
def _progress_bar(total: int, *, quiet: bool) -> Iterator[tuple[Progress, TaskID]]:
    """A bar on stderr over ``total`` (device, kind) pairs; nothing with --json or when stderr is not a terminal."""
    stderr = Console(stderr=True)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stderr, disable=quiet or not stderr.is_terminal) as progress:
        yield progress, progress.add_task("reading measurements", total=total)


def _fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{suffix}" if isinstance(value, float) else str(value)


def _scores_table(title: str, rows: list[tuple[str, str, dict[str, Any]]]) -> Table:
    table = Table(title=title)
    columns = ("kind", "protocol", "n / asked", "RMSE ms", "MAPE %", "±5 %", "±10 %", "Spearman", "Kendall", "note")
    for column in columns:
        # printed whole (print_table): no name or number cut short, notes wrapped
        table.add_column(column, justify="left" if column in ("kind", "protocol", "note") else "right",
                         no_wrap=column != "note", overflow="fold")
    for kind, protocol, s in rows:
        table.add_row(
            kind, protocol, f"{s['n']} / {s['total']}", _fmt(s["rmse_ms"], 4), _fmt(s["mape"]), _fmt(s["within_5"], 1),
            _fmt(s["within_10"], 1), _fmt(s["spearman"], 4), _fmt(s["kendall"], 4), s.get("note", ""),
        )
    return table


@app.command()
def fit(
    device: DevicesOption = None, kind: KindsOption = None, space: SpaceOption = "fbnet-cifar100", db: DbOption = None,
    evaluate: Annotated[bool, typer.Option(help="evaluate every kind on held-out data before storing")] = True,
    runtime: RuntimeOption = None, as_json: JsonOption = False,
) -> None:
    """Fit predictors to each device's measurements (per runtime), evaluate and store them; print Pi and R^2 of the
    FLOPs fits."""
    with _user_errors(), session_scope(db) as session:
        kinds = expand_kinds(kind or ["all"])
        targets = _targets(session, device, space, runtime)
        reports = []
        with _progress_bar(len(targets) * len(kinds), quiet=as_json) as (bar, task):
            for name, chosen in targets:
                def show(kind: str, step: str, label: str = f"{name} ({chosen})") -> None:
                    bar.update(task, description=f"{label} {kind}: {step}", advance=step == "store")

                reports += fit_predictors(session, device=name, space=space, kinds=kinds, evaluate=evaluate,
                                          progress=show, runtime=chosen)
    if as_json:
        print(json.dumps([{"device": r.device, "runtime": r.runtime, "space": r.space, "kind": r.kind,
                           "version": r.version, "metrics": r.metrics, "meta": r.meta} for r in reports], indent=2))
        return
    table = Table(title=f"fitted predictors ({space})")
    for column in ("device", "runtime", "kind", "version", "Pi GFLOPS", "R^2", "intercept ms", "scale",
                   "entry MAPE %", "model ±10 %", "note"):
        table.add_column(column, justify="left" if column in ("device", "runtime", "kind", "note") else "right",
                         no_wrap=column != "note", overflow="fold")
    for r in reports:
        protocols = r.metrics.get("protocols", {})
        table.add_row(
            r.device, r.runtime, r.kind, str(r.version), _fmt(r.pi_gflops, 3), _fmt(r.r2, 4),
            _fmt(r.metrics["fit"].get("intercept_ms"), 4), _fmt(r.metrics["scale"], 4),
            _fmt(protocols.get("entry", {}).get("mape")), _fmt(protocols.get("model", {}).get("within_10"), 1),
            r.metrics["fit"].get("note", ""),
        )
    print_table(console, table)


@app.command("eval")
def evaluate(
    device: DevicesOption = None, kind: KindsOption = None, space: SpaceOption = "fbnet-cifar100", db: DbOption = None,
    folds: Annotated[int, typer.Option(min=1, help="folds of the k-fold protocols")] = 5,
    seed: Annotated[int, typer.Option(help="seed of the fold assignment")] = 0, runtime: RuntimeOption = None,
    e2e: Annotated[bool, typer.Option("--e2e", help="instead: the stored end-to-end runs (splitnas-edge run), "
                                      "measured p50 against the search's prediction")] = False,
    as_json: JsonOption = False,
) -> None:
    """Evaluate every kind with every protocol on data held out from fitting (nothing is stored); a device measured
    under several runtimes gets them compared (op latency ratio, sum of blocks against whole models, accuracy).
    With --e2e: every stored end-to-end run against its prediction, and the accuracy over them."""
    if e2e:
        _evaluate_e2e(db, devices=device, as_json=as_json)
        return
    with _user_errors():
        with session_scope(db) as session:  # read, then evaluate outside any transaction
            kinds = expand_kinds(kind or ["all"])
            data = {(name, chosen): training_data(session, device=name, space=space, runtime=chosen)
                    for name, chosen in _targets(session, device, space, runtime)}
        scores: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        with _progress_bar(len(data) * len(kinds), quiet=as_json) as (bar, task):
            for (name, chosen), samples in data.items():
                by_kind = scores.setdefault(name, {}).setdefault(chosen, {})
                for k in kinds:
                    def show(step: str, label: str = f"{name} ({chosen})", k: str = k) -> None:
                        bar.update(task, description=f"{label} {k}: {step}")

                    by_kind[k] = {p: s.to_dict() for p, s in evaluate_kind(k, samples, folds=folds, seed=seed,
                                                                           progress=show).items()}
                    bar.advance(task)
        comparisons = {
            name: compare_runtimes({r: data[name, r] for r in by_runtime}, scores=by_runtime)
            for name, by_runtime in scores.items() if len(by_runtime) > 1
        }
    if as_json:
        print(json.dumps({"scores": scores, "runtimes": {n: c.to_dict() for n, c in comparisons.items()}}, indent=2))
        return
    for name, by_runtime in scores.items():
        for chosen, by_kind in by_runtime.items():
            rows = [(k, p, s) for k, protocols in by_kind.items() for p, s in protocols.items()]
            print_table(console, _scores_table(f"{name} ({chosen}, {space}): held-out accuracy", rows))
    for comparison in comparisons.values():
        print_table(console, _runtimes_table(comparison))


def _evaluate_e2e(db: str | None, *, devices: list[str] | None, as_json: bool) -> None:
    """Stored end-to-end runs (those whose head ran on one of ``devices``, default all), each measured p50 beside
    its prediction, then the accuracy of the predictions over them."""
    with _user_errors():
        with session_scope(db) as session:
            runs = queries.e2e_records(session)
    runs = [(i, r) for i, r in runs if devices is None or r.devices[0] in devices]
    scores = score([r.p50_ms for _, r in runs], [r.predicted_ms for _, r in runs])
    if as_json:
        print(json.dumps({"runs": [r.model_dump(mode="json") | {"id": i, "error_pct": r.error_pct} for i, r in runs],
                          "scores": scores.to_dict()}, indent=2))
        return
    table = Table(title="end-to-end runs: measured p50 against the search's prediction")
    for column in ("id", "job", "devices", "runtime", "splits", "codec", "transport", "loss", "Mbit/s",
                   "predicted ms", "p50 ms", "p90 ms", "error %"):
        table.add_column(column, justify="left" if column in ("job", "devices", "runtime", "codec", "transport")
                         else "right", no_wrap=True)
    for i, r in runs:
        table.add_row(str(i), r.job, " -> ".join(r.devices), r.runtime, ",".join(map(str, r.splits)), r.codec,
                      r.transport, f"{r.loss:g}", _fmt(r.throughput_mbps), _fmt(r.predicted_ms), _fmt(r.p50_ms),
                      _fmt(r.p90_ms), f"{r.error_pct:+.1f}")
    print_table(console, table)
    print_table(console, _scores_table("end-to-end prediction accuracy", [("e2e", "p50", scores.to_dict())]))


def _runtimes_table(comparison: RuntimeComparison) -> Table:
    """One row per runtime: op latency ratio to the reference, sum-of-blocks bias, model-level accuracy per kind."""
    table = Table(title=f"{comparison.device} ({comparison.space}): runtimes compared (ratios to "
                        f"{comparison.reference}; bias = summed measured blocks against whole models)")
    for column in ("runtime", "ops", "op ratio median", "op ratio IQR", "models", "sum-of-blocks bias %",
                   "bias IQR %", "model-level accuracy (MAPE %, ±10 %) per kind"):
        table.add_column(column, justify="left" if column in ("runtime",) or column.startswith("model-") else "right",
                         no_wrap=not column.startswith("model-"), overflow="fold")
    for runtime in comparison.runtimes:
        ratio, bias = comparison.op_ratio[runtime], comparison.sum_bias_pct[runtime]
        accuracy = "; ".join(f"{k} {_fmt(s.get('mape'))}, {_fmt(s.get('within_10'), 1)}"
                             for k, s in comparison.model_scores.get(runtime, {}).items() if s.get("n")) or "-"
        table.add_row(runtime, str(ratio.n), _fmt(ratio.median, 3), f"{_fmt(ratio.q1, 3)} – {_fmt(ratio.q3, 3)}",
                      str(bias.n), _fmt(bias.median, 1), f"{_fmt(bias.q1, 1)} – {_fmt(bias.q3, 1)}", accuracy)
    return table


@app.command()
def predict(
    arch: Annotated[str, typer.Option("--arch", help="architecture string, optionally with @k split point(s)")],
    device: Annotated[
        str | None, typer.Option("--device", "-d", help="device running the architecture (or its head)")
    ] = None,
    topology: Annotated[
        Path | None, typer.Option("--topology", help="a chain or mesh of devices (the file of nas search --topology)")
    ] = None,
    split: Annotated[list[int] | None, typer.Option(help="split point(s) k (overrides @k in --arch)")] = None,
    tail_device: Annotated[
        list[str] | None, typer.Option("--tail-device", help="device after each split (repeatable; default: --device)")
    ] = None,
    bandwidth_mbps: Annotated[
        list[float] | None, typer.Option("--bandwidth-mbps", help="link rate per split, Mbit/s (one value: all links)")
    ] = None,
    bits: Annotated[int, typer.Option(help="bits per transmitted element (32, 16 or 8)")] = 32,
    kind: Annotated[str, typer.Option("--kind", "-k", help="predictor kind, or auto")] = "auto",
    runtime: Annotated[
        str | None, typer.Option("--runtime", "-r", help="runtime of every device's table (default: each device's "
                                 "only runtime)")
    ] = None,
    space: SpaceOption = "fbnet-cifar100", db: DbOption = None, as_json: JsonOption = False,
) -> None:
    """Predict the latency of an architecture on one device, split across devices and links, or on a topology."""
    with _user_errors():
        if (device is None) == (topology is None):
            raise ValueError("give --device (with --tail-device for splits) or --topology FILE")
        architecture = Architecture.parse(arch, space)
        if split:
            architecture = architecture.with_splits(*split)
        if topology is not None:
            result = _topology_latency(architecture, load_topology(topology), kind, space, db, runtime)
            if as_json:
                print(json.dumps(result, indent=2))
            else:
                _print_segments(result)
            return
        assert device is not None
        n_links = len(architecture.splits)
        devices = [device, *(tail_device or [])]
        if n_links and len(devices) == 1:
            devices *= n_links + 1
        if len(devices) != n_links + 1:
            raise ValueError(f"{n_links} split point(s) need {n_links} tail device(s), got {len(devices) - 1}")
        rates = bandwidth_mbps or [8.0]
        if len(rates) == 1:
            rates = rates * n_links
        if len(rates) != n_links:
            raise ValueError(f"{n_links} link(s) need one --bandwidth-mbps each (or one for all), got {len(rates)}")
        with session_scope(db) as session:
            luts = {name: load_lut(session, device=name, space=space, kind=kind, runtime=runtime)
                    for name in dict.fromkeys(devices)}
        if not n_links:
            total = architecture_latency(architecture, luts[device])
            result = {"arch": architecture.encode(), "device": device, "runtime": luts[device].runtime,
                      "predictor": luts[device].predictor, "scale": luts[device].scale, "total_ms": total}
        else:
            links = [Link(rate, bits) for rate in rates]
            chain = chain_latency(architecture, [luts[d] for d in devices], links)
            result = {"arch": architecture.encode(), **chain.to_dict(),
                      "predictors": {d: luts[d].predictor for d in luts},
                      "runtimes": {d: luts[d].runtime for d in luts}}
            for segment, link in zip(result["segments"], [*links, None], strict=True):
                segment["link"] = f"{link.bandwidth_mbps:g} Mbit/s, {link.bits} bit" if link else None
    if as_json:
        print(json.dumps(result, indent=2))
    elif not n_links:
        console.print(f"{result['arch']}\n[bold]{device}[/bold] ({result['runtime']}, {result['predictor']}, "
                      "model-level correction "
                      f"x{result['scale']:.3f}): [bold]{total:.3f} ms[/bold]")
    else:
        _print_segments(result)


def _topology_latency(
    arch: Architecture, topology: Topology, kind: str, space: str, db: str | None, runtime: str | None
) -> dict[str, Any]:
    """What ``POST /architectures/latency/multi`` answers: the completion latency of ``arch`` on ``topology``."""
    if not arch.splits:
        arch = arch.with_splits(*topology.splits(len(arch.space.layers)))
    with session_scope(db) as session:
        luts = topology_luts(
            topology, lambda device: load_lut(session, device=device, space=space, kind=kind, runtime=runtime)
        )
    result = {"topology": topology.kind, "name": topology.name, "arch": arch.encode(),
              **completion_latency(arch, topology, luts).to_dict(),
              "predictors": {name: lut.predictor for name, lut in luts.items()},
              "runtimes": {name: lut.runtime for name, lut in luts.items()}}
    path = [s["device"] for s in result["segments"]]
    for segment, target in zip(result["segments"], [*path[1:], None], strict=True):
        link = topology.link(segment["device"], target) if target else None
        segment["link"] = f"{link.bandwidth_mbps:g} Mbit/s, {link.bits} bit" if link else None
    return result


def _print_segments(result: dict[str, Any]) -> None:
    table = Table(title=result["arch"] + (f" on {result['name']} ({result['topology']})" if "topology" in result
                                          else ""))
    for column in ("part", "device", "layers", "compute ms", "payload", "link", "comm ms"):
        table.add_column(column, justify="left" if column in ("part", "device", "layers") else "right")
    segments = result["segments"]
    for i, s in enumerate(segments):
        part = "head" if i == 0 else "tail" if i == len(segments) - 1 else f"middle {i}"
        layers = f"{s['layers'][0]}..{s['layers'][-1]}" if s["layers"] else "-"
        last = i == len(segments) - 1
        table.add_row(
            part, s["device"], layers, f"{s['compute_ms']:.3f}",
            "-" if last else f"{s['payload_elements']} el = {s['payload_bytes'] / 1024:.1f} KiB",
            "-" if last else s["link"], "-" if last else f"{s['comm_ms']:.3f}",
        )
    console.print(table)
    if result["branch_ms"]:
        branches = ", ".join(f"{name} {ms:.3f} ms" for name, ms in result["branch_ms"].items())
        console.print(f"branches (root + broadcast + branch + send): {branches}; slowest: {result['critical_branch']}")
    compute = sum(s["compute_ms"] for s in segments)
    comm = sum(s["comm_ms"] for s in segments)
    used = ", ".join(f"{d}: {k} ({result['runtimes'][d]})" for d, k in result["predictors"].items())
    console.print(f"total [bold]{result['total_ms']:.3f} ms[/bold] = compute {compute:.3f} ms + communication "
                  f"{comm:.3f} ms (predictors: {used})")


@app.command("list")
def list_fitted(
    space: SpaceOption = "fbnet-cifar100", db: DbOption = None,
    runtime: Annotated[str | None, typer.Option("--runtime", "-r", help="only this runtime's predictors")] = None,
    as_json: JsonOption = False,
) -> None:
    """The newest stored predictor of every device, runtime and kind, with its held-out model and entry accuracy."""
    with _user_errors(), session_scope(db) as session:
        stored = queries.latest_predictors(session, space=space, runtime=runtime_name(runtime) if runtime else None)
        rows = [(r.device.name, r.runtime, r.kind, r.version, r.metrics, r.meta) for r in stored]
    if as_json:
        print(json.dumps([{"device": d, "runtime": r, "kind": k, "version": v, "metrics": m, "meta": meta}
                          for d, r, k, v, m, meta in rows], indent=2))
        return
    table = Table(title=f"stored predictors ({space})")
    for column in ("device", "runtime", "kind", "version", "fitted at", "data", "scale", "entry MAPE %",
                   "model ±10 %"):
        table.add_column(column, no_wrap=True)
    for d, r, k, v, metrics, meta in sorted(rows):
        protocols = metrics.get("protocols", {})
        table.add_row(d, r, k, str(v), str(meta.get("fitted_at", ""))[:19], str(meta.get("data_fingerprint", "")),
                      _fmt(metrics.get("scale"), 4), _fmt(protocols.get("entry", {}).get("mape")),
                      _fmt(protocols.get("model", {}).get("within_10"), 1))
    print_table(console, table)
