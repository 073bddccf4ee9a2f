"""Device topologies for multi-split inference: chains and meshes of devices, and their completion latency.

A topology is a sequence of *stages* that run contiguous layer ranges one after another. A stage is one
device, except in a mesh, where one stage is a group of parallel devices:

- **chain** ``d_1 -> d_2 -> ... -> d_M``: device m runs its layers and sends the output of its last
  layer over its link (DESIGN.md section 3).
- **mesh**: a chain part, then a *root* device that broadcasts its output to parallel *branch* devices,
  whose results are merged on the *merge* device, which runs the rest of the network.

Parallel branches of a sequential CNN: every branch device runs the same layer range on a share of the
feature map (a band of output rows, taking the rows its receptive field needs from the broadcast input),
so the network computes exactly what it computes on one device. Branch m does ``share_m`` of the
range's work and sends ``share_m`` of its output; the halo rows it recomputes are ignored. Completion
latency, DESIGN.md section 3, plus the merge device's own compute (the layers after the branches and the
classifier, which start once the merged tensor is complete):

    T = sum over chain devices (compute + eps) + max over branches m of (compute_r + eps_r,m + compute_m + eps_m)
        + compute_merge

The formula itself is ``predictor.latency.completion_terms``; the file format is ``predictor.topology_file``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from predictor.latency import CompletionLatency, DeviceLUT, Layout, Link, Stage, layout_latency
from spaces import Architecture

TopologyKind = Literal["chain", "mesh"]
BRANCHES_KEY = "branches"

__all__ = [
    "BRANCHES_KEY", "DeviceSpec", "Stage", "Topology", "TopologyError", "TopologyKind", "completion_latency",
    "derived_lut", "topology_luts",
]


class TopologyError(ValueError):
    """A topology file or assignment that is malformed; the message names the bad field, ``where`` holds it."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where

    @property
    def loc(self) -> list[str | int]:
        """``where`` as a path of keys and list indices: ``links[1].bits`` is ``["links", 1, "bits"]``."""
        if not self.where:
            return []
        return [int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", self.where) if p]


@dataclass(frozen=True)
class DeviceSpec:
    """A device of a topology: its name in the topology and the device whose latency table it uses.

    ``latency_factor`` multiplies that table: a device derived from a measured one (say so in reports).
    """

    name: str
    device: str
    latency_factor: float = 1.0
    description: str = ""

    @property
    def derived(self) -> bool:
        return self.latency_factor != 1.0

    @property
    def label(self) -> str:
        if not self.derived:
            return f"{self.name} ({self.device})"
        return f"{self.name} (derived: {self.latency_factor:g} x {self.device})"


@dataclass(frozen=True)
class Topology:
    """A validated chain or mesh of devices with its links and, optionally, its layer assignment."""

    name: str
    kind: TopologyKind
    devices: tuple[DeviceSpec, ...]
    links: Mapping[tuple[str, str], Link]
    stages: tuple[Stage, ...]
    assignment: Mapping[str, Any] | None = None
    source: str = "<topology>"
    _by_name: dict[str, DeviceSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {d.name: d for d in self.devices})

    @property
    def n_splits(self) -> int:
        return len(self.stages) - 1

    @property
    def layout(self) -> Layout:
        """Stages, links and one row per device (in ``devices`` order): ``predictor.latency.completion_terms``."""
        return Layout(self.stages, self.links, {d.name: i for i, d in enumerate(self.devices)})

    @property
    def parallel_stage(self) -> int | None:
        """Index of the branches' stage of a mesh (the root is the stage before it)."""
        return self.layout.parallel_stage

    def device(self, name: str) -> DeviceSpec:
        return self._by_name[name]

    def link(self, source: str, target: str) -> Link:
        return self.links[(source, target)]

    def describe(self) -> str:
        names = [s.devices[0] if not s.parallel else "{" + " | ".join(s.devices) + "}" for s in self.stages]
        return " -> ".join(names)

    def splits(self, n_layers: int) -> tuple[int, ...]:
        """The assignment's split points for a space with ``n_layers`` searchable layers."""
        if self.assignment is None:
            raise TopologyError(f"{self.source}: assignment: missing (give splits or layers, or search the splits)",
                                where="assignment")
        if "splits" in self.assignment:
            splits = tuple(self.assignment["splits"])
        else:
            splits = self._splits_from_layers(self.assignment["layers"], n_layers)
        self.check_splits(splits, n_layers)
        return splits

    def check_splits(self, splits: Sequence[int], n_layers: int, *, where: str = "assignment.splits") -> None:
        """Raise TopologyError unless ``splits`` are valid split points of this topology."""
        if len(splits) != self.n_splits:
            raise TopologyError(
                f"{self.source}: {where}: {self.describe()} has {len(self.stages)} stages and needs "
                f"{self.n_splits} split points, got {len(splits)}", where=where,
            )
        for i, k in enumerate(splits):
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n_layers:
                raise TopologyError(f"{self.source}: {where}[{i}]: split {k!r} is outside 0..{n_layers}",
                                    where=f"{where}[{i}]")
        if any(b <= a for a, b in zip(splits, splits[1:], strict=False)):
            raise TopologyError(
                f"{self.source}: {where}: split points must be strictly increasing (every device between the "
                f"first and the last runs at least one layer), got {list(splits)}", where=where,
            )

    def _splits_from_layers(self, layers: Mapping[str, Any], n_layers: int) -> tuple[int, ...]:
        ranges: list[tuple[str, tuple[int, int] | None]] = []
        for i, stage in enumerate(self.stages):
            ranges.append(self._stage_range(stage, layers, i))
        previous_end, previous_name = -1, None
        splits = []
        for i, (name, span) in enumerate(ranges):
            if span is None:
                if 0 < i < len(ranges) - 1:
                    raise TopologyError(
                        f"{self.source}: assignment.layers.{name}: only the first and the last device may run "
                        "no searchable layer"
                    )
                if i == len(ranges) - 1:
                    if previous_end != n_layers - 1:
                        raise TopologyError(
                            f"{self.source}: assignment.layers: layers {previous_end + 1}..{n_layers - 1} are "
                            "assigned to no device"
                        )
                    splits.append(n_layers)
                continue
            first, last = span
            if not 0 <= first <= last < n_layers:
                raise TopologyError(
                    f"{self.source}: assignment.layers.{name}: range [{first}, {last}] is outside 0..{n_layers - 1} "
                    "or reversed"
                )
            if first <= previous_end:
                raise TopologyError(
                    f"{self.source}: assignment.layers.{name}: range [{first}, {last}] overlaps "
                    f"{previous_name}'s (which ends at layer {previous_end})"
                )
            if first > previous_end + 1:
                raise TopologyError(
                    f"{self.source}: assignment.layers: layers {previous_end + 1}..{first - 1} are assigned to no "
                    f"device (before {name})"
                )
            if i > 0:
                splits.append(first)
            previous_end, previous_name = last, name
        if ranges[-1][1] is not None and previous_end != n_layers - 1:
            raise TopologyError(
                f"{self.source}: assignment.layers: layers {previous_end + 1}..{n_layers - 1} are assigned to no device"
            )
        return tuple(splits)

    def _stage_range(self, stage: Stage, layers: Mapping[str, Any], index: int) -> tuple[str, tuple[int, int] | None]:
        if not stage.parallel:
            name = stage.devices[0]
            if name not in layers:
                raise TopologyError(f"{self.source}: assignment.layers: no layer range for device {name!r}")
            return name, _layer_range(layers[name], f"{self.source}: assignment.layers.{name}")
        given = {n: layers[n] for n in (BRANCHES_KEY, *stage.devices) if n in layers}
        if not given:
            raise TopologyError(
                f"{self.source}: assignment.layers: no layer range for the branches (key {BRANCHES_KEY!r} or each "
                f"of {', '.join(stage.devices)})"
            )
        spans = {n: _layer_range(v, f"{self.source}: assignment.layers.{n}") for n, v in given.items()}
        if len(set(spans.values())) > 1:
            raise TopologyError(
                f"{self.source}: assignment.layers: parallel branches run the same layers, got "
                + ", ".join(f"{n}: {list(s) if s else []}" for n, s in spans.items())
            )
        return BRANCHES_KEY, next(iter(spans.values()))

    def assignment_table(self, splits: Sequence[int], n_layers: int) -> list[dict[str, Any]]:
        """Which layers each stage runs: ``[{"devices": [...], "layers": [first, last] or None}, ...]``."""
        bounds = [0, *splits, n_layers]
        return [
            {"devices": list(s.devices), "layers": [a, b - 1] if b > a else None}
            for s, a, b in zip(self.stages, bounds, bounds[1:], strict=False)
        ]


def _layer_range(value: Any, where: str) -> tuple[int, int] | None:
    if value is None or value == []:
        return None
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise TopologyError(f"{where}: expected an inclusive layer range [first, last] or [] for none, got {value!r}")
    return int(value[0]), int(value[1])


# -- latency tables per topology device ----------------------------------------------------------------


def derived_lut(lut: DeviceLUT, spec: DeviceSpec) -> DeviceLUT:
    """``lut`` as the table of topology device ``spec``: named after it, times its latency factor."""
    meta = dict(lut.meta) | {"topology_device": spec.name, "source_device": lut.device}
    if spec.derived:
        meta["derived"] = f"{spec.latency_factor:g} x {lut.device}"
    return replace(
        lut, device=spec.name, table=lut.table * spec.latency_factor,
        fixed={k: v * spec.latency_factor for k, v in lut.fixed.items()}, meta=meta,
    )


def topology_luts(topology: Topology, fetch: Callable[[str], DeviceLUT]) -> dict[str, DeviceLUT]:
    """One table per topology device, from ``fetch(device)`` (the latency client), factors applied."""
    tables: dict[str, DeviceLUT] = {}
    fetched: dict[str, DeviceLUT] = {}
    for spec in topology.devices:
        if spec.device not in fetched:
            fetched[spec.device] = fetch(spec.device)
        tables[spec.name] = derived_lut(fetched[spec.device], spec)
    return tables


# -- completion latency of one architecture ------------------------------------------------------------


def completion_latency(arch: Architecture, topology: Topology, luts: Mapping[str, DeviceLUT]) -> CompletionLatency:
    """Completion latency of ``arch`` (its ``splits`` are the topology's stage boundaries), DESIGN.md section 3.

    ``luts`` maps every topology device name to its table (``topology_luts``).
    """
    topology.check_splits(arch.splits, len(arch.space.layers), where="architecture splits")
    missing = [d.name for d in topology.devices if d.name not in luts]
    if missing:
        raise TopologyError(f"{topology.source}: no latency table for device {missing[0]!r}", where="devices")
    return layout_latency(arch, topology.layout, [luts[d.name] for d in topology.devices])
