"""Device topologies for multi-split inference: chains and meshes, their file format and completion latency.

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

File format (YAML)::

    name: chain4                      # optional, default: the file name
    topology: chain                   # chain | mesh
    devices:                          # name: used in this file; device: the latency table's device
      - {name: ue, device: raspi4}
      - {name: sbs, device: cpu, latency_factor: 0.5}   # a derived device: table times the factor
    links:
      - {from: ue, to: sbs, bandwidth_mbps: 25, bits: 32}
    chain: [ue, sbs]                  # chain order (default: device order); a mesh's chain part
    root: mbs                         # mesh only
    branches: [{device: e1, share: 0.5}, {device: e2, share: 0.5}]   # mesh only; names alone share equally
    merge: cloud                      # mesh only
    assignment:                       # optional when the split points are searched
      splits: [4, 11, 18]             # one split point per stage boundary, strictly increasing, 0..n
      # or layers: {ue: [0, 3], sbs: [4, 10], ...}: inclusive layer ranges, [] for none (first/last only)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from predictor.latency import ChainLatency, DeviceLUT, Link, SegmentLatency, chain_latency
from spaces import Architecture, get_space

TopologyKind = Literal["chain", "mesh"]
BRANCHES_KEY = "branches"

_TOP_KEYS = {"name", "topology", "devices", "links", "chain", "root", "branches", "merge", "assignment"}
_DEVICE_KEYS = {"name", "device", "latency_factor", "description"}
_LINK_KEYS = {"from", "to", "bandwidth_mbps", "bits"}
_BRANCH_KEYS = {"device", "share"}


class TopologyError(ValueError):
    """A topology file or assignment that is malformed; the message names the bad field."""


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
class Stage:
    """Devices that run one contiguous layer range: one device, or parallel branches with work shares."""

    devices: tuple[str, ...]
    shares: tuple[float, ...] = (1.0,)
    parallel: bool = False


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
    def parallel_stage(self) -> int | None:
        """Index of the branches' stage of a mesh (the root is the stage before it)."""
        return next((i for i, s in enumerate(self.stages) if s.parallel), None)

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
            raise TopologyError(f"{self.source}: assignment: missing (give splits or layers, or search the splits)")
        if "splits" in self.assignment:
            splits = tuple(self.assignment["splits"])
        else:
            splits = self._splits_from_layers(n_layers)
        self.check_splits(splits, n_layers)
        return splits

    def check_splits(self, splits: Sequence[int], n_layers: int, *, where: str = "assignment.splits") -> None:
        """Raise TopologyError unless ``splits`` are valid split points of this topology."""
        if len(splits) != self.n_splits:
            raise TopologyError(
                f"{self.source}: {where}: {self.describe()} has {len(self.stages)} stages and needs "
                f"{self.n_splits} split points, got {len(splits)}"
            )
        for i, k in enumerate(splits):
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n_layers:
                raise TopologyError(f"{self.source}: {where}[{i}]: split {k!r} is outside 0..{n_layers}")
        if any(b <= a for a, b in zip(splits, splits[1:], strict=False)):
            raise TopologyError(
                f"{self.source}: {where}: split points must be strictly increasing (every device between the "
                f"first and the last runs at least one layer), got {list(splits)}"
            )

    def _splits_from_layers(self, n_layers: int) -> tuple[int, ...]:
        layers = self.assignment["layers"]
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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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


# -- parsing ------------------------------------------------------------------------------------------


def load_topology(path: str | Path) -> Topology:
    """Read and validate a topology file."""
    return parse_topology(read_topology(path), source=Path(path).name)


def read_topology(path: str | Path) -> dict[str, Any]:
    """A topology file's validated data (its ``name`` defaults to the file name), as stored with a search job."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TopologyError(f"cannot read topology file {str(path)!r}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(f"{path.name}: not valid YAML: {exc}") from None
    if isinstance(data, dict):
        data = {"name": path.stem, **data}
    parse_topology(data, source=path.name)
    return data


def parse_topology(data: Any, *, source: str = "<topology>") -> Topology:
    """Validate a topology given as plain data (the parsed YAML); errors name the bad field."""

    def fail(where: str, message: str) -> TopologyError:
        return TopologyError(f"{source}: {where}: {message}")

    if not isinstance(data, dict):
        raise TopologyError(f"{source}: expected a mapping with keys topology, devices, links, ...")
    unknown = sorted(set(map(str, data)) - _TOP_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key; allowed: {', '.join(sorted(_TOP_KEYS))}")
    kind = data.get("topology")
    if kind not in ("chain", "mesh"):
        raise fail("topology", f"must be 'chain' or 'mesh', got {kind!r}")

    devices = _parse_devices(data.get("devices"), fail)
    names = [d.name for d in devices]

    def known(name: Any, where: str) -> str:
        if name not in names:
            raise fail(where, f"unknown device {name!r}; devices: {', '.join(names)}")
        return name

    chain_value = data.get("chain", names if kind == "chain" else [])
    if not isinstance(chain_value, list):
        raise fail("chain", f"expected a list of device names, got {chain_value!r}")
    chain = [known(n, f"chain[{i}]") for i, n in enumerate(chain_value)]
    if kind == "chain":
        for key in ("root", "branches", "merge"):
            if key in data:
                raise fail(key, "only a mesh has a root, branches and a merge device")
        if len(chain) < 2:
            raise fail("chain", "a chain needs at least two devices")
        stages = [Stage((n,)) for n in chain]
    else:
        for key in ("root", "branches", "merge"):
            if key not in data:
                raise fail(key, "missing (a mesh has a root, parallel branches and a merge device)")
        root = known(data["root"], "root")
        merge = known(data["merge"], "merge")
        branches, shares = _parse_branches(data["branches"], known, fail)
        stages = [Stage((n,)) for n in chain] + [
            Stage((root,)), Stage(tuple(branches), tuple(shares), parallel=True), Stage((merge,))
        ]
    used = [n for s in stages for n in s.devices]
    twice = sorted({n for n in used if used.count(n) > 1})
    if twice:
        raise fail("devices", f"device {twice[0]!r} appears more than once in the topology")
    unused = [n for n in names if n not in used]
    if unused:
        raise fail("devices", f"device {unused[0]!r} is not part of the {kind} ({' -> '.join(used)})")

    links = _parse_links(data.get("links"), known, fail)
    needed = [(a, b) for s, t in zip(stages, stages[1:], strict=False) for a in s.devices for b in t.devices]
    for a, b in needed:
        if (a, b) not in links:
            raise fail("links", f"missing link from {a!r} to {b!r}")
    extra = [pair for pair in links if pair not in needed]
    if extra:
        raise fail("links", f"link from {extra[0][0]!r} to {extra[0][1]!r} is not used by the {kind}")

    assignment = _parse_assignment(data.get("assignment"), fail)
    name = data.get("name", "topology")
    if not isinstance(name, str) or not name:
        raise fail("name", f"expected a non-empty string, got {name!r}")
    topology = Topology(name, kind, tuple(devices), links, tuple(stages), assignment, source)
    if assignment is not None and "splits" in assignment:
        splits = assignment["splits"]
        if len(splits) != topology.n_splits:
            raise fail(
                "assignment.splits",
                f"{topology.describe()} has {len(stages)} stages and needs {topology.n_splits} split points, "
                f"got {len(splits)}",
            )
    return topology


def _refuse_unknown_keys(
    entry: dict[Any, Any], allowed: set[str], where: str, fail: Callable[[str, str], TopologyError]
) -> None:
    unknown = sorted(set(map(str, entry)) - allowed)
    if unknown:
        raise fail(f"{where}.{unknown[0]}", f"unknown key; allowed: {', '.join(sorted(allowed))}")


def _parse_devices(value: Any, fail: Callable[[str, str], TopologyError]) -> list[DeviceSpec]:
    if not isinstance(value, list) or not value:
        raise fail("devices", "expected a non-empty list of {name, device} entries")
    devices: list[DeviceSpec] = []
    for i, entry in enumerate(value):
        where = f"devices[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict):
            raise fail(where, f"expected a mapping like {{name: ue, device: raspi4}}, got {entry!r}")
        _refuse_unknown_keys(entry, _DEVICE_KEYS, where, fail)
        name = entry.get("name")
        if not isinstance(name, str) or not name or name == BRANCHES_KEY:
            raise fail(f"{where}.name", f"expected a device name (not {BRANCHES_KEY!r}), got {name!r}")
        if any(d.name == name for d in devices):
            raise fail(f"{where}.name", f"duplicate device name {name!r}")
        device = entry.get("device", name)
        if not isinstance(device, str) or not device:
            raise fail(f"{where}.device", f"expected the name of a profiled device, got {device!r}")
        factor = entry.get("latency_factor", 1.0)
        if not (_is_number(factor) and math.isfinite(factor) and factor > 0):
            raise fail(f"{where}.latency_factor", f"expected a positive number, got {factor!r}")
        devices.append(DeviceSpec(name, device, float(factor), str(entry.get("description", ""))))
    return devices


def _parse_links(
    value: Any, known: Callable[[Any, str], str], fail: Callable[[str, str], TopologyError]
) -> dict[tuple[str, str], Link]:
    if not isinstance(value, list):
        raise fail("links", "expected a list of {from, to, bandwidth_mbps, bits} entries")
    links: dict[tuple[str, str], Link] = {}
    for i, entry in enumerate(value):
        where = f"links[{i}]"
        if not isinstance(entry, dict):
            raise fail(where, f"expected a mapping like {{from: ue, to: sbs, bandwidth_mbps: 25}}, got {entry!r}")
        _refuse_unknown_keys(entry, _LINK_KEYS, where, fail)
        for key in ("from", "to", "bandwidth_mbps"):
            if key not in entry:
                raise fail(f"{where}.{key}", "missing")
        pair = (known(entry["from"], f"{where}.from"), known(entry["to"], f"{where}.to"))
        if pair[0] == pair[1]:
            raise fail(where, f"a link from {pair[0]!r} to itself")
        if pair in links:
            raise fail(where, f"duplicate link from {pair[0]!r} to {pair[1]!r}")
        bandwidth, bits = entry["bandwidth_mbps"], entry.get("bits", 32)
        if not _is_number(bandwidth):
            raise fail(f"{where}.bandwidth_mbps", f"expected a number of Mbit/s, got {bandwidth!r}")
        try:
            links[pair] = Link(float(bandwidth), bits)
        except ValueError as exc:
            field_name = "bits" if "bits" in str(exc) else "bandwidth_mbps"
            raise fail(f"{where}.{field_name}", str(exc)) from None
    return links


def _parse_branches(
    value: Any, known: Callable[[Any, str], str], fail: Callable[[str, str], TopologyError]
) -> tuple[list[str], list[float]]:
    if not isinstance(value, list) or len(value) < 2:
        raise fail("branches", "a mesh needs a list of at least two parallel devices (use topology: chain for one)")
    names, shares = [], []
    for i, entry in enumerate(value):
        where = f"branches[{i}]"
        if isinstance(entry, str):
            entry = {"device": entry}
        if not isinstance(entry, dict):
            raise fail(where, f"expected a device name or {{device, share}}, got {entry!r}")
        _refuse_unknown_keys(entry, _BRANCH_KEYS, where, fail)
        names.append(known(entry.get("device"), f"{where}.device"))
        share = entry.get("share")
        if share is not None and not (_is_number(share) and 0 < share <= 1):
            raise fail(f"{where}.share", f"expected a share of the work in (0, 1], got {share!r}")
        shares.append(share)
    if all(s is None for s in shares):
        return names, [1.0 / len(names)] * len(names)
    if any(s is None for s in shares):
        raise fail("branches", "give a share for every branch or for none (equal shares)")
    if not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
        raise fail("branches", f"shares must add up to 1, got {sum(shares):g}")
    return names, [float(s) for s in shares]


def _parse_assignment(value: Any, fail: Callable[[str, str], TopologyError]) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ("splits", "layers"):
        raise fail("assignment", "expected exactly one of 'splits: [k1, k2, ...]' or 'layers: {device: [first, last]}'")
    if "splits" in value:
        splits = value["splits"]
        if not isinstance(splits, list) or not all(isinstance(k, int) and not isinstance(k, bool) for k in splits):
            raise fail("assignment.splits", f"expected a list of integer split points, got {splits!r}")
        if any(b <= a for a, b in zip(splits, splits[1:], strict=False)):
            raise fail("assignment.splits", f"split points must be strictly increasing, got {splits}")
        if any(k < 0 for k in splits):
            raise fail("assignment.splits", f"split points are 0..n (0: after the fixed stem), got {splits}")
        return {"splits": list(splits)}
    layers = value["layers"]
    if not isinstance(layers, dict):
        raise fail("assignment.layers", f"expected a mapping from device to [first, last], got {layers!r}")
    return {"layers": dict(layers)}


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


@dataclass(frozen=True)
class CompletionLatency:
    """Completion latency of a split architecture on a topology, and where it goes.

    ``segments`` follow the critical path (for a mesh: through its slowest branch); ``branch_ms`` holds
    every branch's term (root compute + broadcast + branch compute + its send) of a mesh.
    """

    total_ms: float
    segments: tuple[SegmentLatency, ...]
    branch_ms: Mapping[str, float] = field(default_factory=dict)

    @property
    def critical_branch(self) -> str | None:
        return max(self.branch_ms, key=self.branch_ms.__getitem__) if self.branch_ms else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_ms": self.total_ms,
            "segments": [s.__dict__ | {"layers": list(s.layers)} for s in self.segments],
            "branch_ms": dict(self.branch_ms),
            "critical_branch": self.critical_branch,
        }


def completion_latency(arch: Architecture, topology: Topology, luts: Mapping[str, DeviceLUT]) -> CompletionLatency:
    """Completion latency of ``arch`` (its ``splits`` are the topology's stage boundaries), DESIGN.md section 3.

    ``luts`` maps every topology device name to its table (``topology_luts``).
    """
    topology.check_splits(arch.splits, len(arch.space.layers), where="architecture splits")
    missing = [d.name for d in topology.devices if d.name not in luts]
    if missing:
        raise TopologyError(f"{topology.source}: no latency table for device {missing[0]!r}")
    p = topology.parallel_stage
    if p is None:
        chain = _chain(arch, [s.devices[0] for s in topology.stages], topology, luts)
        return CompletionLatency(chain.total_ms, chain.segments)
    stage = topology.stages[p]
    paths: dict[str, tuple[SegmentLatency, ...]] = {}
    branch_ms: dict[str, float] = {}
    for device, share in zip(stage.devices, stage.shares, strict=True):
        names = [s.devices[0] for s in topology.stages[:p]] + [device, topology.stages[p + 1].devices[0]]
        *before, root, branch, merge = _chain(arch, names, topology, luts).segments
        branch = replace(
            branch, compute_ms=share * branch.compute_ms, comm_ms=share * branch.comm_ms,
            payload_elements=round(share * branch.payload_elements),
        )
        branch_ms[device] = root.compute_ms + root.comm_ms + branch.compute_ms + branch.comm_ms
        paths[device] = (*before, root, branch, merge)
    critical = max(branch_ms, key=branch_ms.__getitem__)
    *before, _, _, merge = paths[critical]
    total = sum(s.compute_ms + s.comm_ms for s in before) + branch_ms[critical] + merge.compute_ms
    return CompletionLatency(total, paths[critical], branch_ms)


def _chain(arch: Architecture, names: Sequence[str], topology: Topology, luts: Mapping[str, DeviceLUT]) -> ChainLatency:
    links = [topology.link(a, b) for a, b in zip(names, names[1:], strict=False)]
    return chain_latency(arch, [luts[n] for n in names], links)


# -- the gradient method's latency model -----------------------------------------------------------------


class TopologyLatency:
    """Completion latency of architectures on a topology, every device's table fetched once from a client.

    The counterpart of ``nas.latency.SplitLatencyModel`` for chains and meshes (``client`` is a
    ``nas.latency_client.LatencyClient``); ``seconds`` is all the time spent on latency.
    """

    def __init__(self, client: Any, *, space: str, topology: Topology) -> None:
        self.space = get_space(space)
        self.topology = topology
        self.client = client
        self.luts = topology_luts(topology, lambda device: client.lut(device, space))
        self.queries = 0
        self._compute_seconds = 0.0

    @property
    def seconds(self) -> float:
        return self.client.seconds + self._compute_seconds

    def completion(self, arch: Architecture) -> CompletionLatency:
        start = time.perf_counter()
        result = completion_latency(arch, self.topology, self.luts)
        self._compute_seconds += time.perf_counter() - start
        self.queries += 1
        return result

    def breakdown(self, arch: Architecture) -> dict[str, Any]:
        """Total and per-device latency of ``arch`` (its splits are the topology's), bytes sent over all links."""
        result = self.completion(arch)
        sent = sum(s.payload_elements * self._bits_after(s.device) // 8 for s in result.segments[:-1])
        return {**result.to_dict(), "payload_bytes": sent,
                "predictors": {name: lut.predictor for name, lut in self.luts.items()}}

    def _bits_after(self, device: str) -> int:
        return next(link.bits for (a, _), link in self.topology.links.items() if a == device)

    def summary(self, arch: Architecture) -> dict[str, Any]:
        """What a search result records about the topology of ``arch``."""
        n = len(self.space.layers)
        return {
            "topology": {
                "name": self.topology.name, "kind": self.topology.kind, "stages": self.topology.describe(),
                "devices": [d.label for d in self.topology.devices],
                "derived_devices": [d.label for d in self.topology.devices if d.derived],
                "links": [{"from": a, "to": b, "bandwidth_mbps": link.bandwidth_mbps, "bits": link.bits}
                          for (a, b), link in self.topology.links.items()],
            },
            "assignment": self.topology.assignment_table(arch.splits, n),
        }
