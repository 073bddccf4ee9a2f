"""Sweeps: a grid of searches (``nas sweep FILE``), each cell one search job, run as Ray tasks.

A sweep file names the sweep, the settings every cell shares (``base``) and the grid: for each
SearchConfig field (a dotted path reaches nested ones, ``supernet_optimizer.lr``) the list of its values;
the cells are their cross product, in the file's order. Each cell is stored as a search job with the
sweep and the cell's id, the hash of its settings: a sweep run again skips the cells that completed, and
runs again those that failed or were running when it stopped. Cells run as Ray tasks on a local Ray
started on demand with the machine's cores, or on an existing cluster (``address``); failed cells are
retried (``retries``), then reported, without stopping the others. Cells share pre-trained supernets
through one cache directory (``SearchConfig.supernet_cache`` as a directory): a cell that needs the
supernet another cell is pre-training waits for it and loads it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from db import get_settings, queries
from db.config import database_url
from db.engine import session_scope
from nas.config import SearchConfig
from nas.results import stored_error

INTERRUPTED = "interrupted: the sweep stopped while this cell ran (a resumed sweep runs the cell again)"


class SweepError(ValueError):
    """A sweep file or its cells cannot be used; the message says which and why."""


class SweepSpec(BaseModel):
    """A sweep file: its name, the settings every cell shares, the grid, and how often a failed cell is retried."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="the sweep's id in the database")
    base: dict[str, Any] = Field(default_factory=dict, description="SearchConfig settings of every cell")
    grid: dict[str, list[Any]] = Field(description="SearchConfig field (dotted for nested) -> its values")
    retries: int = Field(1, ge=0, description="runs again of a failed cell before it is reported failed")
    cpus_per_cell: float = Field(1.0, gt=0, description="Ray CPUs (and torch threads) of each cell")

    @field_validator("grid")
    @classmethod
    def _values(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if not grid:
            raise ValueError("the grid needs at least one field with its values")
        empty = [name for name, values in grid.items() if not values]
        if empty:
            raise ValueError(f"grid field {empty[0]!r} has no values")
        return grid


@dataclass(frozen=True)
class Cell:
    """One search of a sweep: its grid coordinates, its settings, and its id (the hash of the settings)."""

    values: dict[str, Any]
    config: SearchConfig

    @property
    def id(self) -> str:
        return cell_id(self.config)

    @property
    def label(self) -> str:
        return coordinates(self.values)


def coordinates(values: dict[str, Any]) -> str:
    """A cell's place in the grid: ``method=nasc seed=0``."""
    return " ".join(f"{k}={v}" for k, v in values.items())


def cell_id(config: SearchConfig) -> str:
    """The settings' hash: where the supernet cache lives does not change what a cell computes."""
    settings = config.model_dump(mode="json", exclude={"supernet_cache"})
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def read_sweep(path: Path) -> SweepSpec:
    """The sweep file at ``path`` (YAML or JSON); its name defaults to the file's stem."""
    try:
        values = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise SweepError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(values, dict):
        raise SweepError(f"{path} must be a mapping with a grid (and name, base, retries, cpus_per_cell)")
    values.setdefault("name", Path(path).stem)
    try:
        return SweepSpec.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors())
        raise SweepError(f"{path}: {problems}") from None


def expand(spec: SweepSpec, *, topology_dir: Path | None = None,
           supernet_cache: Path | None = None) -> list[Cell]:
    """The cells of the grid, each validated: a mistake names the cell, and nothing runs.

    A ``topology`` given as a file name is read (relative to ``topology_dir``); every cell without a
    ``supernet_cache`` of its own shares ``supernet_cache`` (a directory).
    """
    names = list(spec.grid)
    cells: list[Cell] = []
    seen: dict[str, str] = {}
    for combination in itertools.product(*(spec.grid[name] for name in names)):
        values = dict(zip(names, combination, strict=True))
        settings: dict[str, Any] = json.loads(json.dumps(spec.base))  # a deep copy: cells set nested values
        for name, value in values.items():
            _assign(settings, name, value)
        if isinstance(settings.get("topology"), str):
            settings["topology"] = _read_topology(Path(topology_dir or ".") / settings["topology"])
        if supernet_cache is not None and not settings.get("supernet_cache"):
            settings["supernet_cache"] = f"{supernet_cache}/"  # a directory, made where a cell first writes to it
        label = coordinates(values)
        try:
            config = SearchConfig.model_validate(settings)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise SweepError(f"cell {label}: {problems}") from None
        cell = Cell(values, config)
        if cell.id in seen:
            raise SweepError(f"cells {seen[cell.id]} and {label} are the same search; remove one of the values")
        seen[cell.id] = label
        cells.append(cell)
    return cells


def _assign(settings: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for parent in parents:
        settings = settings.setdefault(parent, {})
        if not isinstance(settings, dict):
            raise SweepError(f"grid field {dotted!r}: {parent!r} is not a group of settings")
    settings[leaf] = value


def _read_topology(path: Path) -> dict[str, Any]:
    from predictor.topology import TopologyError
    from predictor.topology_file import read_topology

    try:
        return read_topology(path)
    except TopologyError as exc:
        raise SweepError(f"topology {path}: {exc}") from None


@dataclass
class SweepOutcome:
    """What a run of a sweep did: cells completed now, skipped (completed before), and failed with their error."""

    name: str
    completed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # cell id -> error
    interrupted: int = 0  # jobs left running by an earlier run that stopped, marked failed
    wall_s: float = 0.0
    cells_s: float = 0.0  # the completed cells' own wall times added up: what they take one after another


# (done, running, failed, total): what a progress display shows while the cells run
Progress = Callable[[int, int, int, int], None]


def run_sweep(
    spec: SweepSpec, cells: list[Cell], *, db_url: str | None = None, address: str | None = None,
    num_cpus: int | None = None, progress: Progress | None = None,
) -> SweepOutcome:
    """Run the sweep's cells that have not completed yet as Ray tasks, and store each as a job of the sweep.

    ``address`` joins an existing Ray cluster (its workers need splitnas installed and a database all of
    them reach: PostgreSQL); without it a local Ray with ``num_cpus`` (default: every core) is started and
    stopped again. One process should run a given sweep at a time: a run marks the jobs an earlier one left
    running as interrupted.
    """
    url = database_url(db_url)  # the workers get the URL itself: they may not share the driver's settings
    start = time.perf_counter()
    outcome = SweepOutcome(spec.name)
    with session_scope(url) as session:
        queries.ensure_sweep(session, name=spec.name, spec=spec.model_dump(mode="json"))
        outcome.interrupted = len(queries.interrupt_sweep(session, name=spec.name, result=stored_error(INTERRUPTED)))
        done = {job.cell for job in queries.list_jobs(session, sweep=spec.name, status="completed")}
    todo = [cell for cell in cells if cell.id not in done]
    outcome.skipped = [cell.id for cell in cells if cell.id in done]
    if not todo:
        return outcome
    if progress is not None:
        progress(0, 0, 0, len(todo))
    with _ray(address, num_cpus) as ray:
        task = ray.remote(run_cell).options(
            num_cpus=spec.cpus_per_cell, max_retries=spec.retries, retry_exceptions=True,
        )
        threads = max(1, int(spec.cpus_per_cell))
        pending = {task.remote(cell.config.model_dump(mode="json"), url, spec.name, cell.id, threads): cell
                   for cell in todo}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=1.0)
            for ref in ready:
                cell = pending.pop(ref)
                try:
                    outcome.cells_s += ray.get(ref)
                    outcome.completed.append(cell.id)
                except ray.exceptions.RayError as exc:
                    outcome.failed[cell.id] = _cause(exc)
            if progress is not None:
                progress(len(outcome.completed), _running(url, spec.name), len(outcome.failed), len(todo))
    outcome.wall_s = time.perf_counter() - start
    return outcome


def run_cell(config: dict[str, Any], db_url: str, sweep: str, cell: str, threads: int) -> float:
    """A Ray task: one cell's search, stored as a job of the sweep; returns its wall time in seconds."""
    import torch

    from nas.jobs import run_search

    torch.set_num_threads(threads)
    start = time.perf_counter()
    run_search(SearchConfig.model_validate(config), db_url=db_url, sweep=sweep, cell=cell)
    return time.perf_counter() - start


def _running(url: str, sweep: str) -> int:
    with session_scope(url) as session:
        return len(queries.list_jobs(session, sweep=sweep, status="running"))


def _cause(exc: Exception) -> str:
    """A failed task's own exception, in one line (Ray wraps it with the worker's traceback)."""
    cause = getattr(exc, "cause", None)
    return f"{type(cause).__name__}: {cause}" if cause is not None else " ".join(str(exc).split())[:500]


@contextmanager
def _ray(address: str | None, num_cpus: int | None) -> Iterator[Any]:
    """Ray, started locally (quietly, no dashboard) or joined at ``address``; a Ray already running is used."""
    try:
        import ray
    except ImportError:
        raise SweepError("nas sweep runs its cells on Ray: pip install 'splitnas[sweep]'") from None
    if ray.is_initialized():
        yield ray
        return
    if address is None:
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                 configure_logging=True)
    else:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def default_cache(name: str) -> Path:
    """Where a sweep's cells share their pre-trained supernets: ``<data dir>/sweeps/<name>/supernets``."""
    return get_settings().data_dir / "sweeps" / name / "supernets"
