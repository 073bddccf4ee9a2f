"""Persisting fitted predictors in the database: a JSON envelope with the metadata, never a bare pickle."""

from __future__ import annotations

import json
import math
import platform
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from sqlalchemy.orm import Session

from db import queries
from db.models import FittedPredictor
from db.records import DEFAULT_RUNTIME
from predictor.base import PREDICTORS, LatencyPredictor
from predictor.data import TrainingData
from predictor.errors import PredictorError, PredictorLoadError, PredictorNotFoundError
from predictor.runtimes import device_label, runtime_flag

FORMAT = "splitnas-predictor"
FORMAT_VERSION = 1


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("splitnas", "scikit-learn", "numpy", "scipy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def clean_json(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has neither; PostgreSQL refuses them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def predictor_meta(predictor: LatencyPredictor, data: TrainingData) -> dict[str, Any]:
    """What a stored predictor says about itself: versions, data, hyperparameters, features."""
    return clean_json({
        "libraries": library_versions(),
        "data_fingerprint": data.fingerprint,
        "data": data.describe(),
        "params": predictor.get_params(),
        "features": list(getattr(predictor, "features_", ["flops"] if "flops" in predictor.kind else ["op key"])),
        "fitted_at": datetime.now(UTC).isoformat(),
    })


def dump_predictor(predictor: LatencyPredictor, meta: dict[str, Any]) -> bytes:
    envelope = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": predictor.kind,
        "params": predictor.get_params(), "state": predictor.get_state(), "meta": meta,
    }
    return json.dumps(envelope).encode()


def load_artifact(artifact: bytes) -> LatencyPredictor:
    """The predictor stored in ``artifact``, or PredictorLoadError saying why it cannot be used here."""
    try:
        envelope = json.loads(artifact)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PredictorLoadError(f"stored predictor is not a {FORMAT} envelope ({exc}); refit it") from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise PredictorLoadError(f"stored predictor is not a {FORMAT} envelope; refit it with `predictor fit`")
    if envelope.get("format_version") != FORMAT_VERSION:
        raise PredictorLoadError(
            f"stored predictor has envelope version {envelope.get('format_version')}, this splitnas reads "
            f"version {FORMAT_VERSION}; refit it with `predictor fit`"
        )
    kind = envelope.get("kind")
    if kind not in PREDICTORS:
        raise PredictorLoadError(f"stored predictor has unknown kind {kind!r}; known: {', '.join(PREDICTORS)}")
    try:
        return PREDICTORS[kind](**envelope["params"]).set_state(envelope["state"])
    except PredictorError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        wrote = envelope.get("meta", {}).get("libraries", {})
        raise PredictorLoadError(
            f"cannot restore the stored {kind} predictor ({type(exc).__name__}: {exc}); it was written by "
            f"splitnas {wrote.get('splitnas', 'unknown')}, this is {library_versions()['splitnas']}: refit it"
        ) from exc


def save_fitted(
    session: Session, *, predictor: LatencyPredictor, data: TrainingData, metrics: dict[str, Any]
) -> FittedPredictor:
    """Store a new version of the predictor with its metadata and metrics."""
    meta = predictor_meta(predictor, data)
    return queries.save_predictor(
        session, device=data.device, runtime=data.runtime, space=data.space, kind=predictor.kind,
        artifact=dump_predictor(predictor, meta), metrics=clean_json(metrics), meta=meta,
    )


def latest_fitted(
    session: Session, *, device: str, space: str, kind: str | None = None, runtime: str = DEFAULT_RUNTIME
) -> list[FittedPredictor]:
    return queries.latest_predictors(session, device=device, runtime=runtime, space=space, kind=kind)


def load_fitted(
    session: Session, *, device: str, space: str, kind: str, runtime: str = DEFAULT_RUNTIME
) -> tuple[LatencyPredictor, FittedPredictor]:
    """The newest stored predictor of ``kind`` and its row, or PredictorNotFoundError saying how to fit one."""
    rows = latest_fitted(session, device=device, runtime=runtime, space=space, kind=kind)
    if not rows:
        if queries.get_device(session, name=device) is None:
            known = ", ".join(d.name for d in queries.list_devices(session)) or "none yet"
            raise PredictorNotFoundError(f"unknown device {device!r} (known devices: {known})")
        raise PredictorNotFoundError(
            f"no fitted {kind} predictor for device {device_label(device, runtime)} in space {space!r}: "
            f"run `predictor fit --device {device}{runtime_flag(runtime)} --space {space} --kind {kind}`"
        )
    predictor = load_artifact(rows[0].artifact)
    predictor.runtime_ = rows[0].runtime  # the row says; artifacts stored before runtimes existed do not
    return predictor, rows[0]
