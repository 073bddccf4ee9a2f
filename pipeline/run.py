"""The main job end to end: profile, (import), fit, serve, search, report.

Each step runs the project's own command in a subprocess (the same commands a user would type), so the
pipeline exercises exactly what the README documents and a failing step stops with its own message.
A search is handed over as its ``SearchConfig`` (``nas search --config FILE``), never as re-spelled flags.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from db import database_url, session_scope
from nas.config import SearchConfig
from nas.results import Job, read_job
from pipeline.report import write_report
from pipeline.service import Service, ServiceError, port_is_free
from predictor import load_lut
from predictor.latency import Link, split_latency
from spaces import SpaceError, get_space

REFERENCE_HEAD, REFERENCE_TAIL = "raspi4", "edgegpu"


class PipelineError(RuntimeError):
    """A step of the pipeline cannot run; the message says what to change."""


# the budget of bench/nasc_reference.py: about 1 minute per search on 2 cores
DEMO_SEARCH: dict[str, Any] = {
    "data": "digits", "data_limit": 1000, "pretrain_epochs": 2, "search_epochs": 6, "retrain_epochs": 4,
    "steps_per_epoch": 25, "batch_size": 8, "bits": 32, "loss": 0.2,
}
# settings of every search that the pipeline chooses itself (the scenario and the service it starts)
PIPELINE_FIELDS = ("method", "space", "head_device", "tail_device", "predictor_url", "supernet_cache", "topology")


@dataclass
class PipelineConfig:
    """What the pipeline does; the defaults are the README's demo (about 5 minutes on 2 cores).

    ``search`` holds SearchConfig fields over ``DEMO_SEARCH``: ``bandwidth_mbps`` (default 8 Mbit/s with
    HW-NAS-Bench, else 2) and ``t_th`` (default 30 ms with HW-NAS-Bench, else derived from the local
    table) replace the scenario's; its ``seed`` also seeds the profiler.
    """

    report_dir: Path = Path("reports/demo")
    db: str | None = None
    device: str = "local-cpu"
    space: str = "fbnet-cifar100"
    models: int = 24
    min_run_time: float = 0.3
    max_run_time: float = 1.5
    hwnasbench: Path | None = None
    port: int = 8765
    methods: Sequence[str] = ("nasc", "hwnas")
    search: Mapping[str, Any] = field(default_factory=dict)

    def search_settings(self) -> SearchConfig:
        """The settings every search of the pipeline shares (validated before any work)."""
        owned = sorted(set(self.search) & set(PIPELINE_FIELDS))
        if owned:
            raise PipelineError(f"search setting {owned[0]!r} is chosen by the pipeline; allowed: every "
                                f"SearchConfig field but {', '.join(PIPELINE_FIELDS)}")
        try:
            return SearchConfig.model_validate({**DEMO_SEARCH, **self.search, "space": self.space})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise PipelineError(f"search settings: {problems}") from None


def command(name: str) -> str:
    """Path of one of the project's console scripts, next to the running interpreter."""
    path = Path(sys.executable).parent / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise PipelineError(f"command {name!r} not found: install splitnas (bash scripts/setup.sh)")
    return found


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
    try:
        get_space(config.space)
    except SpaceError as exc:
        raise PipelineError(str(exc)) from None
    config.search_settings()
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
        self.settings = config.search_settings()
        self.jobs: list[Job] = []

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
            "--seed", str(self.settings.seed), "--resume", "--db", self.db,
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

    @contextmanager
    def service(self) -> Iterator[str]:
        """The latency service on 127.0.0.1 for the duration of the searches; its log in the report directory."""
        self.console.rule("[bold]service: splitnas-api on 127.0.0.1")
        log = self.config.report_dir / "service.log"
        try:
            service = Service(self.db, port=self.config.port, log=log, timeout=60)
        except ServiceError as exc:
            raise PipelineError(f"{exc}\n(the whole log: {log})") from None
        self.console.print(f"service healthy at {service.url}")
        try:
            yield service.url
        finally:
            service.stop()
            self.console.print("service stopped")

    def search_setup(self) -> tuple[str, str, float, float]:
        """Head device, tail device, link rate and T_th of the demo search."""
        c, given = self.config, self.config.search
        if c.hwnasbench is not None:
            return REFERENCE_HEAD, REFERENCE_TAIL, self.settings.bandwidth_mbps if "bandwidth_mbps" in given else 8.0, \
                self.settings.t_th if "t_th" in given else 30.0
        bandwidth = self.settings.bandwidth_mbps if "bandwidth_mbps" in given else 2.0
        if "t_th" in given:
            return c.device, c.device, bandwidth, self.settings.t_th
        # A constraint that binds: the median split latency of random architectures on this machine.
        import random

        from spaces import sample_architecture

        with session_scope(self.db) as session:
            lut = load_lut(session, device=c.device, space=c.space)
        rng = random.Random(self.settings.seed)
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
        jobs_dir.mkdir(parents=True, exist_ok=True)
        # one pre-trained supernet per method and pre-training budget: a second run reuses it
        s = self.settings
        budget = f"e{s.pretrain_epochs}_s{s.steps_per_epoch}_b{s.batch_size}_n{s.data_limit}_seed{s.seed}"
        for method in c.methods:
            settings = SearchConfig.model_validate({
                **s.model_dump(), "method": method, "head_device": head, "tail_device": tail,
                "bandwidth_mbps": bandwidth, "t_th": t_th, "predictor_url": url,
                "supernet_cache": str(c.report_dir / "supernets" / f"{method}_{budget}.pt"),
            })
            settings_file = jobs_dir / f"{method}.settings.json"
            settings_file.write_text(settings.model_dump_json(indent=2) + "\n")
            output = jobs_dir / f"{method}.json"
            self.call(command("nas"), "search", "--config", str(settings_file), "--output", str(output),
                      "--db", self.db)
            self.jobs.append(read_job(json.loads(output.read_text())))

    def write_report(self) -> Path:
        return write_report(self.config.report_dir, self.db, self.devices, self.config.device, self.config.space,
                            self.jobs)
