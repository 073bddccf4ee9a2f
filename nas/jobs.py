"""Search jobs: run a registered method with its progress stored in the database, and the job's JSON form."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import torch

from db import queries
from db.engine import session_scope
from db.models import SearchJob
from nas import baselines as _baselines  # noqa: F401  (registers the methods)
from nas import gradient as _gradient  # noqa: F401
from nas import nasc as _nasc  # noqa: F401
from nas.config import SearchConfig
from nas.data import ImageData, load_data, subset
from nas.latency import SplitLatencyModel, TopologyLatency
from nas.latency_client import LatencyClient
from nas.methods import CallbackList, SearchCallback, SearchContext, SearchResult, get_method
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
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available here; use --device cpu or auto")
    return device


def run_search(
    config: SearchConfig, *, db_url: str | None = None, client: LatencyClient | None = None,
    callback: SearchCallback | None = None, data: ImageData | None = None,
) -> dict[str, Any]:
    """Run ``config.method`` as a stored search job; returns the job as a dict (see ``job_dict``).

    Without ``client``, latency tables come from ``config.predictor_url`` or, without a URL, the
    database. ``data`` skips loading ``config.data`` (e.g. to share it between runs).
    """
    method = get_method(config.method)
    get_space(config.space)
    uid = uuid.uuid4().hex
    with session_scope(db_url) as session:
        queries.create_job(session, uid=uid, method=config.method, space=config.space,
                           config=config.model_dump(mode="json"))
    recorder = JobRecorder(db_url, uid)
    start = time.perf_counter()
    own_client = client is None
    client = client or LatencyClient(config.predictor_url, db_url=db_url, predictor=config.predictor)
    try:
        client.check()
        latency = (
            TopologyLatency(client, space=config.space, topology=parse_topology(config.topology, source="topology"))
            if config.topology is not None
            else SplitLatencyModel(
                client, space=config.space, head_device=config.head_device, tail_device=config.tail_device,
                link=Link(config.bandwidth_mbps, config.bits),
            )
        )
        data = data or subset(load_data(config.data), config.data_limit)
        device = resolve_device(config.device)
        callbacks = CallbackList([recorder] + ([callback] if callback is not None else []))
        ctx = SearchContext(config, data, latency, device, callbacks)
        found = method(ctx)
        result = summarize(ctx, found, wall_s=time.perf_counter() - start)
        status = "completed"
    except BaseException as exc:
        with session_scope(db_url) as session:
            queries.finish_job(session, uid=uid, status="failed", result={"error": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        if own_client:
            client.close()
    with session_scope(db_url) as session:
        return job_dict(queries.finish_job(session, uid=uid, status=status, result=result))


def summarize(ctx: SearchContext, found: SearchResult, *, wall_s: float) -> dict[str, Any]:
    """The stored result: architecture, split, latency breakdown, payload, accuracy, and where time went."""
    config = ctx.config
    splits = tuple(found.extra.get("splits", (found.split,)))  # a topology's methods report every split point
    arch = Architecture(ctx.latency.space, tuple(found.blocks), splits)
    breakdown = ctx.latency.breakdown(arch)
    penalty = max(0.0, breakdown["total_ms"] - config.t_th)
    return {
        "architecture": arch.encode(),
        "split": found.split,
        "latency": breakdown,
        "payload_bytes": breakdown["payload_bytes"],
        "meets_t_th": breakdown["total_ms"] <= config.t_th,
        "latency_penalty_ms": penalty,
        "loss_rate": config.loss,
        "accuracy_at_loss": found.accuracy_at_loss,
        "accuracy_clean": found.accuracy_clean,
        "convergence": found.convergence,
        "wall_time_s": wall_s,
        "latency_time_s": ctx.latency.seconds,
        "latency_share": ctx.latency.seconds / wall_s if wall_s > 0 else 0.0,
        "latency_queries": ctx.latency.queries,
        "latency_source": ctx.latency.client.source,
        "data": ctx.data.name,
        "num_classes": ctx.data.num_classes,
        "device": str(ctx.device),
        **found.extra,
    }


def job_dict(job: SearchJob) -> dict[str, Any]:
    """A stored job as plain JSON-ready data."""
    return {
        "uid": job.uid, "method": job.method, "space": job.space, "status": job.status,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "config": job.config, "history": job.history, "result": job.result,
    }


def load_jobs(
    db_url: str | None = None, *, uids: list[str] | None = None, method: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Stored jobs (all, or the given uids) as dicts, oldest first; an error names unknown uids."""
    with session_scope(db_url) as session:
        if uids:
            jobs = [queries.get_job(session, uid=uid) for uid in uids]
            missing = [uid for uid, job in zip(uids, jobs, strict=True) if job is None]
            if missing:
                raise ValueError(f"no search job with uid {', '.join(missing)}")
            return [job_dict(job) for job in jobs if job is not None]
        return [job_dict(job) for job in queries.list_jobs(session, method=method, status=status)]


def write_job(job: dict[str, Any], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(job, indent=2) + "\n")
    return path
