"""What a profiling run measures: the space's blocks and fixed layers, sampled configs, models and heads.

Every entry becomes one measurement row. Entries that time the same thing (the same op at several
layers, or a sampled config equal to an op of the space) share a ``timing_key`` and are timed once.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from db.records import MeasurementRecord, Target
from spaces import Architecture, Op, SearchSpace, sample_architecture
from spaces.blocks import Block, conv_block, mbconv_block
from spaces.ops import BN_FLOPS_PER_ELEMENT

if TYPE_CHECKING:
    from profiler.timing import Timing

SAMPLED_KERNELS = (3, 5, 7)
SAMPLED_EXPANSIONS = tuple(Fraction(1, d) for d in (8, 4, 2)) + tuple(Fraction(e) for e in range(1, 7))
SAMPLED_GROUPS = (1, 2)


@dataclass(frozen=True)
class Entry:
    """One thing to measure and the key of the row it becomes (see db.models.Measurement)."""

    target: Target
    key: str
    space: str
    op: Op | None = None
    layer: int | None = None
    block: str | None = None
    arch: Architecture | None = None  # target 'model': the whole network, or with one split its head

    @property
    def timing_key(self) -> str:
        """Entries with equal timing keys measure the same thing and are timed once."""
        return self.op.key if self.op is not None else self.key

    @property
    def label(self) -> str:
        """A short name for the progress bar (architecture strings are long)."""
        if self.arch is None:
            return self.key
        return f"{self.space}/model" + (f"@{self.arch.split} head" if self.arch.splits else " (full)")

    @property
    def flops(self) -> int:
        if self.op is not None:
            return self.op.flops
        assert self.arch is not None
        return model_costs(self.arch)["flops"]

    def config(self) -> dict[str, Any]:
        if self.target == "config":
            assert self.op is not None
            return {**self.op.features(), **op_fields(self.op)}
        if self.target == "model":
            assert self.arch is not None
            head = bool(self.arch.splits)
            return {
                "arch": self.arch.with_splits().encode(), "split": self.arch.split if head else None,
                "part": "head" if head else "full", **model_costs(self.arch),
            }
        return {}

    def record(self, timing: Timing, **raw: Any) -> MeasurementRecord:
        return MeasurementRecord(
            target=self.target, key=self.key, space=self.space, layer=self.layer, block=self.block,
            op_key=self.op.key if self.op is not None else None, config=self.config(),
            latency_ms=timing.median_ms, iqr_ms=timing.iqr_ms, mean_ms=timing.mean_ms, min_ms=timing.min_ms,
            repeats=timing.runs, raw={**timing.summary(), **raw}, noisy=timing.noisy, flops=self.flops,
        )


def op_fields(op: Op) -> dict[str, Any]:
    """The fields that rebuild ``op`` (``spaces.Op(**fields)``), JSON-able: the expansion as a fraction string."""
    values = {f.name: getattr(op, f.name) for f in fields(Op)}
    values["expansion"] = str(op.expansion)
    return values


def model_costs(arch: Architecture) -> dict[str, int]:
    """MACs and FLOPs (reference convention) of the whole network, or of its head when it has one split.

    A head that ends in a bottleneck block stops after the block's depthwise conv: its 1x1
    projection and BN belong to the tail.
    """
    space = arch.space
    if not arch.splits:
        return {"macs": arch.macs, "flops": arch.flops}
    ops = [f.op for f in space.prefix] + arch.layer_ops[: arch.split]
    macs, flops = sum(op.macs for op in ops), sum(op.flops for op in ops)
    if arch.split > 0 and ops[-1].is_bottleneck:
        last = ops[-1]
        hw = last.out_h * last.out_h
        projection = last.mid // last.groups * last.cout * hw
        macs -= projection
        flops -= projection + BN_FLOPS_PER_ELEMENT * last.cout * hw
    return {"macs": macs, "flops": flops}


def space_entries(space: SearchSpace, *, layers: Iterable[int] | None = None) -> list[Entry]:
    """The prefix's fixed layers, every (layer, block) of ``layers`` (default all), the suffix."""
    chosen = sorted(set(layers)) if layers is not None else range(len(space.layers))
    entries = [Entry("fixed", f"{space.name}/{f.name}", space.name, op=f.op) for f in space.prefix]
    for index in chosen:
        layer = space.layer(index)
        entries += [
            Entry("block", f"{space.name}/L{index}/{b.name}", space.name, op=layer.op(b), layer=index, block=b.name)
            for b in layer.blocks
        ]
    entries += [Entry("fixed", f"{space.name}/{f.name}", space.name, op=f.op) for f in space.suffix]
    return entries


def _channels(rng: random.Random, around: int) -> int:
    """A channel count within a factor of two of ``around``, a multiple of 8."""
    return max(8, round(around * 2 ** rng.uniform(-1, 1) / 8) * 8)


def sample_config(space: SearchSpace, rng: random.Random) -> Op:
    """A block configuration drawn around the space's layer shapes.

    Input size half to twice a layer's, channels within a factor of two, stride 1 or 2, kernel
    3/5/7, expansion 1/8 to 6, groups 1 or 2 (where the channels allow it); fbnet spaces draw the
    FBNet conv block (and now and then a projection skip), mbconv spaces the MBConv block.
    """
    base = rng.choice(space.layers)
    h = max(2, int(base.h * rng.choice((0.5, 1, 1, 2))))
    cin, cout = _channels(rng, base.cin), _channels(rng, base.cout)
    stride = rng.choice((1, 2))
    kernel = rng.choice(SAMPLED_KERNELS)
    expansion = rng.choice(SAMPLED_EXPANSIONS)
    block: Block
    if space.family == "mbconv":
        block = mbconv_block(kernel, expansion, residual=rng.random() < 0.5)  # type: ignore[arg-type]
    elif rng.random() < 0.1:
        block = space.block("skip")
        if stride == 1 and cin == cout:
            cout += 8  # a projection skip: the identity needs no measuring
    else:
        groups = rng.choice(SAMPLED_GROUPS)
        if (cin * expansion) % groups or (cin * expansion).denominator != 1:
            groups = 1
        block = conv_block(kernel, expansion, groups)
    return Op.from_block(block, h=h, cin=cin, cout=cout, stride=stride, act=base.act)


def config_entries(space: SearchSpace, count: int, rng: random.Random) -> list[Entry]:
    """``count`` distinct sampled configurations (key: the op key)."""
    ops: dict[str, Op] = {}
    for _ in range(100 * count):
        if len(ops) >= count:
            break
        op = sample_config(space, rng)
        ops.setdefault(op.key, op)
    return [Entry("config", key, space.name, op=op) for key, op in ops.items()]


def model_entries(space: SearchSpace, count: int, rng: random.Random) -> list[Entry]:
    """``count`` sampled architectures, end to end, each followed by its head up to a sampled split."""
    entries: list[Entry] = []
    for _ in range(count):
        arch = sample_architecture(space, rng, splits=1)
        whole = arch.with_splits()
        entries.append(Entry("model", f"{space.name}/{whole.encode()}", space.name, arch=whole))
        entries.append(Entry("model", f"{space.name}/{arch.encode()}", space.name, arch=arch))
    return entries


def build_plan(
    space: SearchSpace, *, layers: Sequence[int] | None = None, models: int = 0, sample_configs: int = 0,
    seed: int = 0,
) -> list[Entry]:
    """Every entry of a run, in measuring order: space ops, sampled configs, then models and heads."""
    rng = random.Random(seed)
    entries = space_entries(space, layers=layers)
    entries += config_entries(space, sample_configs, rng)
    entries += model_entries(space, models, rng)
    return list({e.key: e for e in entries}.values())


def drop_measured(entries: Iterable[Entry], measured: set[str]) -> list[Entry]:
    """The entries whose key is not in ``measured`` (``--resume``)."""
    return [e for e in entries if e.key not in measured]


def group_by_timing(entries: Iterable[Entry]) -> list[list[Entry]]:
    """Entries grouped by what is timed, in first-appearance order."""
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.timing_key, []).append(entry)
    return list(groups.values())
