"""Request (``XCreate``) and response (``XPublic``) schemas of the service, separate from the ORM models."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from db.records import E2ERecord, RuntimeName
from predictor import list_predictors
from predictor.latency import MIN_BANDWIDTH_MBPS

DEFAULT_SPACE = "fbnet-cifar100"

# the registry of predictor kinds decides what the service accepts; "auto" picks the best-validated one
if TYPE_CHECKING:  # built from the registry at import time, which a type checker cannot evaluate
    FitKind = str
    PredictorKind = str
else:
    FitKind = Literal[tuple(list_predictors())]
    PredictorKind = Literal[("auto", *list_predictors())]

PositiveMbps = Annotated[
    float, Field(ge=MIN_BANDWIDTH_MBPS, allow_inf_nan=False, description="link throughput in Mbit/s (at least 1 bit/s)")
]
Bits = Literal[8, 16, 32]
Runtime = Annotated[
    RuntimeName | None,
    Field(description="runtime whose measurements and predictors answer (torch, onnxruntime, tflite, ...); "
          "default: the device's only runtime (a device with several asks for one)", examples=["torch"]),
]


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description="where the bad value is: ['query', 'device'], ['body', 'archs', 3]")
    msg: str = Field(description="what is wrong and what is allowed")
    type: str
    input: Any = Field(default=None, description="the bad value, when it is short")


class ErrorPublic(BaseModel):
    """Every 4xx/5xx body: FastAPI's validation-error shape, also used for the service's own errors."""

    detail: list[ErrorItem]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": [
                        {
                            "loc": ["query", "device"],
                            "msg": "unknown device 'jetson'; known devices: edgegpu, raspi4",
                            "type": "not_found",
                        }
                    ]
                }
            ]
        }
    )


# -- single ops --------------------------------------------------------------------------------------


class LatencyPublic(BaseModel):
    """The latency of one block at one layer of a space on one device, under one runtime."""

    device: str
    runtime: str = Field(description="the runtime the value was measured (or predicted) for")
    space: str
    layer: int
    block: str
    latency_ms: float
    predictor: str = Field(description="the predictor that answered: lookup where measured, else the fitted one")
    measured: bool = Field(description="true when the value is a measurement, false when predicted")
    iqr_ms: float | None = Field(description="interquartile range of the measurement (null when predicted)")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "device": "edgegpu", "runtime": "tensorrt", "space": "fbnet-cifar100", "layer": 7,
                    "block": "k5_e6", "latency_ms": 0.412, "predictor": "lookup", "measured": True, "iqr_ms": 0.004,
                }
            ]
        }
    )


class LatencyQuery(BaseModel):
    """One (device, space, layer, block) question; the query parameters of ``GET /latency``."""

    block: str = Field(description="block name", examples=["k5_e6"])
    layer: int = Field(description="searchable layer index (0-based)", examples=[7])
    device: str = Field(description="device name", examples=["edgegpu"])
    space: str = Field(default=DEFAULT_SPACE, description="search space")
    predictor: PredictorKind = Field(default="auto", description="which predictor answers; auto: the best one")
    runtime: Runtime = None



class LatencyBatchCreate(BaseModel):
    """Many (device, space, layer, block) queries; at most ``SPLITNAS_API_MAX_BATCH`` of them."""

    queries: list[LatencyQuery] = Field(min_length=1)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "queries": [
                        {"device": "edgegpu", "layer": 7, "block": "k5_e6"},
                        {"device": "raspi4", "space": "fbnet-cifar100", "layer": 0, "block": "skip",
                         "predictor": "lookup"},
                    ]
                }
            ]
        }
    )


class LatencyBatchPublic(BaseModel):
    results: list[LatencyPublic] = Field(description="one result per query, in query order")


# -- architectures -----------------------------------------------------------------------------------


class ArchitectureInput(BaseModel):
    """An architecture as a string with its split point(s) (``arch``) or as ``blocks`` plus split point(s)."""

    space: str = DEFAULT_SPACE
    arch: str | None = Field(default=None, description="one block per layer, comma separated, then '@k'")
    blocks: list[str] | None = Field(default=None, description="one block name per layer (instead of arch)")
    predictor: PredictorKind = "auto"
    runtime: Runtime = None  # of every device's table

    def architecture_text(self, splits: list[int]) -> str:
        """The architecture string, built from ``blocks`` and ``splits`` when it was given as a list."""
        if self.arch is not None:
            return self.arch
        return ",".join(self.blocks or []) + ("@" + ",".join(str(k) for k in splits) if splits else "")


def _one_form(data: ArchitectureInput, split_field: str, splits: Any) -> None:
    if (data.arch is None) == (data.blocks is None):
        raise ValueError("give either 'arch' (a string with '@k') or 'blocks' (a list) with '" + split_field + "'")
    if data.blocks is not None and splits is None:
        raise ValueError(f"'{split_field}' is required with 'blocks'")
    if data.arch is not None and splits is not None:
        raise ValueError(f"give the split point(s) inside 'arch' ('...@k'), not in '{split_field}'")


class SplitLatencyCreate(ArchitectureInput):
    """One architecture split once: head on ``head_device``, tail on ``tail_device``, one link between."""

    split: int | None = Field(default=None, description="split point k, with 'blocks' (0 = after the stem)")
    head_device: str
    tail_device: str
    bandwidth_mbps: PositiveMbps = 8.0
    bits: Bits = Field(default=32, description="bits per transmitted element")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "arch": "k3_e1,k3_e1,k5_e6,skip,k3_e3,k5_e6,k3_e1,k5_e3,skip,k3_e6,k5_e1,k3_e1_g2,k5_e6,k3_e3,"
                    "skip,k5_e1_g2,k3_e6,k5_e6,k3_e1,skip,k5_e3,k3_e6@7",
                    "space": "fbnet-cifar100", "head_device": "raspi4", "tail_device": "edgegpu",
                    "bandwidth_mbps": 8, "bits": 32,
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _check_form(self) -> SplitLatencyCreate:
        _one_form(self, "split", self.split)
        return self

    @property
    def text(self) -> str:
        return self.architecture_text([] if self.split is None else [self.split])


class LayerLatency(BaseModel):
    layer: int
    block: str
    device: str = Field(description="the device that runs the layer (both, joined by '+', when split inside it)")
    latency_ms: float


class SplitLatencyPublic(BaseModel):
    arch: str = Field(description="the canonical architecture string")
    split: int
    head_device: str
    tail_device: str
    total_ms: float
    head_ms: float
    comm_ms: float
    tail_ms: float
    payload_elements: int
    payload_bytes: float
    per_layer: list[LayerLatency]
    predictors: dict[str, str] = Field(description="the predictor answering for each device")
    runtimes: dict[str, str] = Field(description="the runtime of each device's table (head, tail)")


EXAMPLE_ARCH = ("k3_e1,k3_e1,k5_e6,skip,k3_e3,k5_e6,k3_e1,k5_e3,skip,k3_e6,k5_e1,k3_e1_g2,k5_e6,k3_e3,skip,k5_e1_g2,"
                "k3_e6,k5_e6,k3_e1,skip,k5_e3,k3_e6")


class TopologyLatencyCreate(ArchitectureInput):
    """An architecture on a chain or mesh of devices: the topology document of ``nas search --topology``.

    The document is the topology file's content as JSON (``predictor.topology_file``): ``topology``,
    ``devices``, ``links`` and, for a mesh, ``chain``, ``root``, ``branches`` and ``merge``. The split
    points come from ``arch`` ('...@k1,k2'), from ``splits`` with ``blocks``, or from the document's
    ``assignment`` when neither gives them. Errors in the document name its field.
    """

    topology: str = Field(description="chain | mesh")
    name: str | None = Field(default=None, description="the topology's name (default: 'topology')")
    devices: list[Any] = Field(description="{name, device, latency_factor?}: device is the profiled table's device")
    links: list[Any] = Field(description="{from, to, bandwidth_mbps, bits?} between consecutive stages' devices")
    chain: list[Any] | None = Field(default=None, description="chain order; a mesh's chain part")
    root: Any = Field(default=None, description="mesh: the device that broadcasts to the branches")
    branches: list[Any] | None = Field(default=None, description="mesh: parallel devices, names or {device, share}")
    merge: Any = Field(default=None, description="mesh: the device that merges the branches and runs the rest")
    assignment: Any = Field(default=None, description="{splits: [...]} or {layers: {device: [first, last]}}")
    splits: list[int] | None = Field(default=None, description="split points, with 'blocks'")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "topology": "chain", "arch": EXAMPLE_ARCH + "@4,12",
                    "devices": [{"name": "ue", "device": "raspi4"}, {"name": "edge", "device": "edgegpu"},
                                {"name": "cloud", "device": "edgegpu", "latency_factor": 0.5}],
                    "links": [{"from": "ue", "to": "edge", "bandwidth_mbps": 25},
                              {"from": "edge", "to": "cloud", "bandwidth_mbps": 50, "bits": 16}],
                },
                {
                    "topology": "mesh", "arch": EXAMPLE_ARCH + "@4,9,15",
                    "devices": [{"name": "ue", "device": "raspi4"}, {"name": "root", "device": "edgegpu"},
                                {"name": "e1", "device": "edgegpu"}, {"name": "e2", "device": "raspi4"},
                                {"name": "merge", "device": "edgegpu"}],
                    "links": [{"from": "ue", "to": "root", "bandwidth_mbps": 20},
                              {"from": "root", "to": "e1", "bandwidth_mbps": 50},
                              {"from": "root", "to": "e2", "bandwidth_mbps": 40},
                              {"from": "e1", "to": "merge", "bandwidth_mbps": 100},
                              {"from": "e2", "to": "merge", "bandwidth_mbps": 80}],
                    "chain": ["ue"], "root": "root", "merge": "merge",
                    "branches": [{"device": "e1", "share": 0.7}, {"device": "e2", "share": 0.3}],
                },
            ]
        }
    )

    @model_validator(mode="after")
    def _check_form(self) -> TopologyLatencyCreate:
        if (self.arch is None) == (self.blocks is None):
            raise ValueError("give either 'arch' (a string, with '@k1,k2,...' unless the assignment gives them) "
                             "or 'blocks' (a list)")
        if self.arch is not None and self.splits is not None:
            raise ValueError("give the split points inside 'arch' ('...@k1,k2'), not in 'splits'")
        return self

    def document(self) -> dict[str, Any]:
        """The topology document as ``predictor.topology_file.parse_topology`` reads it."""
        keys = ("name", "topology", "devices", "links", "chain", "root", "branches", "merge", "assignment")
        return {k: getattr(self, k) for k in keys if k in self.model_fields_set}

    @property
    def text(self) -> str:
        return self.architecture_text(self.splits or [])


class SegmentPublic(BaseModel):
    device: str
    layers: list[int]
    compute_ms: float
    payload_elements: int
    payload_bytes: float
    comm_ms: float


class TopologyLatencyPublic(BaseModel):
    """``predictor.latency.CompletionLatency.to_dict()`` of the architecture on the topology."""

    topology: Literal["chain", "mesh"]
    name: str
    arch: str = Field(description="the canonical architecture string, with its split points")
    total_ms: float = Field(description="completion latency (README: completion latency)")
    segments: list[SegmentPublic] = Field(description="the critical path: every stage, a mesh's slowest branch")
    branch_ms: dict[str, float] = Field(description="mesh: root compute + broadcast + branch compute + its send")
    critical_branch: str | None
    payload_bytes: float = Field(description="bytes sent over the critical path's links")
    predictors: dict[str, str] = Field(description="the predictor answering for each topology device")
    runtimes: dict[str, str] = Field(description="the runtime of each topology device's table")


class SplitLatencyBatchCreate(BaseModel):
    """Many architectures, each with one split point, on the same head, tail and link."""

    space: str = DEFAULT_SPACE
    archs: list[str] = Field(min_length=1, description="architecture strings, each ending in '@k'")
    head_device: str
    tail_device: str
    bandwidth_mbps: PositiveMbps = 8.0
    bits: Bits = 32
    predictor: PredictorKind = "auto"
    runtime: Runtime = None  # of both tables

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "archs": [
                        "k3_e1,k3_e1,k5_e6,skip,k3_e3,k5_e6,k3_e1,k5_e3,skip,k3_e6,k5_e1,k3_e1_g2,k5_e6,k3_e3,"
                        "skip,k5_e1_g2,k3_e6,k5_e6,k3_e1,skip,k5_e3,k3_e6@7"
                    ],
                    "head_device": "raspi4", "tail_device": "edgegpu", "bandwidth_mbps": 8, "bits": 32,
                }
            ]
        }
    )


class SplitLatencyBatchPublic(BaseModel):
    """Column arrays, one entry per architecture in request order."""

    head_device: str
    tail_device: str
    runtimes: dict[str, str] = Field(description="the runtime of each device's table (head, tail)")
    count: int
    total_ms: list[float]
    head_ms: list[float]
    comm_ms: list[float]
    tail_ms: list[float]
    payload_bytes: list[float]


# -- lookup tables, devices, spaces, predictors --------------------------------------------------------


class LUTPublic(BaseModel):
    """``predictor.latency.DeviceLUT.to_dict()``: rows are layers, columns are ``blocks``; null = not allowed."""

    device: str
    runtime: str = Field(description="the runtime the table was measured (and predicted) for")
    space: str
    predictor: str
    scale: float = Field(description="model-level correction applied to every compute segment")
    call_ms: float = Field(description="what one call of a network part costs on the device besides its ops")
    wait_ms: float = Field(description="what a part fed by a link (every part of a split network but the first) "
                                       "adds, fixed, having idled until its input arrived (0 until whole networks "
                                       "are profiled after an idle gap)")
    wait_share: float = Field(description="and the share of its latency it adds (T_after = (1 + share) T + wait_ms)")
    blocks: list[str]
    table: list[list[float | None]]
    measured: list[list[bool]]
    iqr: list[list[float | None]]
    fixed: dict[str, float]
    meta: dict[str, Any]


class DeviceRuntimePublic(BaseModel):
    """What a device holds under one runtime."""

    name: str = Field(description="the runtime: torch, onnxruntime, tensorrt, ...")
    measurements: dict[str, int] = Field(description="distinct measured keys per space")
    predictors: list[str] = Field(description="fitted predictors as 'space/kind'")


class DevicePublic(BaseModel):
    name: str
    kind: str
    description: str
    facts: dict[str, Any]
    measurements: dict[str, int] = Field(description="distinct measured keys per space, all runtimes")
    predictors: list[str] = Field(description="fitted predictors as 'space/kind', all runtimes")
    runtimes: list[DeviceRuntimePublic] = Field(description="each runtime the device has data of")


class LayerPublic(BaseModel):
    index: int
    h: int
    cin: int
    cout: int
    stride: int
    blocks: list[str]


class FixedLayerPublic(BaseModel):
    name: str
    kind: str
    h: int
    cin: int
    cout: int
    stride: int


class SplitPointPublic(BaseModel):
    k: int
    after: str = Field(description="what runs last on the head: the stem or a layer")
    payload_elements: int = Field(description="elements sent with the layer's standard blocks (bottlenecks send less)")


class SpaceSummary(BaseModel):
    name: str
    family: str
    input_size: int
    num_classes: int
    layers: int
    blocks: list[str]
    split_points: int


class SpacePublic(SpaceSummary):
    description: str
    prefix: list[FixedLayerPublic]
    layer_table: list[LayerPublic]
    suffix: list[FixedLayerPublic]
    split_point_table: list[SplitPointPublic]


class PredictorPublic(BaseModel):
    device: str
    runtime: str
    space: str
    kind: str
    version: int
    metrics: dict[str, Any]
    meta: dict[str, Any]
    created_at: datetime


class PredictorFitCreate(BaseModel):
    device: str
    space: str = DEFAULT_SPACE
    kinds: list[FitKind] = Field(default_factory=list_predictors, min_length=1, description="default: every kind")
    runtime: Runtime = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"device": "raspi4", "kinds": ["lookup", "gbdt"]}]})


class PredictorFitPublic(BaseModel):
    device: str
    runtime: str
    space: str
    reports: list[dict[str, Any]]
    refreshed: list[str] = Field(description="cached tables swapped to the new predictors, as 'space/predictor'")


class FitJobPublic(BaseModel):
    id: str = Field(description="poll GET /predictors/fit/{id}")
    status: Literal["running", "done", "failed"]
    device: str
    runtime: str | None = Field(description="the runtime asked for (null: the device's only one)")
    space: str
    kinds: list[str]
    created_at: datetime
    finished_at: datetime | None = None
    result: PredictorFitPublic | None = Field(default=None, description="when done: the fitted versions")
    error: str | None = Field(default=None, description="when failed: what went wrong")


# -- measurements, tokens, health ---------------------------------------------------------------------


class UploadPublic(BaseModel):
    inserted: int
    duplicates: int


class MeasurementPublic(BaseModel):
    id: int
    run: str
    device: str
    runtime: str = Field(description="what ran the network: its run's runtime")
    target: str
    key: str
    space: str | None
    layer: int | None
    block: str | None
    op_key: str | None
    config: dict[str, Any]
    latency_ms: float
    iqr_ms: float | None
    mean_ms: float | None
    min_ms: float | None
    repeats: int | None
    noisy: bool
    energy_mj: float | None
    flops: int | None
    source: str
    created_at: datetime


class HealthPublic(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]
    cached_tables: int


class E2EPublic(E2ERecord):
    """A stored end-to-end run with the error of its prediction."""

    id: int
    created_at: datetime
    error_ms: float = Field(description="p50_ms - predicted_ms: positive when the run was slower than predicted")
    error_pct: float = Field(description="error_ms as a percentage of predicted_ms")
