"""What the service, the NAS engine and the CLI call: fit, load, and build a device's lookup table."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from db import queries
from db.models import FittedPredictor
from db.records import DEFAULT_RUNTIME
from predictor.base import LatencyPredictor, create_predictor, list_predictors
from predictor.data import TrainingData, load_training_data
from predictor.errors import PredictorNotFoundError, UnmeasuredOpError
from predictor.evaluate import evaluate_kind
from predictor.latency import DeviceLUT
from predictor.lookup import LookupPredictor
from predictor.runtimes import device_label, resolve_runtime, runtime_flag
from predictor.store import latest_fitted, load_artifact, load_fitted, save_fitted
from spaces import get_space


@dataclass
class FitReport:
    """One fitted and stored predictor: its version, metrics (``fit``, ``scale``, ``protocols``), meta."""

    device: str
    space: str
    kind: str
    version: int
    metrics: dict[str, Any]
    meta: dict[str, Any]
    predictor: LatencyPredictor = field(repr=False)
    runtime: str = DEFAULT_RUNTIME

    @property
    def pi_gflops(self) -> float | None:
        return self.metrics.get("fit", {}).get("pi_gflops")

    @property
    def r2(self) -> float | None:
        return self.metrics.get("fit", {}).get("r2")


def expand_kinds(kinds: Sequence[str]) -> list[str]:
    """``all`` means every registered kind; unknown kinds fail with the allowed ones."""
    chosen: list[str] = []
    for kind in kinds:
        for name in list_predictors() if kind == "all" else [kind]:
            if name not in list_predictors():
                allowed = ", ".join(["all", *list_predictors()])
                raise PredictorNotFoundError(f"unknown predictor kind {name!r}; allowed: {allowed}")
            if name not in chosen:
                chosen.append(name)
    return chosen


def training_data(session: Session, *, device: str, space: str, runtime: str | None = None) -> TrainingData:
    """The device's training data under ``runtime`` (default: its only one), or PredictorNotFoundError naming
    the known devices or telling how to measure."""
    if queries.get_device(session, name=device) is None:
        known = ", ".join(d.name for d in queries.list_devices(session)) or "none yet"
        raise PredictorNotFoundError(f"unknown device {device!r} (known devices: {known})")
    data = load_training_data(session, device=device, space=space, runtime=runtime)
    if not data.of_target("block", "fixed"):
        raise PredictorNotFoundError(
            f"no measurements of device {device_label(device, data.runtime)} in space {space!r}: run `profiler run "
            f"--device {device}{runtime_flag(data.runtime)} --space {space}` on it (or `profiler import-hwnasbench "
            "PATH` for the public devices)"
        )
    return data


# called with (kind, step) before each step: "fit", each of evaluate.PROTOCOL_STEPS that has data, "store"
FitProgress = Callable[[str, str], None]


def fit_kind(
    kind: str, data: TrainingData, *, evaluate: bool = True, params: dict[str, Any] | None = None, seed: int = 0,
    progress: FitProgress | None = None,
) -> tuple[LatencyPredictor, dict[str, Any]]:
    """One kind fitted on ``data`` and its metrics (``fit``, the correction, held-out ``protocols``); no database."""
    step = progress or (lambda _kind, _step: None)
    step(kind, "fit")
    predictor = create_predictor(kind, **(params or {})).fit(data)
    metrics: dict[str, Any] = {"fit": predictor.fit_summary(), "scale": predictor.scale_,
                               "weight_ms_per_mparam": predictor.weight_ms_per_mparam_,
                               "call_ms": predictor.call_ms_, "wait_ms": predictor.wait_.ms,
                               "wait_share": predictor.wait_.share}
    if evaluate:
        scores = evaluate_kind(kind, data, seed=seed, params=params, progress=lambda protocol: step(kind, protocol))
        metrics["protocols"] = {name: s.to_dict() for name, s in scores.items()}
    return predictor, metrics


def fit_predictors(
    session: Session, *, device: str, space: str, kinds: Sequence[str], evaluate: bool = True,
    params: dict[str, dict[str, Any]] | None = None, seed: int = 0, progress: FitProgress | None = None,
    runtime: str | None = None,
) -> list[FitReport]:
    """Fit each kind on the device's measurements under ``runtime`` (default: its only one), evaluate it on
    held-out data, store it; one report each.

    No transaction is open while fitting, which takes seconds (and each writer of a SQLite file locks
    out the others): the data is read and that transaction ended, then each kind is fitted and stored
    in a transaction of its own, committed at once, so a failure later keeps the kinds stored before
    it. ``session`` is committed. ``params`` maps a kind to hyperparameters (defaults otherwise).
    """
    chosen = expand_kinds(kinds)
    data = training_data(session, device=device, space=space, runtime=runtime)
    session.commit()
    reports = []
    for kind in chosen:
        predictor, metrics = fit_kind(kind, data, evaluate=evaluate, params=(params or {}).get(kind), seed=seed,
                                      progress=progress)
        if progress is not None:
            progress(kind, "store")
        row = save_fitted(session, predictor=predictor, data=data, metrics=metrics)
        session.commit()
        reports.append(FitReport(device, space, kind, row.version, row.metrics, row.meta, predictor, data.runtime))
    return reports


def load_predictor(
    session: Session, *, device: str, space: str, kind: str, runtime: str | None = None
) -> LatencyPredictor:
    """The newest stored predictor of ``kind`` for the device, runtime (default: its only one) and space."""
    runtime = resolve_runtime(session, device=device, runtime=runtime)
    return load_fitted(session, device=device, runtime=runtime, space=space, kind=kind)[0]


# -- choosing a kind --------------------------------------------------------------------------------


def _mape(row: FittedPredictor, protocol: str) -> float:
    scores = row.metrics.get("protocols", {}).get(protocol) or {}
    if not scores.get("n") or scores.get("mape") is None or scores.get("coverage", 0) < 1:
        return math.inf
    return float(scores["mape"])


# without held-out metrics to compare (fitted with evaluate=False), the fallback is taken in this order
FALLBACK_PREFERENCE = ("gbdt", "flops-linear-intercept", "flops-linear")


def choose_kinds(rows: Sequence[FittedPredictor]) -> tuple[FittedPredictor, FittedPredictor | None]:
    """(primary, fallback) among stored predictors.

    The primary is the kind with the lowest held-out model-level MAPE; without measured architectures,
    the lookup table (exact where measured). The fallback answers what the primary cannot: the
    non-lookup kind with the lowest held-out per-entry MAPE.
    """
    by_kind = {row.kind: row for row in rows}
    primary = min(rows, key=lambda r: (_mape(r, "model"), r.kind != "lookup", _mape(r, "entry")))
    if math.isinf(_mape(primary, "model")) and "lookup" in by_kind:
        primary = by_kind["lookup"]
    others = [r for r in rows if r.kind != "lookup" and r is not primary]
    preference = {kind: i for i, kind in enumerate(FALLBACK_PREFERENCE)}
    fallback = min(
        others, key=lambda r: (_mape(r, "entry"), _mape(r, "layer"), preference.get(r.kind, len(preference)))
    ) if others else None
    return primary, fallback


# -- lookup tables ----------------------------------------------------------------------------------


def lut_from_predictors(
    primary: LatencyPredictor, fallback: LatencyPredictor | None = None, *, meta: dict[str, Any] | None = None
) -> DeviceLUT:
    """The whole layer x block table and fixed layers from ``primary``, ``fallback`` where it cannot answer.

    An entry is the op's predicted (or measured) latency plus, with the ``weights-linear`` correction,
    the time to stream its weights inside a network divided by ``scale``: ``scale * table`` is the op's
    latency inside a network, which is what every consumer of a DeviceLUT sums (plus ``call_ms`` once
    per network part a device runs).
    """
    space = get_space(primary.space_)
    blocks = tuple(b.name for b in space.blocks)
    entries = [(layer.index, blocks.index(b.name), layer.op(b)) for layer in space.layers for b in layer.blocks]
    ops = [op for _, _, op in entries] + [f.op for f in space.fixed_layers]
    answerable = primary.can_predict(ops)
    if not answerable.all() and fallback is None:
        missing = [f"L{layer}/{blocks[b]}" for (layer, b, _), ok in zip(entries, answerable, strict=False) if not ok]
        missing += [f.name for f, ok in zip(space.fixed_layers, answerable[len(entries):], strict=True) if not ok]
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise UnmeasuredOpError(
            f"{len(missing)} entries of {space.name!r} were never measured on device {primary.device_!r} "
            f"({shown}): fit a kind that generalizes (`predictor fit --device {primary.device_} --space "
            f"{space.name} --kind gbdt`) and ask for kind 'auto', or measure them"
        )
    values = np.empty(len(ops))
    values[answerable] = primary.predict_ops([op for op, ok in zip(ops, answerable, strict=True) if ok])
    if fallback is not None and not answerable.all():  # without a fallback, all are answerable (checked above)
        values[~answerable] = fallback.predict_ops([op for op, ok in zip(ops, answerable, strict=True) if not ok])
    correction, wait = primary.correction_, primary.wait_
    values = np.array([correction.op_ms(op, value) for op, value in zip(ops, values, strict=True)])
    table = np.full((len(space.layers), len(blocks)), np.nan)
    measured = np.zeros(table.shape, dtype=bool)
    iqr = np.full(table.shape, np.nan)
    is_lookup = isinstance(primary, LookupPredictor)
    for (layer, b, op), value, ok in zip(entries, values, answerable, strict=False):
        table[layer, b] = value
        measured[layer, b] = is_lookup and ok
        if measured[layer, b]:
            iqr[layer, b] = primary.iqr_ms(op)
    fixed = {f.name: float(v) for f, v in zip(space.fixed_layers, values[len(entries):], strict=True)}
    name = primary.kind if fallback is None or answerable.all() else f"{primary.kind}+{fallback.kind}"
    return DeviceLUT(
        device=primary.device_, space=space.name, blocks=blocks, table=table, fixed=fixed, measured=measured,
        iqr=iqr, predictor=name, scale=correction.scale, call_ms=correction.ms_per_call, wait_ms=wait.ms,
        wait_share=wait.share,
        runtime=getattr(primary, "runtime_", DEFAULT_RUNTIME),  # predictors fitted before runtimes: torch
        meta={**(meta or {}), "correction": {"method": primary.correction, "scale": correction.scale,
                                             "weight_ms_per_mparam": correction.ms_per_mparam,
                                             "call_ms": correction.ms_per_call, "wait_ms": wait.ms,
                                             "wait_share": wait.share}},
    )


def load_lut(
    session: Session, *, device: str, space: str, kind: str = "auto", fit_if_missing: bool = False,
    runtime: str | None = None,
) -> DeviceLUT:
    """The device's latency table for ``space`` under ``runtime`` (default: its only one) from stored predictors.

    ``auto`` takes the best-validated kind (see ``choose_kinds``), with a fallback kind for the entries
    it cannot answer (the lookup table's unmeasured ones). Without any fitted predictor it raises
    PredictorNotFoundError, or, with ``fit_if_missing``, first fits and stores a lookup table and gbdt
    (without the held-out evaluation, which ``predictor fit`` runs and which takes far longer).
    """
    runtime = resolve_runtime(session, device=device, runtime=runtime)
    if kind != "auto":
        if kind not in list_predictors():
            raise PredictorNotFoundError(
                f"unknown predictor kind {kind!r}; allowed: {', '.join(['auto', *list_predictors()])}"
            )
        predictor, row = load_fitted(session, device=device, runtime=runtime, space=space, kind=kind)
        return lut_from_predictors(predictor, meta=_lut_meta([row]))
    rows = latest_fitted(session, device=device, runtime=runtime, space=space)
    if not rows and fit_if_missing:
        fit_predictors(session, device=device, space=space, kinds=["lookup", "gbdt"], evaluate=False, runtime=runtime)
        rows = latest_fitted(session, device=device, runtime=runtime, space=space)
    if not rows:
        if queries.get_device(session, name=device) is None:
            # raises, listing the known devices
            load_fitted(session, device=device, runtime=runtime, space=space, kind="lookup")
        raise PredictorNotFoundError(
            f"no fitted predictor for device {device_label(device, runtime)} in space {space!r}: "
            f"run `predictor fit --device {device}{runtime_flag(runtime)} --space {space} --kind all`"
        )
    primary, fallback = choose_kinds(rows)
    primary_predictor = load_artifact(primary.artifact)
    primary_predictor.runtime_ = runtime
    lut = lut_from_predictors(
        primary_predictor, load_artifact(fallback.artifact) if fallback is not None else None
    )
    lut.meta |= _lut_meta([primary, fallback] if fallback is not None and "+" in lut.predictor else [primary])
    return lut


def _lut_meta(rows: Sequence[FittedPredictor]) -> dict[str, Any]:
    return {
        "predictors": [
            {"kind": r.kind, "version": r.version, "fitted_at": r.meta.get("fitted_at"),
             "data_fingerprint": r.meta.get("data_fingerprint")}
            for r in rows
        ]
    }
