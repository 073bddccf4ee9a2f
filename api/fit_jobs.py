"""Refits in the background: one worker thread per fit job, polled at ``GET /predictors/fit/{id}``."""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from api.cache import LUTCache
from api.errors import FieldError
from db.engine import session_scope
from predictor import fit_predictors

log = logging.getLogger(__name__)


@dataclass
class FitJob:
    """One refit: running, then done with its result or failed with its error."""

    device: str
    space: str
    kinds: list[str]
    runtime: str | None = None  # None: the device's only runtime
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: Literal["running", "done", "failed"] = "running"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


class FitJobs:
    """The fit jobs of one service process (held in memory: with several workers, poll the one that answered)."""

    def __init__(self, database_url: str, cache: LUTCache):
        self.database_url = database_url
        self.cache = cache
        self._jobs: dict[str, FitJob] = {}
        self._lock = threading.Lock()

    def start(self, device: str, space: str, kinds: list[str], runtime: str | None = None) -> FitJob:
        """A new running job, or 409 while a fit of ``device`` runs (two would race for the next version)."""
        with self._lock:
            running = [j for j in self._jobs.values() if j.device == device and j.status == "running"]
            if running:
                raise FieldError(409, ["body", "device"], f"a fit of device {device!r} is running "
                                 f"(job {running[0].id}); poll GET /predictors/fit/{running[0].id}", "conflict")
            job = FitJob(device, space, kinds, runtime)
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), name=f"fit-{device}", daemon=True).start()
        return job

    def get(self, job_id: str) -> FitJob | None:
        return self._jobs.get(job_id)

    def _run(self, job: FitJob) -> None:
        try:
            with session_scope(self.database_url) as session:
                reports = fit_predictors(session, device=job.device, space=job.space, kinds=job.kinds,
                                         runtime=job.runtime)
            # the new versions are committed: the cached tables are rebuilt from them
            refreshed = self.cache.refresh(job.device, job.space)
            job.result = {
                "device": job.device, "runtime": reports[0].runtime, "space": job.space,
                "reports": [{"kind": r.kind, "version": r.version, "metrics": r.metrics, "meta": r.meta}
                            for r in reports],
                "refreshed": [f"{space}/{kind}" for _device, _runtime, space, kind in refreshed],
            }
            job.status = "done"
        except Exception as exc:
            log.exception("fit job %s of %s failed", job.id, job.device)
            job.error, job.status = str(exc), "failed"
        finally:
            job.finished_at = datetime.now(UTC)
