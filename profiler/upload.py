"""Uploading measurements to the service: a local spool of batches, retries with exponential backoff.

Every batch is written to the spool (one JSON file) before it is sent, and its file is deleted only
once the server acknowledged it, so nothing measured is lost while the server is unreachable. The
server stores a batch idempotently (a measurement is identified by its run uid and key), so sending a
batch again after a lost acknowledgement stores nothing twice, and in any order (a re-sent early batch
does not reopen a finished run): a batch the server keeps failing on is skipped, not a wall in front of
the others.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from db.records import MeasurementBatch

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


REJECT_STATUSES = frozenset({400, 409, 413, 422})


# A spool on a disk that cannot take more: full, over quota, or read-only.
DISK_ERRNOS = {errno.ENOSPC: "no space left on its disk", errno.EDQUOT: "disk quota exceeded",
               errno.EROFS: "its file system is read-only"}


class SpoolError(RuntimeError):
    """A batch could not be written to the spool; nothing partial was left behind."""


class UploadError(RuntimeError):
    """The server refused a batch for a reason that retrying does not fix (bad token, invalid data)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class Spool:
    """A directory of batches waiting for upload, sent oldest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def put(self, batch: MeasurementBatch) -> Path:
        """Write ``batch`` atomically and durably (temporary file, fsync, rename) and return its path.

        Raises SpoolError (with the reason, e.g. a full disk) when it cannot; the temporary file is removed.
        """
        path = self.directory / f"{time.time_ns():020d}-{batch.run.uid}.json"
        partial = path.with_suffix(".part")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as handle:
                handle.write(batch.model_dump_json().encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            reason = DISK_ERRNOS.get(exc.errno or 0, exc.strerror or str(exc))
            raise SpoolError(
                f"cannot write a batch to the spool {self.directory}: {reason} (free space there, or choose "
                "another directory with --spool)"
            ) from exc
        return path

    def pending(self) -> list[Path]:
        return sorted(self.directory.glob("*.json")) if self.directory.is_dir() else []

    def reject(self, path: Path) -> Path:
        """Move a batch the server declared invalid to ``rejected/``, kept for inspection."""
        target = self.directory / "rejected" / path.name
        target.parent.mkdir(exist_ok=True)
        return path.replace(target)

    @staticmethod
    def load(path: Path) -> MeasurementBatch:
        return MeasurementBatch.model_validate_json(path.read_text())


@dataclass
class UploadReport:
    """What one flush of the spool achieved."""

    batches: int = 0
    inserted: int = 0
    duplicates: int = 0
    pending: int = 0
    rejected: int = 0  # moved to rejected/: the server refused their content
    errors: list[str] = field(default_factory=list)

    def add(self, other: UploadReport) -> None:
        self.batches += other.batches
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.pending = other.pending
        self.rejected += other.rejected
        self.errors += other.errors


class Uploader:
    """Posts batches to ``{server}/measurements`` with a bearer token, retrying transient failures."""

    def __init__(
        self, server: str, token: str, *, retries: int = 5, backoff: float = 0.5, max_backoff: float = 30.0,
        timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = server.rstrip("/") + "/measurements"
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def send(self, body: str, *, retries: int | None = None) -> tuple[int, int]:
        """POST one batch (its JSON text); returns (inserted, duplicates).

        Retries connection failures and 408/429/5xx answers with exponential backoff; raises
        UploadError at once for other refusals and httpx.HTTPError when the retries run out.
        """
        retries = self.retries if retries is None else retries
        attempt = 0
        while True:
            try:
                response = self.client.post(self.url, content=body, headers={"Content-Type": "application/json"})
                if response.status_code not in RETRY_STATUSES:
                    break
                failure: Exception = httpx.HTTPStatusError(
                    f"server answered {response.status_code}", request=response.request, response=response
                )
            except httpx.TransportError as exc:
                failure = exc
            if attempt >= retries:
                raise failure
            self.sleep(min(self.max_backoff, self.backoff * 2**attempt))
            attempt += 1
        if response.status_code not in (200, 201):
            raise UploadError(
                f"server refused the batch ({response.status_code}): {response.text[:500]}",
                status=response.status_code,
            )
        answer = response.json()
        return int(answer["inserted"]), int(answer["duplicates"])

    def flush(self, spool: Spool, *, retries: int | None = None) -> UploadReport:
        """Send every spooled batch, oldest first, deleting each once acknowledged.

        A batch the server refuses for its content (400, 409, 413, 422) is moved to ``rejected/``; one it
        still fails on (5xx) after its retries stays in the spool for the next flush while the others are
        sent. A refused token or an unreachable server stops the flush: the other batches would fail too.
        """
        report = UploadReport()
        for path in spool.pending():
            try:
                inserted, duplicates = self.send(path.read_text(), retries=retries)
            except UploadError as exc:
                report.errors.append(f"{path.name}: {exc}")
                if exc.status not in REJECT_STATUSES:
                    break
                spool.reject(path)
                report.rejected += 1
                continue
            except httpx.HTTPStatusError as exc:
                report.errors.append(f"{path.name}: {exc}; kept for the next upload")
                continue
            except httpx.HTTPError as exc:
                report.errors.append(f"{path.name}: {type(exc).__name__}: {exc}")
                break
            path.unlink()
            report.batches += 1
            report.inserted += inserted
            report.duplicates += duplicates
        report.pending = len(spool.pending())
        return report
