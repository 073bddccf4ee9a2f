"""Architecture, split and multi-split latency from per-device lookup tables (DESIGN.md section 3).

A ``DeviceLUT`` holds one device's predicted (or measured) latency for every (layer, block) of a space
and for its fixed layers. Everything here is arithmetic on those tables, shared by the service, the
CLI and the NAS engine, and needs no torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple, cast, overload

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from db.records import DEFAULT_RUNTIME
from predictor.correction import Wait
from spaces import Architecture, SearchSpace, get_space
from spaces.codecs import DEFAULT_CODECS, Codec, get_codec
from spaces.errors import InvalidArchitectureError

# below one bit per second a link's transfer time is no longer a finite number of milliseconds
MIN_BANDWIDTH_MBPS = 1e-6


@dataclass(frozen=True)
class Link:
    """A network link: throughput in Mbit/s, bits per transmitted element and the payload codec sending them.

    ``codec`` defaults to the bits' codec (``spaces.codecs.DEFAULT_CODECS``: float32, float16, int8);
    ``int16`` is the other 16-bit one.
    """

    bandwidth_mbps: float
    bits: int = 32
    codec: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.bandwidth_mbps) and self.bandwidth_mbps >= MIN_BANDWIDTH_MBPS):
            raise ValueError(
                f"bandwidth_mbps must be a finite number of at least {MIN_BANDWIDTH_MBPS:g} (1 bit/s), "
                f"got {self.bandwidth_mbps}"
            )
        if self.bits not in (8, 16, 32):
            raise ValueError(f"bits must be 8, 16 or 32, got {self.bits}")
        if self.codec is None:
            object.__setattr__(self, "codec", DEFAULT_CODECS[self.bits])
        elif self.encoding.bits != self.bits:
            raise ValueError(f"codec {self.codec!r} sends {self.encoding.bits} bits per element, not {self.bits}")

    @property
    def encoding(self) -> Codec:
        """The payload codec (``spaces.codecs``): what the link really sends."""
        return get_codec(self.codec or self.bits)

    def transfer_ms(self, elements: float | np.ndarray) -> float | np.ndarray:
        """T_comm = q * n / r, in milliseconds."""
        return self.payload_bytes(elements) * 8 / (self.bandwidth_mbps * 1e6) * 1e3

    @overload
    def payload_bytes(self, elements: float) -> float: ...
    @overload
    def payload_bytes(self, elements: np.ndarray) -> np.ndarray: ...
    def payload_bytes(self, elements: float | np.ndarray) -> float | np.ndarray:
        """Bytes that ``elements`` tensor elements take on this link: q / 8 per element plus the codec's header."""
        return self.encoding.payload_bytes(elements)  # type: ignore[no-any-return]


@dataclass
class DeviceLUT:
    """Latency in ms of every (layer, block) of ``space`` and of its fixed layers on one device.

    ``table[l, b]`` is NaN where block ``blocks[b]`` is not a candidate at layer ``l``. ``measured``
    marks entries that are measurements rather than predictions, ``iqr`` their spread (NaN where
    predicted). ``scale`` is the model-level correction
    (measured whole models / summed blocks) applied to every compute segment. An entry may also hold
    the time to stream the op's weights inside a network, divided by ``scale`` (predictor.correction,
    recorded in ``meta["correction"]``): ``scale * table`` is always the op's latency inside a network.
    ``call_ms`` is what one call of a network (a whole model, or one part of a split one) costs besides
    its ops; every part a device runs adds it once. A part whose input comes over a link (every part of a
    split network but the first) ran idle until the input arrived, which makes it ``wait_share`` of its
    latency and ``wait_ms`` slower (``predictor.correction.Wait``); the first part and a whole model run on
    input made on the device and do not wait.
    """

    device: str
    space: str
    blocks: tuple[str, ...]
    table: np.ndarray
    fixed: dict[str, float]
    # left out, they default to "nothing measured" and "no spread"; __post_init__ fills them, so never None after
    measured: np.ndarray = cast(np.ndarray, None)
    iqr: np.ndarray = cast(np.ndarray, None)
    predictor: str = "lookup"
    scale: float = 1.0
    call_ms: float = 0.0
    wait_ms: float = 0.0
    wait_share: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    runtime: str = DEFAULT_RUNTIME  # what ran the networks the table was measured (and predicted) for

    def __post_init__(self) -> None:
        space = get_space(self.space)
        self.table = np.asarray(self.table, dtype=float)
        expected = (len(space.layers), len(self.blocks))
        if self.table.shape != expected:
            raise ValueError(f"LUT for {self.space!r} must have shape {expected}, got {self.table.shape}")
        if self.measured is None:
            self.measured = np.zeros(self.table.shape, dtype=bool)
        self.iqr = np.full(self.table.shape, np.nan) if self.iqr is None else np.asarray(self.iqr, dtype=float)
        missing = [f.name for f in space.fixed_layers if f.name not in self.fixed]
        if missing:
            raise ValueError(f"LUT for {self.space!r} lacks fixed layers {missing}")
        self._column = {name: i for i, name in enumerate(self.blocks)}

    @property
    def wait(self) -> Wait:
        """What a part on this device adds when its input came over a link."""
        return Wait(self.wait_ms, self.wait_share)

    @property
    def search_space(self) -> SearchSpace:
        return get_space(self.space)

    def column(self, block: str) -> int:
        try:
            return self._column[block]
        except KeyError:
            raise InvalidArchitectureError(
                f"block {block!r} is not in the {self.device!r} table; allowed: {', '.join(self.blocks)}"
            ) from None

    def layer_ms(self, layer: int, block: str) -> float:
        value = float(self.table[layer, self.column(block)])
        if math.isnan(value):
            raise InvalidArchitectureError(f"block {block!r} is not a candidate at layer {layer} of {self.space!r}")
        return value

    @property
    def prefix_ms(self) -> float:
        return sum(self.fixed[f.name] for f in self.search_space.prefix)

    @property
    def suffix_ms(self) -> float:
        return sum(self.fixed[f.name] for f in self.search_space.suffix)

    def indices(self, arch: Architecture) -> np.ndarray:
        return np.fromiter((self.column(b) for b in arch.blocks), dtype=np.intp, count=len(arch.blocks))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN becomes None), as served by ``GET /lut``."""
        return {
            "device": self.device,
            "runtime": self.runtime,
            "space": self.space,
            "predictor": self.predictor,
            "scale": self.scale,
            "call_ms": self.call_ms,
            "wait_ms": self.wait_ms,
            "wait_share": self.wait_share,
            "blocks": list(self.blocks),
            "table": [[None if math.isnan(v) else v for v in row] for row in self.table.tolist()],
            "measured": self.measured.tolist(),
            "iqr": [[None if math.isnan(v) else v for v in row] for row in self.iqr.tolist()],
            "fixed": dict(self.fixed),
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceLUT:
        def array(rows: list[list[float | None]]) -> np.ndarray:
            return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)

        table = array(data["table"])
        return cls(
            device=data["device"], space=data["space"], blocks=tuple(data["blocks"]), table=table,
            fixed=dict(data["fixed"]), measured=np.array(data["measured"], dtype=bool),
            iqr=array(data["iqr"]) if data.get("iqr") is not None else np.full(table.shape, np.nan),
            predictor=data.get("predictor", "lookup"), scale=float(data.get("scale", 1.0)),
            call_ms=float(data.get("call_ms", 0.0)), wait_ms=float(data.get("wait_ms", 0.0)),
            wait_share=float(data.get("wait_share", 0.0)),
            meta=dict(data.get("meta", {})),
            runtime=data.get("runtime", DEFAULT_RUNTIME),
        )


# -- analytic helpers --------------------------------------------------------------------------------


@cache
def space_tables(space_name: str, blocks: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, int]:
    """(payload elements, front fraction) per (layer, block column), and the prefix payload."""
    space = get_space(space_name)
    payload = np.zeros((len(space.layers), len(blocks)))
    front = np.ones((len(space.layers), len(blocks)))
    for layer in space.layers:
        for block in layer.blocks:
            op = layer.op(block)
            b = blocks.index(block.name)
            payload[layer.index, b] = op.payload
            front[layer.index, b] = op.front_share
    return payload, front, space.prefix[-1].op.payload


# -- the completion latency formula (DESIGN.md section 3), written once ------------------------------


@dataclass(frozen=True)
class Stage:
    """Devices that run one contiguous layer range: one device, or parallel branches with work shares."""

    devices: tuple[str, ...]
    shares: tuple[float, ...] = (1.0,)
    parallel: bool = False


@dataclass(frozen=True)
class Layout:
    """Where a split network runs: its stages in order, the links between consecutive stages' devices, and
    which row of the per-device terms each device's latencies are in."""

    stages: tuple[Stage, ...]
    links: Mapping[tuple[str, str], Link]
    rows: Mapping[str, int]

    @property
    def parallel_stage(self) -> int | None:
        """Index of a mesh's branches' stage (the root is the stage before it, the merge device the one after)."""
        return next((i for i, s in enumerate(self.stages) if s.parallel), None)


class PartTerms(NamedTuple):
    """What a device's part costs besides its layers: prefix and suffix (scale applied), call, wait for a link."""

    prefix_ms: float
    suffix_ms: float
    call_ms: float
    wait: Wait = Wait()


@dataclass(frozen=True)
class CompletionTerms:
    """The completion latency of R rows (architectures, or split tuples) and its terms, arrays of shape (R,).

    ``compute`` is every device's part (a branch: its share of the range), ``sent`` and ``comm`` the
    elements and transfer time of every link used, ``branches`` each branch's term of a mesh (root compute
    + broadcast + branch compute + its send).
    """

    total: Any
    compute: Mapping[str, Any]
    sent: Mapping[tuple[str, str], Any]
    comm: Mapping[tuple[str, str], Any]
    branches: Mapping[str, Any]


def completion_terms(u: Any, ub: Any, v: Any, bounds: Any, layout: Layout,
                     fixed: Sequence[PartTerms]) -> CompletionTerms:
    """Chain and mesh completion latency (DESIGN.md section 3) over numpy or torch arrays.

    Device m's part runs its layers a..e-1, less the back part of layer e-1 when a split follows it and
    plus the back part of layer a-1 when one precedes it (a split right after a bottleneck block falls
    inside it), plus one call and, first or last, the fixed prefix or suffix; every part but the first waited
    for its input on a link, and that sum becomes ``Wait.apply`` of it. A chain is the sum of every
    part and every link's ``Link.transfer_ms``. A mesh is its chain part, then the slowest branch term
    (root part + broadcast of the root's output to that branch + the branch's share of its range + sending
    that share of its output), then the merge device's part, which starts once the merged tensor is complete.

    Args:
        u: (B, D, n) latency of each layer on each device (row ``layout.rows[device]``), scale applied.
        ub: (B, D, n) the part of ``u`` that runs after a split right after the layer (0 but for bottlenecks).
        v: (B, n + 1) elements sent at split point k (k = 0: the prefix's output).
        bounds: (R, S + 1) integer stage boundaries 0, k_1, ..., k_{S-1}, n; B is 1 or R.
        fixed: per device row, its ``PartTerms`` (``fixed_terms``).
    """
    xp = array_namespace(u, ub, v, bounds)
    batch, rows_count = u.shape[0], u.shape[1]
    zero = xp.zeros((batch, rows_count, 1), dtype=u.dtype, device=device_of(u))
    cum = xp.concat([zero, xp.cumulative_sum(u, axis=-1)], axis=-1)  # cum[., d, k]: layers before k
    back = xp.concat([zero, ub], axis=-1)  # back[., d, k]: the back part of layer k - 1
    row = xp.arange(batch, device=device_of(u)) if batch > 1 else 0
    stages, last = layout.stages, len(layout.stages) - 1
    compute: dict[str, Any] = {}
    sent: dict[tuple[str, str], Any] = {}
    comm: dict[tuple[str, str], Any] = {}

    def part(s: int, name: str, share: float) -> Any:
        d = layout.rows[name]
        a, e = bounds[:, s], bounds[:, s + 1]
        value = cum[row, d, e] - cum[row, d, a]
        if s < last:
            value = value - back[row, d, e]
        if s > 0:
            value = value + back[row, d, a]
        terms = fixed[d]
        value = share * value + terms.call_ms
        if s == 0:
            value = value + terms.prefix_ms
        if s == last:
            value = value + terms.suffix_ms
        if s > 0:  # a part fed by a link idled until its input arrived
            value = terms.wait.apply(value)
        compute[name] = value
        return value

    def send(s: int, source: str, target: str, share: float) -> Any:
        elements = share * v[row, bounds[:, s + 1]]
        sent[(source, target)] = elements
        comm[(source, target)] = layout.links[(source, target)].transfer_ms(elements)
        return comm[(source, target)]

    p = layout.parallel_stage
    total = 0.0
    for s, stage in enumerate(stages):
        if p is not None and s in (p - 1, p):
            continue
        name = stage.devices[0]
        total = total + part(s, name, 1.0)
        if s < last:
            total = total + send(s, name, stages[s + 1].devices[0], 1.0)
    branches: dict[str, Any] = {}
    if p is not None:
        root, merge = stages[p - 1].devices[0], stages[p + 1].devices[0]
        root_ms = part(p - 1, root, 1.0)
        for name, share in zip(stages[p].devices, stages[p].shares, strict=True):
            branches[name] = (root_ms + send(p - 1, root, name, 1.0) + part(p, name, share)
                              + send(p, name, merge, share))
        total = total + xp.max(xp.stack(list(branches.values())), axis=0)
    return CompletionTerms(total, compute, sent, comm, branches)


def fixed_terms(luts: Sequence[DeviceLUT]) -> list[PartTerms]:
    """Each table's ``PartTerms``: ``completion_terms``' ``fixed``."""
    return [PartTerms(lut.scale * lut.prefix_ms, lut.scale * lut.suffix_ms, lut.call_ms, lut.wait) for lut in luts]


def lut_terms(columns: np.ndarray, luts: Sequence[DeviceLUT]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``completion_terms``' u, ub and v of N architectures (``columns``: (N, n) indices into the tables' blocks)."""
    first = luts[0]
    if any(lut.blocks != first.blocks or lut.space != first.space for lut in luts):
        raise ValueError("every table must describe the same space and block columns")
    rows = np.arange(columns.shape[1])[None, :]
    u = np.stack([lut.scale * lut.table[rows, columns] for lut in luts], axis=1)
    if np.isnan(u).any():
        bad = int(np.argwhere(np.isnan(u))[0, 0])
        raise InvalidArchitectureError(f"architecture {bad} uses a block that is not a candidate at its layer")
    payload, front, prefix_payload = space_tables(first.space, first.blocks)
    ub = u * (1.0 - front[rows, columns])[:, None, :]
    v = np.concatenate([np.full((len(columns), 1), float(prefix_payload)), payload[rows, columns]], axis=1)
    return u, ub, v


# -- one architecture: whole, split, chains and meshes ------------------------------------------------


def layer_latencies(arch: Architecture, lut: DeviceLUT) -> list[float]:
    """Per-layer latency of ``arch`` on ``lut``'s device (uncorrected)."""
    return [lut.layer_ms(i, b) for i, b in enumerate(arch.blocks)]


def architecture_latency(arch: Architecture, lut: DeviceLUT) -> float:
    """Whole-model latency on one device: scale * (prefix + chosen blocks + suffix) + one call."""
    return lut.scale * (lut.prefix_ms + sum(layer_latencies(arch, lut)) + lut.suffix_ms) + lut.call_ms


@dataclass(frozen=True)
class SegmentLatency:
    """One device's part of a split network: its layers, compute, and what it sends on (nothing, last)."""

    device: str
    layers: tuple[int, ...]
    compute_ms: float
    payload_elements: int
    comm_ms: float
    payload_bytes: float = 0.0


@dataclass(frozen=True)
class CompletionLatency:
    """Completion latency of a split architecture on a chain or mesh of devices, and where it goes.

    ``segments`` follow the critical path (for a mesh: through its slowest branch); ``branch_ms`` holds
    every branch's term of a mesh; ``per_layer_ms`` each layer's compute on the path (a bottleneck split
    inside: both its parts); ``payload_bytes`` is what all the path's links carry.
    """

    total_ms: float
    segments: tuple[SegmentLatency, ...]
    per_layer_ms: tuple[float, ...]
    branch_ms: Mapping[str, float] = field(default_factory=dict)

    @property
    def critical_branch(self) -> str | None:
        return max(self.branch_ms, key=self.branch_ms.__getitem__) if self.branch_ms else None

    @property
    def compute_ms(self) -> float:
        return sum(s.compute_ms for s in self.segments)

    @property
    def comm_ms(self) -> float:
        return sum(s.comm_ms for s in self.segments)

    @property
    def payload_bytes(self) -> float:
        return sum(s.payload_bytes for s in self.segments)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: what the service, the CLI and a search job report."""
        return {
            "total_ms": self.total_ms,
            "segments": [s.__dict__ | {"layers": list(s.layers)} for s in self.segments],
            "branch_ms": dict(self.branch_ms),
            "critical_branch": self.critical_branch,
            "payload_bytes": self.payload_bytes,
        }


def layout_latency(arch: Architecture, layout: Layout, luts: Sequence[DeviceLUT]) -> CompletionLatency:
    """``completion_terms`` of one architecture, with its segments along the critical path.

    ``luts[layout.rows[name]]`` is device ``name``'s table; ``arch.splits`` are the stage boundaries.
    """
    for lut in luts:
        layer_latencies(arch, lut)  # names the block and layer a table cannot answer
    columns = luts[0].indices(arch)[None, :]
    u, ub, v = lut_terms(columns, luts)
    n = len(arch.blocks)
    bounds = np.array([[0, *arch.splits, n]], dtype=np.intp)
    terms = completion_terms(u, ub, v, bounds, layout, fixed_terms(luts))
    branch_ms = {name: float(value[0]) for name, value in terms.branches.items()}
    p = layout.parallel_stage
    path = [s.devices[0] for s in layout.stages]
    if p is not None:
        path[p] = max(branch_ms, key=branch_ms.__getitem__)
    segments, per_layer = [], np.zeros(n)
    for s, name in enumerate(path):
        a, e = int(bounds[0, s]), int(bounds[0, s + 1])
        d = layout.rows[name]
        share = layout.stages[s].shares[layout.stages[s].devices.index(name)]
        on = u[0, d].copy()
        if s < len(path) - 1:
            on[e - 1 : e] -= ub[0, d, e - 1 : e]
        per_layer[a:e] += share * on[a:e]
        if s > 0 and a > 0:
            per_layer[a - 1] += share * ub[0, d, a - 1]
        link = (name, path[s + 1]) if s < len(path) - 1 else None
        elements = round(float(terms.sent[link][0])) if link else 0  # a branch sends a share: whole elements
        segments.append(SegmentLatency(
            luts[d].device, tuple(range(a, e)), float(terms.compute[name][0]), elements,
            float(terms.comm[link][0]) if link else 0.0,
            float(layout.links[link].payload_bytes(elements)) if link else 0.0,
        ))
    return CompletionLatency(float(terms.total[0]), tuple(segments), tuple(per_layer.tolist()), branch_ms)


def chain_layout(n_devices: int, links: Sequence[Link]) -> Layout:
    """A chain of ``n_devices`` devices (named by position, one row each) joined by ``links`` in order."""
    if len(links) != n_devices - 1:
        raise ValueError(f"{n_devices} devices need {n_devices - 1} links, got {len(links)}")
    names = [str(m) for m in range(n_devices)]
    pairs = list(zip(names, names[1:], strict=False))
    return Layout(tuple(Stage((name,)) for name in names), dict(zip(pairs, links, strict=True)),
                  {name: m for m, name in enumerate(names)})


def chain_latency(arch: Architecture, luts: Sequence[DeviceLUT], links: Sequence[Link]) -> CompletionLatency:
    """T = sum over devices m of (compute of its layers + eps[d(m), m]); the last device sends nothing.

    ``arch.splits`` gives the M - 1 split points of M devices.
    """
    if len(luts) != len(arch.splits) + 1 or len(links) != len(arch.splits):
        raise ValueError(
            f"{len(arch.splits)} split points need {len(arch.splits) + 1} devices and {len(arch.splits)} links, "
            f"got {len(luts)} devices and {len(links)} links"
        )
    return layout_latency(arch, chain_layout(len(luts), links), luts)


def split_latency(arch: Architecture, head: DeviceLUT, tail: DeviceLUT, link: Link) -> CompletionLatency:
    """T = T_head + q * n_h / r + T_tail for ``arch`` with exactly one split point."""
    arch.split  # noqa: B018  (raises unless there is exactly one split point)
    return chain_latency(arch, [head, tail], [link])


# -- many architectures at once -----------------------------------------------------------------------


def batch_architecture_latency(indices: np.ndarray, lut: DeviceLUT) -> np.ndarray:
    """Whole-model latency of N architectures at once (``indices``: (N, n_layers) columns into ``lut.blocks``)."""
    layers = lut.table[np.arange(indices.shape[1])[None, :], indices].sum(axis=1)
    return lut.scale * (lut.prefix_ms + layers + lut.suffix_ms) + lut.call_ms


def batch_split_latency(
    indices: np.ndarray, splits: np.ndarray, head: DeviceLUT, tail: DeviceLUT, link: Link
) -> dict[str, np.ndarray]:
    """Split latency of N architectures at once (``completion_terms`` of a two-device chain).

    Args:
        indices: (N, n_layers) block column indices into ``head.blocks`` (the same columns in ``tail``).
        splits: (N,) split points.
    Returns arrays ``total_ms``, ``head_ms``, ``comm_ms``, ``tail_ms``, ``payload_elements``.
    """
    if head.blocks != tail.blocks or head.space != tail.space:
        raise ValueError("head and tail tables must describe the same space and block columns")
    u, ub, v = lut_terms(indices, [head, tail])
    splits = np.asarray(splits, dtype=np.intp)
    bounds = np.stack([np.zeros_like(splits), splits, np.full_like(splits, indices.shape[1])], axis=1)
    terms = completion_terms(u, ub, v, bounds, chain_layout(2, [link]), fixed_terms([head, tail]))
    return {
        "total_ms": terms.total,
        "head_ms": terms.compute["0"],
        "comm_ms": terms.comm[("0", "1")],
        "tail_ms": terms.compute["1"],
        "payload_elements": terms.sent[("0", "1")],
    }
