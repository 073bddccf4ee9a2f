"""The main job end to end: profile, (import), fit, serve, search, report.

Each step runs the project's own command in a subprocess (the same commands a user would type), so the
pipeline exercises exactly what the README documents and a failing step stops with its own message.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from db import database_url, queries, session_scope
from predictor import figures as shared  # the dashboard's figures (/ui): the report shows the same, inline
from predictor import load_lut
from predictor.errors import PredictorError
from predictor.latency import DeviceLUT, Link, split_latency
from spaces import get_space

REFERENCE_HEAD, REFERENCE_TAIL = "raspi4", "edgegpu"


class PipelineError(RuntimeError):
    """A step of the pipeline cannot run; the message says what to change."""


@dataclass
class PipelineConfig:
    """What the pipeline does; the defaults are the README's demo (about 10 minutes on 2 cores)."""

    report_dir: Path = Path("reports/demo")
    db: str | None = None
    device: str = "local-cpu"
    space: str = "fbnet-cifar100"
    models: int = 24
    min_run_time: float = 0.3
    max_run_time: float = 1.5
    hwnasbench: Path | None = None
    port: int = 8765
    bandwidth_mbps: float | None = None  # default: 8 Mbit/s with HW-NAS-Bench, 2 Mbit/s on the local CPU alone
    t_th: float | None = None  # default: 30 ms with HW-NAS-Bench, else derived from the local table
    epochs: str = "2,6,4"  # the budget of bench/nasc_reference.py: ~1 minute per search on 2 cores
    steps_per_epoch: int = 25
    batch_size: int = 8
    data_limit: int = 1000
    seed: int = 0
    methods: Sequence[str] = ("nasc", "hwnas")
    extra_search_args: Sequence[str] = field(default_factory=tuple)


def command(name: str) -> str:
    """Path of one of the project's console scripts, next to the running interpreter."""
    path = Path(sys.executable).parent / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise PipelineError(f"command {name!r} not found: install splitnas (bash scripts/setup.sh)")
    return found


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_preconditions(config: PipelineConfig) -> None:
    """Fail before any work when the port is taken, the data path is wrong or the report dir is unusable."""
    if not port_is_free(config.port):
        raise PipelineError(
            f"port {config.port} on 127.0.0.1 is in use: stop what listens there or choose another with --port"
        )
    if config.hwnasbench is not None:
        path = Path(config.hwnasbench)
        if not path.exists():
            raise PipelineError(f"HW-NAS-Bench path {path} does not exist (HWNASBENCH / --hwnasbench)")
        if not any(path.glob("*.pickle")) and not path.is_file() and not (path / "lut_npy").is_dir():
            raise PipelineError(
                f"HW-NAS-Bench path {path} holds neither hwnasbench_fbnet_lut.pickle nor a lut_npy directory"
            )
    get_space(config.space)
    try:
        config.report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PipelineError(f"cannot create the report directory {config.report_dir}: {exc}") from None


class Pipeline:
    """Runs the steps in order and collects what the report shows."""

    def __init__(self, config: PipelineConfig, console: Console | None = None) -> None:
        self.config = config
        self.console = console or Console()
        self.db = database_url(config.db)
        self.env = {**os.environ, "SPLITNAS_DATABASE_URL": self.db, "PYTHONUNBUFFERED": "1"}
        self.jobs: list[dict[str, Any]] = []

    # -- steps -----------------------------------------------------------------------------------
    def run(self) -> Path:
        check_preconditions(self.config)
        started = time.perf_counter()
        self.step("profile this CPU", self.profile)
        if self.config.hwnasbench is not None:
            self.step("import HW-NAS-Bench", self.import_hwnasbench)
        else:
            self.console.print("[dim]HW-NAS-Bench not given (HWNASBENCH=...): the local CPU is head and tail[/]")
        self.step("fit and evaluate predictors", self.fit_predictors)
        with self.service() as url:
            self.step("search (NASC and HWNAS) against the service", lambda: self.search(url))
        index = self.step("write the report", self.write_report)
        minutes = (time.perf_counter() - started) / 60
        self.console.print(f"[bold green]done in {minutes:.1f} min[/]: open {index.resolve()}")
        return index

    def step(self, title: str, action: Any) -> Any:
        self.console.rule(f"[bold]{title}")
        return action()

    def call(self, *args: str) -> None:
        """Run a project command; its output streams to the terminal, a failure stops the pipeline."""
        self.console.print(f"[dim]$ {' '.join(args)}[/]", soft_wrap=True)
        result = subprocess.run(args, env=self.env)
        if result.returncode != 0:
            raise PipelineError(f"step failed (exit {result.returncode}): {' '.join(args)}")

    def profile(self) -> None:
        c = self.config
        self.call(
            command("profiler"), "run", "--device", c.device, "--space", c.space, "--models", str(c.models),
            "--min-run-time", str(c.min_run_time), "--max-run-time", str(max(c.max_run_time, c.min_run_time)),
            "--seed", str(c.seed), "--resume", "--db", self.db,
        )

    def import_hwnasbench(self) -> None:
        self.call(command("profiler"), "import-hwnasbench", str(self.config.hwnasbench), "--db", self.db)

    @property
    def devices(self) -> list[str]:
        if self.config.hwnasbench is not None:
            return [self.config.device, REFERENCE_HEAD, REFERENCE_TAIL]
        return [self.config.device]

    def fit_predictors(self) -> None:
        args = [command("predictor"), "fit", "--kind", "all", "--space", self.config.space, "--db", self.db]
        for device in self.devices:
            args += ["--device", device]
        self.call(*args)

    def service(self) -> _Service:
        return _Service(self, self.config.port)

    def search_setup(self) -> tuple[str, str, float, float]:
        """Head device, tail device, link rate and T_th of the demo search."""
        c = self.config
        if c.hwnasbench is not None:
            return REFERENCE_HEAD, REFERENCE_TAIL, c.bandwidth_mbps or 8.0, c.t_th or 30.0
        bandwidth = c.bandwidth_mbps or 2.0
        if c.t_th is not None:
            return c.device, c.device, bandwidth, c.t_th
        # A constraint that binds: the median split latency of random architectures on this machine.
        import random

        from spaces import sample_architecture

        with session_scope(self.db) as session:
            lut = load_lut(session, device=c.device, space=c.space)
        rng = random.Random(c.seed)
        link = Link(bandwidth)
        totals = sorted(
            split_latency(sample_architecture(c.space, rng, splits=1), lut, lut, link).total_ms for _ in range(200)
        )
        return c.device, c.device, bandwidth, round(totals[len(totals) // 2], 1)

    def search(self, url: str) -> None:
        c = self.config
        head, tail, bandwidth, t_th = self.search_setup()
        self.console.print(f"scenario: head {head}, tail {tail}, {bandwidth:g} Mbit/s, T_th {t_th:g} ms")
        jobs_dir = c.report_dir / "jobs"
        # one pre-trained supernet per method and pre-training budget: a second run reuses it
        cache_dir = c.report_dir / "supernets"
        budget = f"e{c.epochs.replace(',', '-')}_s{c.steps_per_epoch}_b{c.batch_size}_n{c.data_limit}_seed{c.seed}"
        for method in c.methods:
            output = jobs_dir / f"{method}.json"
            self.call(
                command("nas"), "search", "--method", method, "--space", c.space, "--head-device", head,
                "--tail-device", tail, "--bandwidth-mbps", str(bandwidth), "--bits", "32", "--loss", "0.2",
                "--t-th", str(t_th), "--predictor-url", url, "--data", "digits", "--data-limit", str(c.data_limit),
                "--epochs", c.epochs, "--steps-per-epoch", str(c.steps_per_epoch), "--batch-size", str(c.batch_size),
                "--seed", str(c.seed), "--supernet-cache", str(cache_dir / f"{method}_{budget}.pt"),
                "--output", str(output), "--db", self.db, *c.extra_search_args,
            )
            self.jobs.append(json.loads(output.read_text()))

    # -- report ----------------------------------------------------------------------------------
    def write_report(self) -> Path:
        out = self.config.report_dir
        space = self.config.space
        shown: list[tuple[str, str]] = []
        predictor_rows: list[dict[str, Any]] = []
        with session_scope(self.db) as session:
            runtimes: dict[str, set[str]] = {}
            for run in queries.list_runs(session):
                runtimes.setdefault(run.device.name, set()).add(shared.runtime(run.environment or {}, run.status))
            runtime = {device: ", ".join(sorted(names)) for device, names in runtimes.items()}
            for device in self.devices:
                lut = _measured_lut(session, device, space)
                shown.append((f"Latency table of {device} ({lut.predictor})",
                              shared.heatmap_svg(lut, scenario={"runtime": runtime.get(device)})))
                stored = [{"kind": r.kind, "version": r.version, "metrics": r.metrics} for r in
                          sorted(queries.latest_predictors(session, device=device, space=space), key=lambda r: r.kind)]
                if stored:
                    shown.append((f"Held-out quality of the predictors of {device}",
                                  shared.quality_svg(stored, device=device, space=space)))
                predictor_rows += _predictor_rows(session, device, space)
            scatter = _model_predictions(session, self.config.device, space)
            tables = {(j["config"]["head_device"], j["config"]["tail_device"]) for j in self.jobs}
            luts = {d: load_lut(session, device=d, space=space) for pair in tables for d in pair}
        if scatter["measured"]:
            shown.append(("Predicted vs measured latency of whole architectures and heads",
                          shared.predicted_measured_svg(scatter, title=f"{self.config.device}: measured models and "
                                                        "heads")))
        for job in self.jobs:
            scenario = shared.job_scenario(job, runtime)
            shown.append((f"Convergence of the {job['method']} search", shared.convergence_svg(job, scenario=scenario)))
            if "head_ms" in job["result"].get("latency", {}):  # one split point (not a topology's chain or mesh)
                config = job["config"]
                layers = shared.answer_layers(job, luts[config["head_device"]], luts[config["tail_device"]])
                shown.append((f"The {job['method']} answer per layer",
                              shared.layers_svg(job, layers, scenario=scenario)))
        if self.jobs:
            shown.append(("Accuracy vs latency of the searched architectures", shared.accuracy_latency_svg(self.jobs)))
        scenario_text = shared.scenario_line(shared.job_scenario(self.jobs[0], runtime)) if self.jobs else ""
        index = out / "index.html"
        index.write_text(render_index(self.config, predictor_rows, self.jobs, shown, scenario=scenario_text))
        (out / "summary.json").write_text(json.dumps({"predictors": predictor_rows, "jobs": self.jobs}, indent=2))
        return index


class _Service:
    """``splitnas-api serve`` in the background for the duration of a ``with`` block."""

    def __init__(self, pipeline: Pipeline, port: int) -> None:
        self.pipeline, self.port = pipeline, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        console = self.pipeline.console
        console.rule("[bold]service: splitnas-api on 127.0.0.1")
        log = open(self.pipeline.config.report_dir / "service.log", "wb")  # noqa: SIM115 (closed in __exit__)
        self.log = log
        self.process = subprocess.Popen(
            [command("splitnas-api"), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log",
             "--db", self.pipeline.db],
            env=self.pipeline.env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PipelineError(f"the service exited with {self.process.returncode}; see {log.name}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    console.print(f"service healthy at {self.url}")
                    return self.url
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.__exit__(None, None, None)
        raise PipelineError(f"the service did not become healthy within 60 s; see {log.name}")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.pipeline.console.print("service stopped")
        self.log.close()


def _measured_lut(session: Any, device: str, space: str) -> DeviceLUT:
    """The device's table as measured (lookup, gaps filled by the best other kind) for the heat map."""
    try:
        return load_lut(session, device=device, space=space, kind="lookup")
    except PredictorError:
        return load_lut(session, device=device, space=space)


def _predictor_rows(session: Any, device: str, space: str) -> list[dict[str, Any]]:
    rows = []
    for row in sorted(queries.latest_predictors(session, device=device, space=space), key=lambda r: r.kind):
        fit = row.metrics.get("fit", {})
        protocols = row.metrics.get("protocols", {})
        # the most telling held-out protocol that has data: whole models, else summed tables, else entries
        protocol = next((p for p in ("model", "arch-sum", "entry") if (protocols.get(p) or {}).get("n")), None)
        best = protocols.get(protocol, {}) if protocol else {}
        rows.append({
            "device": device, "kind": row.kind, "version": row.version,
            "pi_gflops": fit.get("pi_gflops"), "r2": fit.get("r2"),
            "protocol": protocol,
            "mape": best.get("mape"), "within_10": best.get("within_10"), "spearman": best.get("spearman"),
        })
    return rows


def _model_predictions(session: Any, device: str, space_name: str) -> dict[str, Any]:
    """Measured whole-model and head latencies with each fitted kind's prediction of them."""
    rows = queries.latest_measurements(session, device=device, space=space_name, target="model")
    luts = {}
    for fitted in queries.latest_predictors(session, device=device, space=space_name):
        try:
            luts[fitted.kind] = load_lut(session, device=device, space=space_name, kind=fitted.kind)
        except PredictorError:
            continue
    models = [(row.key.split("/", 1)[1], row.latency_ms) for row in rows.values()]
    return shared.model_predictions(models, luts, space_name)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def render_index(
    config: PipelineConfig, predictors: list[dict[str, Any]], jobs: list[dict[str, Any]],
    figures: list[tuple[str, str]], *, scenario: str = "",
) -> str:
    """The report page: the scenario, key figures as tables, then every figure (title, inline SVG)."""
    predictor_table = "".join(
        f"<tr><td>{_fmt(r['device'])}</td><td>{_fmt(r['kind'])}</td><td>{_fmt(r['pi_gflops'])}</td>"
        f"<td>{_fmt(r['r2'])}</td><td>{_fmt(r['protocol'])}</td><td>{_fmt(r['mape'])}</td>"
        f"<td>{_fmt(r['within_10'])}</td><td>{_fmt(r['spearman'])}</td></tr>"
        for r in predictors
    )
    job_rows = []
    for job in jobs:
        result, latency = job.get("result", {}), job.get("result", {}).get("latency", {})
        job_rows.append(
            f"<tr><td>{_fmt(job['method'])}</td><td><code>{_fmt(result.get('architecture'))}</code></td>"
            f"<td>{_fmt(result.get('split'))}</td><td>{_fmt(latency.get('total_ms'))}</td>"
            f"<td>{_fmt(latency.get('head_ms'))}</td><td>{_fmt(latency.get('comm_ms'))}</td>"
            f"<td>{_fmt(latency.get('tail_ms'))}</td><td>{_fmt(result.get('payload_bytes'))}</td>"
            f"<td>{_fmt(job['config'].get('t_th'))}</td><td>{_fmt(result.get('accuracy_at_loss'))}</td></tr>"
        )
    images = "".join(
        f"<figure>{svg}<figcaption>{html.escape(title)}</figcaption></figure>" for title, svg in figures
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>splitnas report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1200px; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
th {{ background: #f0f0f0; }} code {{ font-size: 0.8em; word-break: break-all; }}
figure {{ display: inline-block; margin: 1em; vertical-align: top; }}
</style></head><body>
<h1>splitnas: {html.escape(config.space)} on {html.escape(config.device)}</h1>
<p>Scenario: {html.escape(scenario or "no search")}</p>
<h2>Predictors</h2>
<table><tr><th>device</th><th>kind</th><th>Pi (GFLOPS)</th><th>R&sup2;</th><th>held-out protocol</th>
<th>MAPE</th><th>within &plusmn;10 %</th><th>Spearman</th></tr>{predictor_table}</table>
<h2>Searched architectures</h2>
<table><tr><th>method</th><th>architecture</th><th>split</th><th>total ms</th><th>head ms</th><th>link ms</th>
<th>tail ms</th><th>payload bytes</th><th>T_th ms</th><th>accuracy at loss</th></tr>{''.join(job_rows)}</table>
<h2>Figures</h2>{images}
</body></html>
"""
