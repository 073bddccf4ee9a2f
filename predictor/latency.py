"""Architecture, split and multi-split latency from per-device lookup tables (DESIGN.md section 3).

A ``DeviceLUT`` holds one device's predicted (or measured) latency for every (layer, block) of a space
and for its fixed layers. Everything here is arithmetic on those tables, shared by the service, the
CLI and the NAS engine, and needs no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from spaces import Architecture, SearchSpace, get_space
from spaces.errors import InvalidArchitectureError


@dataclass(frozen=True)
class Link:
    """A network link: throughput in Mbit/s and bits per transmitted element."""

    bandwidth_mbps: float
    bits: int = 32

    def __post_init__(self) -> None:
        if not (math.isfinite(self.bandwidth_mbps) and self.bandwidth_mbps > 0):
            raise ValueError(f"bandwidth_mbps must be a positive finite number, got {self.bandwidth_mbps}")
        if self.bits not in (8, 16, 32):
            raise ValueError(f"bits must be 8, 16 or 32, got {self.bits}")

    def transfer_ms(self, elements: float | np.ndarray) -> float | np.ndarray:
        """T_comm = q * n / r, in milliseconds."""
        return self.payload_bytes(elements) * 8 / (self.bandwidth_mbps * 1e6) * 1e3

    def payload_bytes(self, elements: float | np.ndarray) -> float | np.ndarray:
        """Bytes that ``elements`` tensor elements take on this link (q / 8 per element)."""
        return elements * self.bits / 8


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
    its ops; every part a device runs adds it once.
    """

    device: str
    space: str
    blocks: tuple[str, ...]
    table: np.ndarray
    fixed: dict[str, float]
    measured: np.ndarray | None = None
    iqr: np.ndarray | None = None
    predictor: str = "lookup"
    scale: float = 1.0
    call_ms: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

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
            "space": self.space,
            "predictor": self.predictor,
            "scale": self.scale,
            "call_ms": self.call_ms,
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

        return cls(
            device=data["device"], space=data["space"], blocks=tuple(data["blocks"]), table=array(data["table"]),
            fixed=dict(data["fixed"]), measured=np.array(data["measured"], dtype=bool),
            iqr=array(data["iqr"]) if data.get("iqr") is not None else None,
            predictor=data.get("predictor", "lookup"), scale=float(data.get("scale", 1.0)),
            call_ms=float(data.get("call_ms", 0.0)), meta=dict(data.get("meta", {})),
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


# -- one device, one split, chains ------------------------------------------------------------------


def layer_latencies(arch: Architecture, lut: DeviceLUT) -> list[float]:
    """Per-layer latency of ``arch`` on ``lut``'s device (uncorrected)."""
    return [lut.layer_ms(i, b) for i, b in enumerate(arch.blocks)]


def architecture_latency(arch: Architecture, lut: DeviceLUT) -> float:
    """Whole-model latency on one device: scale * (prefix + chosen blocks + suffix) + one call."""
    return lut.scale * (lut.prefix_ms + sum(layer_latencies(arch, lut)) + lut.suffix_ms) + lut.call_ms


@dataclass(frozen=True)
class SegmentLatency:
    device: str
    layers: tuple[int, ...]
    compute_ms: float
    payload_elements: int
    comm_ms: float


@dataclass(frozen=True)
class ChainLatency:
    """Latency of an architecture run across a chain of devices (the last segment sends nothing)."""

    segments: tuple[SegmentLatency, ...]
    per_layer_ms: tuple[float, ...]

    @property
    def total_ms(self) -> float:
        return sum(s.compute_ms + s.comm_ms for s in self.segments)

    @property
    def compute_ms(self) -> float:
        return sum(s.compute_ms for s in self.segments)

    @property
    def comm_ms(self) -> float:
        return sum(s.comm_ms for s in self.segments)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_ms": self.total_ms,
            "segments": [s.__dict__ | {"layers": list(s.layers)} for s in self.segments],
            "per_layer_ms": list(self.per_layer_ms),
        }


def chain_latency(arch: Architecture, luts: Sequence[DeviceLUT], links: Sequence[Link]) -> ChainLatency:
    """T = sum over devices m of (compute of its layers + eps[d(m), m]); the last device sends nothing.

    ``arch.splits`` gives the M - 1 split points of M devices. A split right after a bottleneck block
    falls inside it: its front (by FLOPs share) runs before the link, its projection after.
    """
    if len(luts) != len(arch.splits) + 1 or len(links) != len(arch.splits):
        raise ValueError(
            f"{len(arch.splits)} split points need {len(arch.splits) + 1} devices and {len(arch.splits)} links, "
            f"got {len(luts)} devices and {len(links)} links"
        )
    n = len(arch.blocks)
    # layer_ms[m][l]: latency of layer l on device m (corrected by each device's scale)
    on_device = [[lut.scale * v for v in layer_latencies(arch, lut)] for lut in luts]
    fronts = [op.front_share for op in arch.layer_ops]
    bounds = [0, *arch.splits, n]
    segments, per_layer = [], [0.0] * n
    for m, lut in enumerate(luts):
        start, end = bounds[m], bounds[m + 1]
        compute = lut.call_ms
        if m == 0:
            compute += lut.scale * lut.prefix_ms
        if m == len(luts) - 1:
            compute += lut.scale * lut.suffix_ms
        # a bottleneck block just before our start was split inside: we run its back part
        if m > 0 and start > 0 and fronts[start - 1] < 1.0:
            back = (1.0 - fronts[start - 1]) * on_device[m][start - 1]
            compute += back
            per_layer[start - 1] += back
        for layer in range(start, end):
            share = fronts[layer] if (layer == end - 1 and m < len(luts) - 1) else 1.0
            value = share * on_device[m][layer]
            compute += value
            per_layer[layer] += value
        if m < len(luts) - 1:
            payload = arch.payload(end)
            comm = float(links[m].transfer_ms(payload))
        else:
            payload, comm = 0, 0.0
        segments.append(SegmentLatency(lut.device, tuple(range(start, end)), compute, payload, comm))
    return ChainLatency(tuple(segments), tuple(per_layer))


def split_latency(arch: Architecture, head: DeviceLUT, tail: DeviceLUT, link: Link) -> ChainLatency:
    """T = T_head + q * n_h / r + T_tail for ``arch`` with exactly one split point."""
    arch.split  # noqa: B018  (raises unless there is exactly one split point)
    return chain_latency(arch, [head, tail], [link])


def mesh_latency(
    chain: ChainLatency, root_compute_ms: float, root_comm_ms: float, branches: Sequence[tuple[float, float]]
) -> float:
    """Completion latency of a mesh (DESIGN.md section 3).

    The chain part C runs first (its total, ``chain.total_ms``); a root device then broadcasts its
    output to parallel devices, each running a branch and sending its result to the merging device:
    T = T_C + max over branches m of (compute_r + eps_r + compute_m + eps_m).
    """
    if not branches:
        raise ValueError("a mesh needs at least one parallel branch")
    return chain.total_ms + max(root_compute_ms + root_comm_ms + c + e for c, e in branches)


# -- vectorized split latency for many architectures -------------------------------------------------


def batch_architecture_latency(indices: np.ndarray, lut: DeviceLUT) -> np.ndarray:
    """Whole-model latency of N architectures at once (``indices``: (N, n_layers) columns into ``lut.blocks``)."""
    layers = lut.table[np.arange(indices.shape[1])[None, :], indices].sum(axis=1)
    return lut.scale * (lut.prefix_ms + layers + lut.suffix_ms) + lut.call_ms


def batch_split_latency(
    indices: np.ndarray, splits: np.ndarray, head: DeviceLUT, tail: DeviceLUT, link: Link
) -> dict[str, np.ndarray]:
    """Split latency of N architectures at once.

    Args:
        indices: (N, n_layers) block column indices into ``head.blocks`` (the same columns in ``tail``).
        splits: (N,) split points.
    Returns arrays ``total_ms``, ``head_ms``, ``comm_ms``, ``tail_ms``, ``payload_elements``.
    """
    if head.blocks != tail.blocks or head.space != tail.space:
        raise ValueError("head and tail tables must describe the same space and block columns")
    n, layers = indices.shape
    rows = np.arange(layers)[None, :]
    head_layers = head.table[rows, indices]
    tail_layers = tail.table[rows, indices]
    if np.isnan(head_layers).any() or np.isnan(tail_layers).any():
        bad = int(np.argwhere(np.isnan(head_layers) | np.isnan(tail_layers))[0, 0])
        raise InvalidArchitectureError(f"architecture {bad} uses a block that is not a candidate at its layer")
    payload_table, front_table, prefix_payload = space_tables(head.space, head.blocks)
    fronts = front_table[rows, indices]
    position = np.arange(layers)[None, :]
    before = position < (splits[:, None] - 1)
    at = position == (splits[:, None] - 1)
    after = position >= splits[:, None]
    head_ms = head.scale * (head.prefix_ms + (head_layers * (before + at * fronts)).sum(axis=1)) + head.call_ms
    tail_ms = tail.scale * (tail.suffix_ms + (tail_layers * (after + at * (1 - fronts))).sum(axis=1)) + tail.call_ms
    last = np.clip(splits - 1, 0, layers - 1)
    payload = np.where(splits == 0, prefix_payload, payload_table[last, indices[np.arange(n), last]])
    comm_ms = link.transfer_ms(payload)
    return {
        "total_ms": head_ms + comm_ms + tail_ms,
        "head_ms": head_ms,
        "comm_ms": comm_ms,
        "tail_ms": tail_ms,
        "payload_elements": payload,
    }
