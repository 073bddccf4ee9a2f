"""Search jobs: run a registered method with its progress and typed result stored in the database."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from db import get_settings, queries
from db.engine import session_scope
from db.models import SearchJob
from nas import baselines as _baselines  # noqa: F401  (registers the methods)
from nas import gradient as _gradient  # noqa: F401
from nas import nasc as _nasc  # noqa: F401
from nas import tune as _tune  # noqa: F401  (imports Ray only when it runs)
from nas.config import SearchConfig
from nas.data import ImageData, load_data, subset
from nas.latency import SplitLatencyModel, TopologyLatency
from nas.latency_client import LatencyClient
from nas.methods import CallbackList, SearchCallback, SearchContext, SearchResult, get_method
from nas.results import Job, Result, ResultError, SplitResult, TopologyResult, read_result, stored_error
from nas.searched import save_searched_network, weights_path
from nas.supernet import SplitNetwork
from predictor.latency import Link
from predictor.topology_file import parse_topology
from spaces import Architecture, get_space


class JobRecorder(SearchCallback):
    """Appends every epoch's progress record to the job's history in the database."""

    def __init__(self, db_url: str | None, uid: str) -> None:
        self.db_url, self.uid = db_url, uid
        self.started = time.perf_counter()

    def on_epoch(self, record: dict[str, Any]) -> None:
        record = {**record, "time_s": round(time.perf_counter() - self.started, 3)}
        with session_scope(self.db_url) as session:
            queries.append_job_history(session, uid=self.uid, records=[record])


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown --device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available here; use --device cpu or auto")
    return device


def run_search(
    config: SearchConfig, *, db_url: str | None = None, client: LatencyClient | None = None,
    callback: SearchCallback | None = None, data: ImageData | None = None, weights: Path | None = None,
    sweep: str | None = None, cell: str | None = None,
) -> Job:
    """Run ``config.method`` as a stored search job and return it.

    Without ``client``, latency tables come from ``config.predictor_url`` or, without a URL, the
    database. ``data`` skips loading ``config.data`` (e.g. to share it between runs). Everything a typo
    can break (method, space, device, latency tables, data) is checked before the job is stored, so a
    mistake leaves no failed job behind. The re-trained answer's weights are written to ``weights``
    (default: ``<data dir>/jobs/<uid>.weights.pt``) before the job is marked completed, and its result
    names the file (``nas.searched.load_searched_network``). A cell of a sweep (``nas.sweep``) names the
    stored sweep and the cell.
    """
    method = get_method(config.method)
    get_space(config.space)
    device = resolve_device(config.device)
    start = time.perf_counter()
    own_client = client is None
    client = client or LatencyClient(
        config.predictor_url, db_url=db_url, predictor=config.predictor, runtime=config.runtime
    )
    try:
        client.check()
        latency = (
            TopologyLatency(client, space=config.space, topology=parse_topology(config.topology, source="topology"))
            if config.topology is not None
            else SplitLatencyModel(
                client, space=config.space, head_device=config.head_device, tail_device=config.tail_device,
                link=Link(config.bandwidth_mbps, config.bits, config.codec),
            )
        )
        data = data or subset(load_data(config.data), config.data_limit)
        uid = uuid.uuid4().hex
        with session_scope(db_url) as session:
            queries.create_job(session, uid=uid, method=config.method, space=config.space,
                               config=config.model_dump(mode="json"), sweep=sweep, cell=cell)
        try:
            callbacks = CallbackList([JobRecorder(db_url, uid)] + ([callback] if callback is not None else []))
            ctx = SearchContext(config, data, latency, device, callbacks)
            found = method(ctx)
            result = summarize(ctx, found, wall_s=time.perf_counter() - start)
            if isinstance(found.network, SplitNetwork):
                path = weights or weights_path(get_settings().data_dir / "jobs" / f"{uid}.json")
                kept = save_searched_network(found.network, path, job=uid)
                result = result.model_copy(update={"weights": str(kept)})
        except BaseException as exc:
            with session_scope(db_url) as session:
                queries.finish_job(session, uid=uid, status="failed",
                                   result=stored_error(f"{type(exc).__name__}: {exc}"))
            raise
    finally:
        if own_client:
            client.close()
    with session_scope(db_url) as session:
        return job_from_row(queries.finish_job(session, uid=uid, status="completed",
                                               result=result.model_dump(mode="json", by_alias=True)))


def summarize(ctx: SearchContext, found: SearchResult, *, wall_s: float) -> Result:
    """The typed result: architecture, split, latency breakdown, payload, accuracy, and where time went.

    A search on a topology (``config.topology``) gives a ``TopologyResult``, any other a ``SplitResult``;
    a method's ``extra`` fills the fields of its kind (an unknown one is refused).
    """
    config = ctx.config
    splits = tuple(found.extra.get("splits", (found.split,)))  # a topology's methods report every split point
    arch = Architecture(ctx.latency.space, tuple(found.blocks), splits)
    breakdown = ctx.latency.breakdown(arch)
    common = {
        "architecture": arch.encode(),
        "split": found.split,
        "latency": breakdown,
        "payload_bytes": breakdown["payload_bytes"],
        "meets_t_th": breakdown["total_ms"] <= config.t_th,
        "latency_penalty_ms": max(0.0, breakdown["total_ms"] - config.t_th),
        "loss_rate": config.loss,
        "accuracy_at_loss": found.accuracy_at_loss,
        "accuracy_clean": found.accuracy_clean,
        "convergence": found.convergence,
        "wall_time_s": wall_s,
        "latency_time_s": ctx.latency.seconds,
        "latency_share": ctx.latency.seconds / wall_s if wall_s > 0 else 0.0,
        "latency_queries": ctx.latency.queries,
        "latency_source": ctx.latency.client.source,
        "runtimes": ctx.latency.client.runtimes(ctx.latency.space.name),
        "data": ctx.data.name,
        "num_classes": ctx.data.num_classes,
        "device": str(ctx.device),
        "codec": None if config.topology is not None else config.payload_codec,
        **found.extra,
    }
    kind = TopologyResult if config.topology is not None else SplitResult
    return kind.model_validate(common)


def job_from_row(job: SearchJob) -> Job:
    """A stored job, typed; an unreadable stored result is a ``ResultError`` naming the job."""
    result, error = read_result(job.result, uid=job.uid)
    try:
        config = SearchConfig.model_validate(job.config)
    except ValidationError as exc:
        raise ResultError(f"job {job.uid}: its stored settings are not valid now: {exc.errors()[0]['msg']}") from None
    return Job(
        uid=job.uid, method=job.method, space=job.space, status=job.status,  # type: ignore[arg-type]
        sweep=job.sweep.name if job.sweep is not None else None, cell=job.cell,
        created_at=job.created_at.isoformat() if job.created_at else None,
        finished_at=job.finished_at.isoformat() if job.finished_at else None,
        config=config, history=job.history, result=result, error=error,
    )


def load_jobs(
    db_url: str | None = None, *, uids: list[str] | None = None, method: str | None = None,
    status: str | None = None, sweep: str | None = None,
) -> list[Job]:
    """Stored jobs (all, the given uids, or a sweep's), oldest first; an error names unknown uids or sweeps."""
    with session_scope(db_url) as session:
        if uids:
            jobs = [queries.get_job(session, uid=uid) for uid in uids]
            missing = [uid for uid, job in zip(uids, jobs, strict=True) if job is None]
            if missing:
                raise ValueError(f"no search job with uid {', '.join(missing)}")
            return [job_from_row(job) for job in jobs if job is not None]
        if sweep is not None and queries.get_sweep(session, name=sweep) is None:
            known = ", ".join(s.name for s in queries.list_sweeps(session)) or "none yet"
            raise ValueError(f"no sweep named {sweep!r} (stored sweeps: {known})")
        return [job_from_row(job) for job in queries.list_jobs(session, method=method, status=status, sweep=sweep)]


def write_job(job: Job, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(job.model_dump_json(indent=2, by_alias=True) + "\n")
    return path
