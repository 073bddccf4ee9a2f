"""``/e2e``: end-to-end runs of exported split networks (``splitnas-edge run --upload``), beside their predictions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query

from api.deps import SessionDep, TokenDep
from api.errors import AUTH_RESPONSES, BODY_RESPONSES, ERROR_RESPONSES, WRITE_RESPONSES, responses
from api.schemas import E2EPublic
from db import queries
from db.models import E2EMeasurement
from db.records import E2ERecord

router = APIRouter(prefix="/e2e", tags=["e2e"])

EXAMPLES = {
    "two devices over tcp": {
        "summary": "what `splitnas-edge run DIR --server HOST:PORT --upload URL --token T` sends",
        "value": {
            "job": "nasc-3f2c9a1e", "space": "fbnet-cifar100", "devices": ["raspi4", "edgegpu"],
            "runtime": "onnxruntime", "architecture": ["k3_e1"] * 22, "splits": [5], "codec": "float32",
            "transport": "tcp", "loss": 0.0, "requests": 20, "payload_bytes": 32768, "throughput_mbps": 7.9,
            "p50_ms": 48.2, "p90_ms": 51.0, "predicted_ms": 44.1,
            "parts": [{"index": 0, "device": "raspi4", "p50_ms": 6.1, "p90_ms": 6.5, "predicted_ms": 5.8},
                      {"index": 1, "device": "edgegpu", "p50_ms": 3.2, "p90_ms": 3.4, "predicted_ms": 2.9}],
            "breakdown": {"head": 6.1, "encode": 0.1, "transfer": 38.5, "decode": 0.1, "tail": 3.2},
        },
    }
}


def _public(row: E2EMeasurement) -> dict:
    record = E2ERecord.model_validate(row, from_attributes=True)
    return record.model_dump() | {"id": row.id, "created_at": row.created_at, "error_ms": record.error_ms,
                                  "error_pct": record.error_pct}


@router.post("", status_code=201, response_model=E2EPublic,
             responses=responses(ERROR_RESPONSES, AUTH_RESPONSES, BODY_RESPONSES, WRITE_RESPONSES))
def post_e2e(record: Annotated[E2ERecord, Body(openapi_examples=EXAMPLES)], token: TokenDep,
             session: SessionDep) -> dict:
    """Store one end-to-end run; a device-scoped token may store only runs whose head ran on its device."""
    token.check_device(record.devices[0], ["body", "devices", 0])
    row = queries.add_e2e(session, record=record)
    session.commit()
    return _public(row)


@router.get("", response_model=list[E2EPublic], responses=responses(ERROR_RESPONSES))
def get_e2e(
    session: SessionDep,
    job: Annotated[str | None, Query(max_length=64, description="only this search job's runs")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="runs per page")] = 100,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1, description="next page: the last id of the previous one")] = 0,
) -> list[dict]:
    """End-to-end runs in id order, each with its measured p50, its prediction and the error between them."""
    return [_public(row) for row in queries.list_e2e(session, job=job, limit=limit, after_id=after_id)]
