"""What a search job produces, typed: the stored and written form of every job (``schema_version`` 1).

A split search (nasc, hwnas, random, ...) has a head-link-tail ``SplitResult``; a search on a chain or
mesh of devices (the gradient method) a ``TopologyResult``; ``kind`` tells them apart. Results stored
before the schema was versioned (no ``schema_version``) are read as version 1.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from nas.config import SearchConfig

SCHEMA_VERSION: Final = 1


class ResultError(ValueError):
    """A stored job cannot be read as a typed job; the message names the job and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitBreakdown(_Strict):
    """Head, link and tail latency of an architecture with one split point."""

    total_ms: float
    head_ms: float
    comm_ms: float
    tail_ms: float
    payload_elements: int
    payload_bytes: int | float
    head_device: str
    tail_device: str
    predictors: dict[str, str]


class Segment(_Strict):
    """One device's part of the critical path: its layers, compute and what it sends on."""

    device: str
    layers: list[int]
    compute_ms: float
    payload_elements: int
    comm_ms: float
    payload_bytes: int | float | None = None


class TopologyBreakdown(_Strict):
    """Completion latency on a chain or mesh: the critical path's segments and every branch's term."""

    total_ms: float
    segments: list[Segment]
    branch_ms: dict[str, float] = Field(default_factory=dict)
    critical_branch: str | None = None
    payload_bytes: int | float
    predictors: dict[str, str]


class LinkSummary(_Strict):
    from_: str = Field(alias="from")
    to: str
    bandwidth_mbps: float
    bits: int
    codec: str | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


class TopologySummary(_Strict):
    name: str
    kind: str
    stages: str
    devices: list[str]
    derived_devices: list[str]
    links: list[LinkSummary]


class StageAssignment(_Strict):
    devices: list[str]
    layers: list[int] | None


class SplitProbability(_Strict):
    splits: list[int]
    p: float


class _Found(_Strict):
    """What every result holds: the answer, its latency against T_th, its accuracy, and where time went."""

    schema_version: Literal[1] = SCHEMA_VERSION
    architecture: str
    split: int
    payload_bytes: int | float
    meets_t_th: bool
    latency_penalty_ms: float
    loss_rate: float
    accuracy_at_loss: float
    accuracy_clean: float
    convergence: float | None
    wall_time_s: float
    latency_time_s: float
    latency_share: float
    latency_queries: int
    latency_source: str
    data: str
    num_classes: int
    device: str
    codec: str | None = Field(None, description="payload codec of the head-tail link (a topology: its links' bits)")
    runtimes: dict[str, str] = Field(
        default_factory=dict, description="runtime of each device's latency table (torch, onnxruntime, ...)"
    )
    weights: str | None = Field(None, description="file of the re-trained answer's weights (nas.searched)")


class TrainingHyperparameters(_Strict):
    """The training settings a ``tune`` search chose with the architecture (its answer re-trains with them)."""

    lr: float
    batch_size: int
    dropout: float = Field(description="dropout at the split while training")


class SplitResult(_Found):
    """A head-tail split search's answer (nasc, hwnas, random, evolution, tune)."""

    kind: Literal["split"] = "split"
    latency: SplitBreakdown
    split_objective: dict[str, float] | None = Field(None, description="HWNAS: J of every split point scored")
    retrain_dropout: float | None = Field(None, description="HWNAS: dropout at the split while re-training")
    hyperparameters: TrainingHyperparameters | None = Field(None, description="tune: the best trial's training")
    trials: int | None = Field(None, description="tune: trials run")
    trial_epochs: int | None = Field(None, description="tune: training epochs of all trials (ASHA stops some early)")
    trial_steps: int | None = Field(None, description="tune: training steps of all trials (re-training not counted)")
    trial_objective: float | None = Field(None, description="tune: the best trial's J at its last epoch")

    @property
    def splits(self) -> list[int]:
        return [self.split]


class TopologyResult(_Found):
    """A search on a chain or mesh of devices (the gradient method)."""

    kind: Literal["topology"] = "topology"
    latency: TopologyBreakdown
    splits: list[int]
    expected_ms: float
    latency_loss: str
    latency_weight: float
    search_splits: bool
    split_distribution: list[SplitProbability]
    topology: TopologySummary
    assignment: list[StageAssignment]


Result = Annotated[SplitResult | TopologyResult, Field(discriminator="kind")]
_RESULT = TypeAdapter(Result)


class Job(BaseModel):
    """A search job as stored, written by ``nas search`` and read by ``nas report`` and the pipeline.

    ``result`` is set when it completed, ``error`` when it failed; ``history`` holds one progress record
    per epoch (stage, epoch, loss, arch, latency_ms, convergence, ...).
    """

    model_config = ConfigDict(extra="forbid")

    uid: str
    method: str
    space: str
    status: Literal["running", "completed", "failed"]
    sweep: str | None = None  # the sweep (nas sweep) and its cell this job ran, when it ran in one
    cell: str | None = None
    created_at: str | None = None
    finished_at: str | None = None
    config: SearchConfig
    history: list[dict[str, Any]] = Field(default_factory=list)
    result: Result | None = None
    error: str | None = None

    @property
    def search_records(self) -> list[dict[str, Any]]:
        """Progress records of the distribution-update stage."""
        return [r for r in self.history if r.get("stage") == "search"]


def read_result(stored: dict[str, Any] | None, *, uid: str = "?") -> tuple[Result | None, str | None]:
    """A stored ``search_jobs.result`` column as (result, error); version 0 (unversioned) is upgraded."""
    if not stored:
        return None, None
    if "error" in stored and "architecture" not in stored:
        return None, str(stored["error"])
    data = dict(stored)
    version = data.setdefault("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ResultError(f"job {uid}: result schema version {version!r}; this splitnas reads {SCHEMA_VERSION}")
    if "kind" not in data:  # version 0 had no kind: a topology's latency has segments
        data["kind"] = "topology" if "segments" in data.get("latency", {}) else "split"
    try:
        return _RESULT.validate_python(data), None
    except ValidationError as exc:
        raise ResultError(f"job {uid}: stored result does not match schema {SCHEMA_VERSION}: {_problems(exc)}") \
            from None


def stored_error(message: str) -> dict[str, Any]:
    """The result column of a failed job."""
    return {"schema_version": SCHEMA_VERSION, "error": message}


def read_job(data: dict[str, Any]) -> Job:
    """A job from its JSON form (a job file or ``nas report --json``); old results are upgraded."""
    data = dict(data)
    uid = str(data.get("uid", "?"))
    if isinstance(data.get("result"), dict):
        data["result"], error = read_result(data["result"], uid=uid)
        data["error"] = data.get("error") or error
    try:
        return Job.model_validate(data)
    except ValidationError as exc:
        raise ResultError(f"job {uid}: {_problems(exc)}") from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()[:5])
