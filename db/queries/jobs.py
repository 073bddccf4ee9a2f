"""Queries of the ``search_jobs`` table: a job, its progress history and its result."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.columns import equals
from db.models import SearchJob, utcnow


def create_job(session: Session, *, uid: str, method: str, space: str, config: dict[str, Any]) -> SearchJob:
    job = SearchJob(uid=uid, method=method, space=space, config=config)
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, uid: str) -> SearchJob | None:
    return session.scalar(select(SearchJob).where(equals(SearchJob.uid, uid)))


def list_jobs(session: Session, *, method: str | None = None, status: str | None = None) -> list[SearchJob]:
    query = select(SearchJob).order_by(SearchJob.created_at)
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
    """Mark the job ``uid`` completed or failed, with its result (or error)."""
    job = get_job(session, uid=uid)
    if job is None:
        raise ValueError(f"unknown search job {uid!r}")
    job.status, job.result, job.finished_at = status, result, utcnow()
    return job
