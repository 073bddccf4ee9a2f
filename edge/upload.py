"""Where an end-to-end run is kept: uploaded to the service (``POST /e2e``) or stored in a database directly."""

from __future__ import annotations

import httpx

from db import queries
from db.engine import session_scope
from db.records import E2ERecord
from spaces.errors import UserError


class UploadError(UserError, RuntimeError):
    """The service refused the run or could not be reached."""


def upload(record: E2ERecord, url: str, token: str) -> int:
    """POST the run to ``url``/e2e with a bearer token; returns its id."""
    try:
        response = httpx.post(f"{url.rstrip('/')}/e2e", json=record.model_dump(mode="json"),
                              headers={"Authorization": f"Bearer {token}"}, timeout=30)
    except httpx.HTTPError as exc:
        raise UploadError(f"cannot upload the run to {url}: {exc}") from None
    if response.status_code != 201:
        raise UploadError(f"{url} refused the run ({response.status_code}): {response.text[:500]}")
    return int(response.json()["id"])


def store(record: E2ERecord, database_url: str) -> int:
    """Store the run in the database at ``database_url``; returns its id."""
    with session_scope(database_url) as session:
        return queries.add_e2e(session, record=record).id
