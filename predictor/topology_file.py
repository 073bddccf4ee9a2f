"""The topology file (YAML) and document (the same content as JSON, ``POST /architectures/latency/multi``).

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from predictor.latency import Link
from predictor.topology import BRANCHES_KEY, DeviceSpec, Stage, Topology, TopologyError

_TOP_KEYS = {"name", "topology", "devices", "links", "chain", "root", "branches", "merge", "assignment"}
_DEVICE_KEYS = {"name", "device", "latency_factor", "description"}
_LINK_KEYS = {"from", "to", "bandwidth_mbps", "bits"}
_BRANCH_KEYS = {"device", "share"}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
        return TopologyError(f"{source}: {where}: {message}", where=where)

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
    given = [float(s) for s in shares if s is not None]
    if not math.isclose(sum(given), 1.0, abs_tol=1e-6):
        raise fail("branches", f"shares must add up to 1, got {sum(given):g}")
    return names, given


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
