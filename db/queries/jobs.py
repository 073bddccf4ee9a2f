"""Queries of the ``search_jobs`` and ``sweeps`` tables: a job, its progress history and its result; a sweep's jobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.columns import equals
from db.models import SearchJob, Sweep, utcnow


def create_job(
    session: Session, *, uid: str, method: str, space: str, config: dict[str, Any], sweep: str | None = None,
    cell: str | None = None,
) -> SearchJob:
    """A running job; one of a sweep names the sweep (which must exist) and its cell."""
    sweep_id = None
    if sweep is not None:
        found = get_sweep(session, name=sweep)
        if found is None:
            raise ValueError(f"unknown sweep {sweep!r}")
        sweep_id = found.id
    job = SearchJob(uid=uid, method=method, space=space, config=config, sweep_id=sweep_id, cell=cell)
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, uid: str) -> SearchJob | None:
    return session.scalar(select(SearchJob).where(equals(SearchJob.uid, uid)))


def list_jobs(
    session: Session, *, method: str | None = None, status: str | None = None, sweep: str | None = None
) -> list[SearchJob]:
    """Jobs oldest first, of one method, status or sweep (by name) where given."""
    query = select(SearchJob).order_by(SearchJob.created_at, SearchJob.id)
    if sweep is not None:
        query = query.join(Sweep).where(equals(Sweep.name, sweep))
    if method:
        query = query.where(equals(SearchJob.method, method))
    if status:
        query = query.where(equals(SearchJob.status, status))
    return list(session.scalars(query))


def append_job_history(session: Session, *, uid: str, records: list[dict[str, Any]]) -> SearchJob:
    """Append progress records (one per epoch) to the job ``uid``."""
    job = get_job(session, uid=uid)
    if job is None:
        raise ValueError(f"unknown search job {uid!r}")
    job.history = [*job.history, *records]  # a new list: JSON columns do not track in-place changes
    return job


def finish_job(session: Session, *, uid: str, status: str, result: dict[str, Any]) -> SearchJob:
    """Mark the running job ``uid`` completed or failed, with its result (or error).

    A job ends once: one marked failed as interrupted (``interrupt_sweep``) keeps that status even when the
    process that ran it finishes after all, so a resumed sweep never holds a cell twice.
    """
    job = get_job(session, uid=uid)
    if job is None:
        raise ValueError(f"unknown search job {uid!r}")
    if job.status != "running":
        raise ValueError(f"search job {uid} has already ended ({job.status})")
    job.status, job.result, job.finished_at = status, result, utcnow()
    return job


def get_sweep(session: Session, *, name: str) -> Sweep | None:
    return session.scalar(select(Sweep).where(equals(Sweep.name, name)))


def ensure_sweep(session: Session, *, name: str, spec: dict[str, Any]) -> Sweep:
    """The sweep ``name``, created with ``spec``; an existing one must have been made with the same spec."""
    sweep = get_sweep(session, name=name)
    if sweep is None:
        sweep = Sweep(name=name, spec=spec)
        session.add(sweep)
        session.flush()
    elif sweep.spec != spec:
        raise ValueError(f"sweep {name!r} is stored with another grid; resume it with the same file, "
                         "or give the new grid another name")
    return sweep


def list_sweeps(session: Session) -> list[Sweep]:
    return list(session.scalars(select(Sweep).order_by(Sweep.created_at, Sweep.id)))


def interrupt_sweep(session: Session, *, name: str, result: dict[str, Any]) -> list[SearchJob]:
    """Mark the sweep's running jobs failed with ``result`` (their process is gone); returns them."""
    running = list_jobs(session, sweep=name, status="running")
    for job in running:
        job.status, job.result, job.finished_at = "failed", result, utcnow()
    return running
