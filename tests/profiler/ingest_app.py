"""A minimal real ingest service for the upload tests: the ``POST /measurements`` contract of the api.

Configured by environment variables: INGEST_DB_URL, INGEST_TOKEN, INGEST_DIE_AFTER=n to make the
process kill itself (SIGKILL) right after storing its n-th batch, before answering: the worst moment
for a client, whose batch is stored but never acknowledged; and INGEST_FAIL_KEY=key to answer 500 to
every batch holding that measurement key, as a server with a bug that this batch triggers would.
"""

from __future__ import annotations

import os
import signal
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException

from db import queries, session_scope
from db.records import MeasurementBatch

app = FastAPI()
stored_batches = 0


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/measurements")
def post_measurements(batch: MeasurementBatch, authorization: Annotated[str, Header()] = "") -> dict[str, int]:
    global stored_batches
    if authorization != f"Bearer {os.environ['INGEST_TOKEN']}":
        raise HTTPException(status_code=401, detail="invalid token")
    if any(m.key == os.environ.get("INGEST_FAIL_KEY") for m in batch.measurements):
        raise HTTPException(status_code=500, detail="internal server error")
    with session_scope(os.environ["INGEST_DB_URL"]) as session:
        inserted, duplicates = queries.ingest_batch(session, batch=batch)
    stored_batches += 1
    if stored_batches == int(os.environ.get("INGEST_DIE_AFTER", "0")):
        os.kill(os.getpid(), signal.SIGKILL)
    return {"inserted": inserted, "duplicates": duplicates}
