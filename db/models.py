"""SQLAlchemy 2.0 ORM models: devices, profiling runs, measurements, predictors, sweeps, search jobs, tokens, e2e."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, LargeBinary, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from db.columns import BoundedString, CheckedJSON, CheckedText, FiniteFloat, Int32, Int64, UTCDateTime
from db.records import DEFAULT_RUNTIME


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: CheckedJSON, list[Any]: CheckedJSON}


class Device(Base):
    """A machine that runs (part of) a network: a Raspberry Pi, a Jetson, a laptop, a server."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(BoundedString(64), unique=True)
    kind: Mapped[str] = mapped_column(BoundedString(32), default="cpu")  # cpu, gpu, mobile, asic, fpga
    description: Mapped[str] = mapped_column(CheckedText, default="")
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)  # hardware facts from the agent
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    runs: Mapped[list[ProfilingRun]] = relationship(back_populates="device")


class ProfilingRun(Base):
    """One profiling session of an agent on a device (or one import of public data)."""

    __tablename__ = "profiling_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(BoundedString(64), unique=True)  # chosen by the agent: uploads are idempotent
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(BoundedString(255), default="")
    # what ran the network (torch, onnxruntime, tensorrt, ...): measurements of two runtimes are never mixed
    runtime: Mapped[str] = mapped_column(BoundedString(32), default=DEFAULT_RUNTIME, server_default=DEFAULT_RUNTIME)
    environment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    environment_key: Mapped[str] = mapped_column(BoundedString(64), default="", index=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(BoundedString(16), default="running")  # running, completed, failed, imported
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    device: Mapped[Device] = relationship(back_populates="runs")
    measurements: Mapped[list[Measurement]] = relationship(back_populates="run", cascade="all, delete-orphan")


class Measurement(Base):
    """One latency measurement of an op, a fixed layer, a sampled config, or a whole (head of an) model.

    ``key`` names what was measured within the run and is unique per run, which makes re-uploads of the
    same run idempotent:
      - ``target='block'``: ``<space>/L<layer>/<block>``
      - ``target='fixed'``: ``<space>/<stem|first|head|pool|fc>``
      - ``target='config'``: the op key of a sampled block configuration
      - ``target='model'``: ``<space>/<architecture string>`` (end to end; with ``@k``, the head up to k)
    ``op_key`` is the shape-level op identity (spaces.Op.key), shared across layers and spaces.
    """

    __tablename__ = "measurements"
    __table_args__ = (
        UniqueConstraint("run_id", "key", name="uq_measurement_run_key"),
        Index("ix_measurement_lookup", "device_id", "space", "target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("profiling_runs.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(BoundedString(16))  # block, fixed, config, model
    key: Mapped[str] = mapped_column(BoundedString(512))
    space: Mapped[str | None] = mapped_column(BoundedString(64))
    layer: Mapped[int | None] = mapped_column(Int32)
    block: Mapped[str | None] = mapped_column(BoundedString(32))
    op_key: Mapped[str | None] = mapped_column(BoundedString(128), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)  # op features or architecture + split
    latency_ms: Mapped[float] = mapped_column(FiniteFloat)  # median
    iqr_ms: Mapped[float | None] = mapped_column(FiniteFloat)
    mean_ms: Mapped[float | None] = mapped_column(FiniteFloat)
    min_ms: Mapped[float | None] = mapped_column(FiniteFloat)
    repeats: Mapped[int | None] = mapped_column(Int32)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)  # timing summary: number_per_run, times, ...
    noisy: Mapped[bool] = mapped_column(Boolean, default=False)  # IQR/median above the threshold
    energy_mj: Mapped[float | None] = mapped_column(FiniteFloat)
    flops: Mapped[int | None] = mapped_column(Int64)
    source: Mapped[str] = mapped_column(BoundedString(16), default="measured")  # measured, imported
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    run: Mapped[ProfilingRun] = relationship(back_populates="measurements")
    device: Mapped[Device] = relationship()


class FittedPredictor(Base):
    """A fitted latency predictor of one kind for one device, runtime and space, with its validation metrics."""

    __tablename__ = "fitted_predictors"
    __table_args__ = (
        UniqueConstraint("device_id", "runtime", "space", "kind", "version", name="uq_predictor_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    runtime: Mapped[str] = mapped_column(BoundedString(32), default=DEFAULT_RUNTIME, server_default=DEFAULT_RUNTIME)
    space: Mapped[str] = mapped_column(BoundedString(64))
    kind: Mapped[str] = mapped_column(BoundedString(32))  # lookup, flops-linear, gbdt, ...
    version: Mapped[int] = mapped_column(Int32)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)  # library versions, features, data fingerprint
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    device: Mapped[Device] = relationship()


class Sweep(Base):
    """A study: a grid of searches (``nas sweep FILE``), each cell one search job; ``spec`` is the file's grid."""

    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(BoundedString(64), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SearchJob(Base):
    """One architecture (+ split) search: its configuration, progress history and result.

    A job of a sweep names it and its cell (the hash of the cell's settings: what makes a sweep resumable).
    """

    __tablename__ = "search_jobs"
    __table_args__ = (Index("ix_search_jobs_sweep_cell", "sweep_id", "cell"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(BoundedString(64), unique=True)
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    cell: Mapped[str | None] = mapped_column(BoundedString(64))
    sweep: Mapped[Sweep | None] = relationship()
    method: Mapped[str] = mapped_column(BoundedString(32))
    space: Mapped[str] = mapped_column(BoundedString(64))
    status: Mapped[str] = mapped_column(BoundedString(16), default="running")  # running, completed, failed
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    history: Mapped[list[Any]] = mapped_column(default=list)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A bearer token for the service's write endpoints, stored hashed, optionally scoped to a device."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(BoundedString(64), unique=True)
    token_hash: Mapped[str] = mapped_column(BoundedString(128), unique=True)
    device: Mapped[str | None] = mapped_column(BoundedString(64))  # None: may write for every device
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class E2EMeasurement(Base):
    """One end-to-end run of an exported split network (``splitnas-edge run``), measured beside its prediction.

    Devices, architecture and splits name what ran; the latencies are the median and 90th percentile over
    the run's requests; ``parts`` holds each part's device and compute time (measured and predicted).
    """

    __tablename__ = "e2e_measurements"

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(BoundedString(64), index=True)
    space: Mapped[str] = mapped_column(BoundedString(64))
    devices: Mapped[list[Any]] = mapped_column(default=list)
    runtime: Mapped[str] = mapped_column(BoundedString(32))
    architecture: Mapped[list[Any]] = mapped_column(default=list)
    splits: Mapped[list[Any]] = mapped_column(default=list)
    codec: Mapped[str] = mapped_column(BoundedString(32))
    transport: Mapped[str] = mapped_column(BoundedString(16))  # tcp, udp
    loss: Mapped[float] = mapped_column(FiniteFloat)  # emulated, injected by the sender
    requests: Mapped[int] = mapped_column(Int32)
    payload_bytes: Mapped[int] = mapped_column(Int64)
    throughput_mbps: Mapped[float] = mapped_column(FiniteFloat)
    p50_ms: Mapped[float] = mapped_column(FiniteFloat)
    p90_ms: Mapped[float] = mapped_column(FiniteFloat)
    predicted_ms: Mapped[float] = mapped_column(FiniteFloat)
    parts: Mapped[list[Any]] = mapped_column(default=list)
    breakdown: Mapped[dict[str, Any]] = mapped_column(default=dict)
    host: Mapped[str] = mapped_column(BoundedString(255), default="")
    load: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
