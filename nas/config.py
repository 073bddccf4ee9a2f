"""Every setting of a search, with the reference values of DESIGN.md sections 5.1 to 6 as defaults."""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from db.records import runtime_name
from spaces.codecs import CODECS, DEFAULT_CODECS, get_codec


class OptimizerConfig(BaseModel):
    """SGD with momentum and an optional cosine schedule over the stage's steps."""

    model_config = ConfigDict(extra="forbid")

    # defaults by keyword: type checkers read a positional one as a required field, and SearchConfig
    # makes this model and GradientOptions with default_factory
    lr: float = Field(default=0.025, gt=0, description="learning rate")
    momentum: float = Field(default=0.9, ge=0, lt=1, description="SGD momentum")
    nesterov: bool = Field(default=True, description="Nesterov momentum")
    weight_decay: float = Field(default=3e-4, ge=0, description="L2 weight decay")
    cosine: bool = Field(default=True, description="cosine learning-rate schedule over the stage's steps")


class GradientOptions(BaseModel):
    """Settings of the gradient method (DESIGN.md 5.4); its latency target is ``t_th`` of the search.

    Warm-up uses ``pretrain_epochs``, the alternating weight / architecture steps ``search_epochs`` and
    the answer's re-training ``retrain_epochs``; the squared form's lambda_1 is the supernet optimizer's
    weight decay (``2 * lambda_1``).
    """

    model_config = ConfigDict(extra="forbid")

    latency_loss: Literal["squared", "hinge", "log"] = Field(
        default="squared", description="squared: CE + lambda_2 (E[T] - T)^2; hinge: CE + w max(0, E[T] - T); "
        "log: CE (log E[T] / log T)^beta",
    )
    latency_weight: float | None = Field(
        default=None, ge=0,
        description="lambda_2 (default 1/T^2), the hinge weight (default 1 per ms) or beta (default 0.6)",
    )
    search_splits: bool = Field(
        default=False, description="search the split points too (else the topology's assignment)"
    )
    arch_lr: float = Field(default=6e-3, gt=0, description="Adam learning rate of the architecture parameters")
    arch_every: int = Field(default=1, ge=1, description="weight steps per architecture step")


class TuneOptions(BaseModel):
    """Settings of the ``tune`` method: the budget of its black-box search and the hyperparameters' ranges.

    Every trial trains its network for at most ``epochs`` (ASHA stops unpromising trials at rungs from
    ``grace_epochs`` on); the best trial is then re-trained for ``retrain_epochs`` with its learning rate,
    batch size and dropout, and the rest of ``retrain_optimizer``.
    """

    model_config = ConfigDict(extra="forbid")

    trials: int = Field(default=16, ge=1, description="trials sampled (architecture, split, hyperparameters)")
    epochs: int = Field(default=30, ge=1, description="most training epochs of a trial (ASHA's fidelity)")
    grace_epochs: int = Field(default=1, ge=1, description="epochs every trial runs before ASHA may stop it")
    reduction_factor: int = Field(default=3, ge=2, description="ASHA: 1 in this many trials goes on at each rung")
    startup_trials: int = Field(default=10, ge=1, description="random trials before TPE models the objective")
    concurrent: int = Field(
        default=1, ge=1, description="trials run at once (1: the whole search is reproducible given the seed)"
    )
    lr_min: float = Field(default=1e-3, gt=0, description="smallest learning rate (sampled log-uniformly)")
    lr_max: float = Field(default=0.1, gt=0, description="largest learning rate")
    batch_sizes: tuple[int, ...] = Field(default=(32, 64, 128), description="batch sizes to choose from, e.g. 32,64")
    dropout_min: float = Field(default=0.0, ge=0, lt=1, description="smallest training dropout at the split")
    dropout_max: float = Field(default=0.5, ge=0, lt=1, description="largest training dropout at the split")

    @model_validator(mode="after")
    def _ranges(self) -> TuneOptions:
        if self.lr_min > self.lr_max:
            raise ValueError(f"--tune-lr-min {self.lr_min:g} is above --tune-lr-max {self.lr_max:g}")
        if self.dropout_min > self.dropout_max:
            raise ValueError(f"--tune-dropout-min {self.dropout_min:g} is above --tune-dropout-max "
                             f"{self.dropout_max:g}")
        if self.grace_epochs > self.epochs:
            raise ValueError(f"--tune-grace-epochs {self.grace_epochs} is more than --tune-epochs {self.epochs}")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ValueError(f"--tune-batch-sizes must be at least one size of 1 or more, got {list(self.batch_sizes)}")
        return self


class SearchConfig(BaseModel):
    """A search job's configuration; stored with the job.

    Defaults are the reference scenario (fbnet-cifar100, raspi4 -> edgegpu, 8 Mbit/s, 32 bits, p = 0.2,
    T_th = 30 ms) and the reference NASC settings (30 / 90 / 300 epochs, lambda_x = lambda_theta = 2,
    dropout set {0, ..., 0.5}, training dropout 0.5, eps_loss = eps_lat = 1). DESIGN.md gives no
    optimizer settings; the defaults are those of ASNG-NAS for the supernet (SGD, lr 0.025, Nesterov
    momentum 0.9, weight decay 3e-4, cosine), also for re-training with weight decay 5e-4.
    """

    model_config = ConfigDict(extra="forbid")

    method: str = Field("nasc", description="search method: nasc, hwnas, hwnas-nodropout, random, evolution, gradient, "
                        "tune")
    space: str = Field("fbnet-cifar100", description="search space, e.g. fbnet-cifar100, mbconv-cifar100")
    head_device: str = Field("raspi4", description="device running the head (its latency table)")
    tail_device: str = Field("edgegpu", description="device running the tail")
    bandwidth_mbps: float = Field(8.0, gt=0, description="link throughput r in Mbit/s")
    bits: Literal[8, 16, 32] = Field(32, description="bits per transmitted element q: what the link really sends "
                                     "(32 float32, 16 float16, 8 int8; see --codec)")
    codec: str | None = Field(
        None, description=f"payload codec of the split tensor: {', '.join(CODECS)} (default: the one of --bits; "
        "int16 is the other 16-bit one); applied in training (straight-through), evaluation and deployment",
    )
    loss: float = Field(0.2, ge=0, lt=1, description="packet-loss rate of the link (share of dropped elements)")
    t_th: float = Field(30.0, gt=0, description="latency threshold T_th in ms")
    eps_loss: float = Field(1.0, ge=0, description="weight of l_SC in the objective")
    eps_lat: float = Field(1.0, ge=0, description="weight of the latency hinge (per ms)")
    dropout_set: tuple[float, ...] = Field(
        (0.0, 0.1, 0.2, 0.3, 0.4, 0.5), description="packet-loss rates averaged in l_SC, e.g. 0,0.1,0.2"
    )
    train_dropout: float = Field(0.5, ge=0, lt=1, description="dropout at the split while training weights")
    scale_dropout: bool = Field(False, description="rescale kept elements by 1/(1-p) as nn.Dropout does")
    pretrain_epochs: int = Field(30, ge=0, description="supernet pre-training (gradient: warm-up) epochs")
    search_epochs: int = Field(90, ge=0, description="architecture search epochs")
    retrain_epochs: int = Field(300, ge=0, description="re-training epochs of the answer")
    steps_per_epoch: int | None = Field(None, ge=1, description="cap on the steps of every epoch (tiny runs)")
    lambda_x: int = Field(2, ge=1, description="architectures sampled per weight step")
    lambda_theta: int = Field(2, ge=2, description="architectures sampled per distribution step")
    batch_size: int = Field(64, ge=1, description="images per step")
    split_eval_batches: int = Field(4, ge=1, description="validation batches scoring each split (HWNAS)")
    supernet_optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig, description="supernet training")
    retrain_optimizer: OptimizerConfig = Field(
        default_factory=lambda: OptimizerConfig(weight_decay=5e-4), description="re-training"
    )
    supernet_cache: str | None = Field(
        None, description="file of the pre-trained supernet: loaded (stage 1 skipped) when it exists with the "
        "same stage-1 settings, written after stage 1 otherwise; or a directory (existing, or ending in /), one "
        "file per settings",
    )
    searcher_options: dict[str, Any] = Field(
        default_factory=dict, description="searcher settings KEY=VALUE (values as YAML), e.g. ASNG alpha=1.5"
    )
    topology: dict[str, Any] | None = Field(
        None, description="a chain or mesh of devices (predictor.topology_file's format, parsed): the gradient "
        "method's devices, links and split assignment in place of head_device, tail_device and the link",
    )
    gradient: GradientOptions = Field(default_factory=GradientOptions, description="gradient method")
    tune: TuneOptions = Field(default_factory=TuneOptions, description="tune method")
    data: str = Field("digits", description="'digits', 'synthetic' or a CIFAR-100 directory")
    data_limit: int | None = Field(None, ge=1, description="use at most this many images per split")
    predictor_url: str | None = Field(
        None, description="latency service, e.g. http://host:8000 (default: read the database directly)"
    )
    predictor: str = Field("auto", description="predictor kind filling the tables (auto, lookup, ...)")
    runtime: str | None = Field(
        None, description="runtime of every device's table (torch, onnxruntime, tflite, ...; default: each device's "
        "only runtime)",
    )
    seed: int = Field(0, description="seed of weights, sampling and searchers")
    device: str = Field("auto", description="where torch computes: auto, cpu, cuda or cuda:N")

    @model_validator(mode="after")
    def _topology_for_gradient(self) -> SearchConfig:
        if self.method == "gradient" and self.topology is None:
            raise ValueError("the gradient method searches on a chain or mesh of devices: give --topology FILE")
        if self.method != "gradient" and self.topology is not None:
            raise ValueError(f"a topology is searched by --method gradient only, not {self.method!r}")
        return self

    @field_validator("codec")
    @classmethod
    def _known_codec(cls, value: str | None) -> str | None:
        return None if value is None else get_codec(value).name

    @model_validator(mode="after")
    def _codec_sends_the_bits(self) -> SearchConfig:
        if self.codec is None:
            return self
        bits = get_codec(self.codec).bits
        if "bits" not in self.model_fields_set:
            self.bits = cast(Literal[8, 16, 32], bits)
        elif bits != self.bits:
            raise ValueError(f"--codec {self.codec} sends {bits} bits per element, not --bits {self.bits}")
        return self

    @property
    def payload_codec(self) -> str:
        """The codec the link sends the split tensor with: ``codec``, or the default one of ``bits``."""
        return self.codec or DEFAULT_CODECS[self.bits]

    @field_validator("runtime")
    @classmethod
    def _runtime(cls, value: str | None) -> str | None:
        return None if value is None else runtime_name(value)

    @field_validator("dropout_set")
    @classmethod
    def _rates(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(not 0 <= p < 1 for p in value):
            raise ValueError(f"dropout rates must be in [0, 1), at least one, got {list(value)}")
        return value
