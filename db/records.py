"""Validated records that cross process boundaries: what agents store locally and upload.

The same schema serves the local database writer, the agent's upload spool and the service's
``POST /measurements``, so every path applies the same checks: finite positive latencies, names that
the search space knows, and only values that every backend stores alike (strings within their
columns' lengths, without NUL or lone surrogates; integers within their columns' range; finite numbers
inside JSON fields).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator, model_validator

import spaces
from db.columns import INT32_MAX, INT64_MAX, json_problem, text_problem

Target = Literal["block", "fixed", "config", "model"]

DEFAULT_RUNTIME = "torch"
"""The runtime of a measurement that names none: PyTorch eager, what splitnas measured before runtimes."""
RUNTIME_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{0,31}$"


def runtime_name(value: str) -> str:
    """``value`` if it is a valid runtime name, else ValueError saying what a runtime name is."""
    if not re.fullmatch(RUNTIME_PATTERN, value):
        raise ValueError(
            f"invalid runtime {value!r}: a runtime is 1 to 32 lower-case letters, digits and '._-' "
            "(torch, onnxruntime, openvino, ...)"
        )
    return value


RuntimeName = Annotated[
    str, AfterValidator(runtime_name), Field(json_schema_extra={"pattern": RUNTIME_PATTERN, "maxLength": 32})
]
"""What ran the network: ``torch``, ``onnxruntime``, ``openvino``, or a runtime of an imported table that cannot
run here (``tensorrt``, ``tflite``): open text, lower case letters, digits and ``. _ -``."""


def _storable_text(value: str) -> str:
    if problem := text_problem(value):
        raise ValueError(f"text {problem}")
    return value


def _storable_json(value: dict[str, Any]) -> dict[str, Any]:
    if problem := json_problem(value):
        raise ValueError(problem)
    return value


StoredText = Annotated[str, AfterValidator(_storable_text)]
"""Text that every backend stores: no NUL character, no lone surrogate."""
# the lengths of the columns (db.models) that hold them
Text32 = Annotated[str, StringConstraints(max_length=32), AfterValidator(_storable_text)]
Text64 = Annotated[str, StringConstraints(max_length=64), AfterValidator(_storable_text)]
Text128 = Annotated[str, StringConstraints(max_length=128), AfterValidator(_storable_text)]
Text255 = Annotated[str, StringConstraints(max_length=255), AfterValidator(_storable_text)]
JSONObject = Annotated[dict[str, Any], AfterValidator(_storable_json)]
"""A JSON column's value: finite numbers and storable strings all the way down."""


def _finite_positive(value: float | None, field: str, *, allow_zero: bool = False) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value):
        raise ValueError(f"{field} must be a finite number, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{field} must be {'non-negative' if allow_zero else 'positive'}, got {value}")
    return value


class MeasurementRecord(BaseModel):
    """One measured (or imported) latency; see db.models.Measurement for the meaning of ``key``."""

    target: Target
    key: StoredText = Field(min_length=1, max_length=512)
    space: Text64 | None = None
    layer: int | None = Field(default=None, ge=0, le=INT32_MAX)
    block: Text32 | None = None
    op_key: Text128 | None = None
    config: JSONObject = Field(default_factory=dict)
    latency_ms: float = Field(description="median latency in milliseconds (finite, positive)")
    iqr_ms: float | None = None
    mean_ms: float | None = None
    min_ms: float | None = None
    repeats: int | None = Field(default=None, ge=1, le=INT32_MAX)
    raw: JSONObject = Field(default_factory=dict)
    noisy: bool = False
    energy_mj: float | None = None
    flops: int | None = Field(default=None, ge=0, le=INT64_MAX)
    source: Literal["measured", "imported"] = "measured"

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "target": "block", "key": "fbnet-cifar100/L7/k5_e6", "space": "fbnet-cifar100", "layer": 7,
                    "block": "k5_e6", "latency_ms": 1.91, "iqr_ms": 0.01, "mean_ms": 1.92, "min_ms": 1.88,
                    "repeats": 120,
                }
            ]
        }
    }

    @field_validator("latency_ms")
    @classmethod
    def _latency(cls, value: float, info) -> float:
        # Imported tables hold exact zeros for identity skips (HW-NAS-Bench edgegpu): zero is allowed.
        return _finite_positive(value, info.field_name, allow_zero=True)  # type: ignore[return-value]

    @field_validator("iqr_ms", "mean_ms", "min_ms", "energy_mj")
    @classmethod
    def _stats(cls, value: float | None, info) -> float | None:
        return _finite_positive(value, info.field_name, allow_zero=True)

    @model_validator(mode="after")
    def _names_belong_to_space(self) -> MeasurementRecord:
        if self.latency_ms == 0 and self.source != "imported":
            raise ValueError("latency_ms must be positive for a measurement (only imported tables hold zeros)")
        if self.target in ("block", "fixed", "model") and not self.space:
            raise ValueError(f"space is required for target {self.target!r}")
        if self.space is not None:
            space = spaces.get_space(self.space)
            if self.target == "block":
                if self.layer is None or self.block is None:
                    raise ValueError("layer and block are required for target 'block'")
                space.block(self.block, space.layer(self.layer).index)
                expected = f"{self.space}/L{self.layer}/{self.block}"
                if self.key != expected:
                    raise ValueError(f"key {self.key!r} must be {expected!r} for this space, layer and block")
            elif self.target == "fixed":
                prefix, _, name = self.key.rpartition("/")
                if prefix != self.space:
                    raise ValueError(f"key {self.key!r} must be '{self.space}/<fixed layer name>'")
                space.fixed(name)
            elif self.target == "model":
                prefix, _, arch = self.key.partition("/")
                if prefix != self.space:
                    raise ValueError(f"key {self.key!r} must be '{self.space}/<architecture>'")
                spaces.Architecture.parse(arch, space)
        return self


class RunRecord(BaseModel):
    """A profiling run and the device it ran on."""

    uid: StoredText = Field(min_length=1, max_length=64)
    device: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    device_kind: Text32 = "cpu"
    device_description: StoredText = ""
    device_facts: JSONObject = Field(default_factory=dict)
    host: Text255 = ""
    runtime: RuntimeName = DEFAULT_RUNTIME
    environment: JSONObject = Field(default_factory=dict)
    environment_key: Text64 = ""
    settings: JSONObject = Field(default_factory=dict)
    status: Literal["running", "completed", "failed", "imported"] = "running"
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @field_validator("started_at", "finished_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Stored in UTC (naive times are taken as UTC); a time that UTC cannot express is refused."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{value.isoformat()} is outside the range of UTC dates") from None


class MeasurementBatch(BaseModel):
    """What an agent uploads: its run and a batch of measurements."""

    run: RunRecord
    measurements: list[MeasurementRecord]


Milliseconds = Annotated[float, Field(ge=1e-6, allow_inf_nan=False, le=1e9)]
"""A measured or predicted duration: finite, from a nanosecond up."""
Transport = Literal["tcp", "udp"]


class PartTiming(BaseModel):
    """One part of a split network as it ran end to end: its device and compute time, measured and predicted."""

    index: int = Field(ge=0, le=63)
    device: Text64
    p50_ms: Milliseconds
    p90_ms: Milliseconds
    predicted_ms: float = Field(ge=0, allow_inf_nan=False, le=1e9)


class E2ERecord(BaseModel):
    """One end-to-end run of an exported split network (``splitnas-edge run``): what ran where over which link,
    the measured latencies (median and 90th percentile over its requests) and the prediction of its search."""

    job: Text64 = Field(min_length=1)
    space: Text64 = Field(min_length=1)
    devices: list[Text64] = Field(min_length=2, max_length=64)
    runtime: RuntimeName
    architecture: list[Text32] = Field(min_length=1, max_length=256)
    splits: list[Annotated[int, Field(ge=0, le=INT32_MAX)]] = Field(min_length=1, max_length=63)
    codec: Text32
    transport: Transport
    loss: float = Field(ge=0, lt=1, allow_inf_nan=False, description="emulated loss the sender injected")
    requests: int = Field(ge=1, le=INT32_MAX)
    payload_bytes: int = Field(ge=1, le=INT64_MAX)
    throughput_mbps: float = Field(gt=0, le=1e6, allow_inf_nan=False, description="the link's measured throughput")
    p50_ms: Milliseconds
    p90_ms: Milliseconds
    predicted_ms: Milliseconds
    parts: list[PartTiming] = Field(min_length=2, max_length=64)
    breakdown: dict[Text32, Annotated[float, Field(ge=0, allow_inf_nan=False, le=1e9)]] = Field(
        default_factory=dict, description="median milliseconds of each phase: head, encode, transfer, tail, ...")
    host: Text255 = ""
    load: list[Annotated[float, Field(ge=0, allow_inf_nan=False, le=1e6)]] = Field(
        default_factory=list, max_length=3, description="the host's os.getloadavg() when the run ended")

    @property
    def error_ms(self) -> float:
        """Measured p50 minus the prediction: positive when the run was slower than predicted."""
        return self.p50_ms - self.predicted_ms

    @property
    def error_pct(self) -> float:
        return 100 * self.error_ms / self.predicted_ms

    @model_validator(mode="after")
    def _consistent(self) -> E2ERecord:
        if len(self.parts) != len(self.devices):
            raise ValueError(f"{len(self.devices)} devices but {len(self.parts)} parts: one part runs on each device")
        if len(self.splits) != len(self.devices) - 1:
            raise ValueError(f"{len(self.devices)} devices need {len(self.devices) - 1} split(s), "
                             f"got {len(self.splits)}")
        if self.p90_ms < self.p50_ms:
            raise ValueError(f"p90_ms ({self.p90_ms}) is below p50_ms ({self.p50_ms})")
        return self
