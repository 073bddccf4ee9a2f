"""A device's training data, read from the database: op-level and model-level latency samples."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cached_property
from typing import Any

from sqlalchemy.orm import Session

from db import queries
from db.models import Measurement
from db.records import DEFAULT_RUNTIME
from predictor.runtimes import resolve_runtime
from spaces import Architecture, Op, SearchSpace, SpaceError, get_space
from spaces.errors import InvalidLayerError, UnknownSpaceError

OP_TARGETS = ("block", "fixed", "config")


@dataclass(frozen=True)
class OpSample:
    """One measured op: a (layer, block) of the space, a fixed layer, or a sampled configuration."""

    op: Op
    latency_ms: float
    target: str
    key: str
    layer: int | None = None
    block: str | None = None
    iqr_ms: float | None = None


@dataclass(frozen=True)
class ModelSample:
    """One measured whole architecture, or its head when ``arch`` has a split point (``@k``)."""

    arch: Architecture
    latency_ms: float
    key: str
    iqr_ms: float | None = None
    after_wait_ms: float | None = None  # one call after an idle gap (profiler.timing.after_wait_ms), if timed

    @property
    def is_head(self) -> bool:
        return bool(self.arch.splits)


@dataclass(frozen=True)
class TrainingData:
    """Everything a predictor is fitted on for one device, runtime and space."""

    device: str
    space: str
    ops: tuple[OpSample, ...] = ()
    models: tuple[ModelSample, ...] = ()
    skipped: tuple[str, ...] = field(default=(), compare=False)
    runtime: str = DEFAULT_RUNTIME

    def of_target(self, *targets: str) -> tuple[OpSample, ...]:
        return tuple(s for s in self.ops if s.target in targets)

    @property
    def blocks(self) -> tuple[OpSample, ...]:
        return self.of_target("block")

    @property
    def configs(self) -> tuple[OpSample, ...]:
        return self.of_target("config")

    def with_samples(
        self, *, ops: Iterable[OpSample] | None = None, models: Iterable[ModelSample] | None = None
    ) -> TrainingData:
        """A copy holding other samples (the training part of a hold-out split)."""
        return replace(
            self,
            ops=self.ops if ops is None else tuple(ops),
            models=self.models if models is None else tuple(models),
        )

    @cached_property
    def fingerprint(self) -> str:
        """A hash of what was measured and its values: equal data, equal fingerprint."""
        lines = sorted(f"{s.target}|{s.key}|{s.latency_ms:.9g}" for s in self.ops)
        lines += sorted(f"model|{m.key}|{m.latency_ms:.9g}" for m in self.models)
        digest = hashlib.sha256("\n".join([self.device, self.runtime, self.space, *lines]).encode())
        return digest.hexdigest()[:16]

    def describe(self) -> dict[str, int]:
        counts = {target: len(self.of_target(target)) for target in OP_TARGETS}
        counts["model"] = sum(not m.is_head for m in self.models)
        counts["head"] = sum(m.is_head for m in self.models)
        return counts


# -- rebuilding ops from stored rows ----------------------------------------------------------------

_KEY_FIELD = re.compile(r"^(h|cin|cout|k|s|g)(\d+)$|^(e)(\d+(?:/\d+)?)$")
_KEY_NAMES = {"h": "h", "cin": "cin", "cout": "cout", "k": "kernel", "s": "stride", "e": "expansion", "g": "groups"}


def op_from_key(key: str) -> Op:
    """The op whose ``spaces.Op.key`` is ``key`` (e.g. ``conv_h32_cin16_cout24_k3_s1_e6_g1_nores``)."""
    kind, *parts = key.split("_")
    values: dict[str, Any] = {}
    for part in parts:
        if part in ("res", "nores"):
            values["residual"] = part == "res"
        elif part in ("relu", "relu6"):
            values["act"] = part
        elif match := _KEY_FIELD.match(part):
            short, value = (match[1], match[2]) if match[1] else (match[3], match[4])
            name = _KEY_NAMES[short]
            values[name] = Fraction(value) if name == "expansion" else int(value)
        else:
            raise ValueError(f"cannot read op key {key!r}: unexpected part {part!r}")
    try:
        op = Op(kind, **values)
    except TypeError as exc:
        raise ValueError(f"cannot read op key {key!r}: {exc}") from None
    if op.key != key:
        raise ValueError(f"op key {key!r} is not canonical (it reads back as {op.key!r})")
    return op


def op_from_config(config: dict[str, Any]) -> Op:
    """An op from a dict of ``spaces.Op`` fields (expansion as a number or a fraction string)."""
    fields = {name: config[name] for name in Op.__dataclass_fields__ if name in config}
    if "expansion" in fields:
        fields["expansion"] = Fraction(str(fields["expansion"])).limit_denominator(64)
    return Op(**fields)


def _space_of(row: Measurement) -> SearchSpace:
    if row.space is None:
        raise UnknownSpaceError(f"measurement {row.key!r} names no search space")
    return get_space(row.space)


def _place_of(row: Measurement) -> tuple[int, str]:
    """The (layer, block) a block measurement timed."""
    if row.layer is None or row.block is None:
        raise InvalidLayerError(f"block measurement {row.key!r} names no layer and block")
    return row.layer, row.block


def op_of_row(row: Measurement) -> Op:
    """The op a block, fixed or config measurement timed."""
    if row.target == "block":
        return _space_of(row).op(*_place_of(row))
    if row.target == "fixed":
        return _space_of(row).fixed(row.key.rsplit("/", 1)[-1]).op
    if row.op_key:
        return op_from_key(row.op_key)
    if "kind" in (row.config or {}):
        return op_from_config(row.config)
    return op_from_key(row.key)


def model_of_row(row: Measurement, space: str) -> Architecture:
    return Architecture.parse(row.key.split("/", 1)[-1], space)


# -- loading ----------------------------------------------------------------------------------------


def _same_place(space: SearchSpace, row: Measurement, op: Op) -> bool:
    """Whether a block or fixed row of another space measured the op ``space`` has at the same place."""
    try:
        if row.target == "block":
            return space.op(*_place_of(row)) == op
        if row.target == "fixed":
            return space.fixed(row.key.rsplit("/", 1)[-1]).op == op
    except SpaceError:
        pass
    return False



def load_training_data(session: Session, *, device: str, space: str, runtime: str | None = None) -> TrainingData:
    """The newest measurement of every block, fixed layer and model of ``space`` on ``device`` under ``runtime``.

    ``runtime`` None means the device's only one (predictor.runtimes.resolve_runtime); measurements of
    other runtimes are never mixed in.

    Ops are shapes: a block or fixed layer measured for another space counts for this one where this
    space has the same op at the same place (fbnet-extended-cifar100 shares all but its bottleneck
    blocks with fbnet-cifar100), and as a sampled configuration otherwise (HW-NAS-Bench's ImageNet
    table extends its CIFAR one); every config measured on the device is used, whatever space its run
    profiled. Rows that cannot be read (an op key of an older format, an architecture of a changed
    space) are skipped and named in ``skipped``.
    """
    own_space = get_space(space)  # an unknown space fails here with the list of known ones
    runtime = resolve_runtime(session, device=device, runtime=runtime)
    ops: list[OpSample] = []
    models: list[ModelSample] = []
    skipped: list[str] = []
    for row in queries.latest_measurements(session, device=device, runtime=runtime).values():
        try:
            if row.target == "model":
                if row.space == space:
                    models.append(ModelSample(model_of_row(row, space), row.latency_ms, row.key, row.iqr_ms,
                                              (row.raw or {}).get("after_wait_ms")))
            elif row.target in OP_TARGETS:
                op = op_of_row(row)
                target = row.target if row.space == space or _same_place(own_space, row, op) else "config"
                layer, block = (row.layer, row.block) if target == "block" else (None, None)
                ops.append(OpSample(op, row.latency_ms, target, row.key, layer, block, row.iqr_ms))
        except (SpaceError, ValueError) as exc:
            skipped.append(f"{row.key}: {exc}")
    return TrainingData(device, space, tuple(ops), tuple(models), tuple(skipped), runtime=runtime)
