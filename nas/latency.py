"""The latency side of a search: one interface, for a head-tail split and for a chain or mesh of devices.

Both models fetch each device's table once per search (revalidated by ETag when the client is shared)
and compute every latency locally with ``predictor.latency``; ``seconds`` is all the time spent on
latency since the model was made, table fetches included, and ``queries`` counts architectures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nas.latency_client import LatencyClient
from predictor.latency import DeviceLUT, Link, batch_architecture_latency, batch_split_latency, split_latency
from predictor.topology import CompletionLatency, Topology, completion_latency, topology_luts
from spaces import Architecture, SearchSpace, get_space
from spaces.codecs import Codec


@runtime_checkable
class LatencyModel(Protocol):
    """What a search asks of its latency model."""

    space: SearchSpace
    queries: int

    @property
    def seconds(self) -> float: ...

    @property
    def codecs(self) -> tuple[Codec, ...]:
        """The payload codec of every cut, in order: what the links send."""
        ...

    def breakdown(self, arch: Architecture) -> dict[str, Any]:
        """Total latency of ``arch`` and where it goes, as a search job records it."""
        ...


class _TimedTables:
    """Tables from a ``LatencyClient`` (revalidated once per model) and the time spent on latency."""

    def __init__(self, client: LatencyClient, space: str) -> None:
        self.space = get_space(space)
        self.client = client
        self._client_start = client.seconds  # a shared client may have served earlier searches
        self._compute_seconds = 0.0
        self.queries = 0

    def _table(self, device: str) -> DeviceLUT:
        # a client shared by several searches revalidates its tables once per search (304 when unchanged)
        return self.client.lut(device, self.space.name, revalidate=True)

    def __getstate__(self) -> dict[str, Any]:
        # a copy in another process (a Ray Tune trial) computes with the fetched tables alone; the
        # client and its connections stay with the search
        return {**self.__dict__, "client": None}

    @property
    def seconds(self) -> float:
        return self.client.seconds - self._client_start + self._compute_seconds

    @contextmanager
    def _timed(self, count: int) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self._compute_seconds += time.perf_counter() - start
        self.queries += count


class SplitLatencyModel(_TimedTables):
    """T = T_head + q * n_h / r + T_tail (DESIGN.md section 3) for a head device, a tail device and a link.

    Architectures are given as per-layer block indices (into each layer's candidate blocks) and split
    points, many at a time.
    """

    def __init__(self, client: LatencyClient, *, space: str, head_device: str, tail_device: str, link: Link) -> None:
        super().__init__(client, space)
        self.link = link
        self.head = self._table(head_device)
        self.tail = self._table(tail_device)
        width = max(len(layer.blocks) for layer in self.space.layers)
        self.columns = np.zeros((len(self.space.layers), width), dtype=np.intp)
        for layer in self.space.layers:
            self.columns[layer.index, : len(layer.blocks)] = [self.head.column(b.name) for b in layer.blocks]

    @property
    def codecs(self) -> tuple[Codec, ...]:
        return (self.link.encoding,)

    def _lut_columns(self, blocks: np.ndarray) -> np.ndarray:
        blocks = np.atleast_2d(np.asarray(blocks, dtype=np.intp))
        return self.columns[np.arange(blocks.shape[1])[None, :], blocks]

    def split(self, blocks: np.ndarray, splits: np.ndarray) -> dict[str, np.ndarray]:
        """Arrays ``total_ms``, ``head_ms``, ``comm_ms``, ``tail_ms``, ``payload_elements`` for N architectures."""
        columns = self._lut_columns(blocks)
        with self._timed(len(columns)):
            return batch_split_latency(columns, np.atleast_1d(np.asarray(splits)), self.head, self.tail, self.link)

    def whole(self, blocks: np.ndarray, *, on: str = "head") -> np.ndarray:
        """Whole-model latency of N architectures on one device (the HWNAS view: no split)."""
        columns = self._lut_columns(blocks)
        with self._timed(len(columns)):
            return batch_architecture_latency(columns, self.head if on == "head" else self.tail)

    def breakdown(self, arch: Architecture) -> dict[str, Any]:
        """Head, link and tail latency of ``arch`` (one split point) with its payload."""
        with self._timed(1):
            chain = split_latency(arch, self.head, self.tail, self.link)
        head, tail = chain.segments
        return {
            "total_ms": chain.total_ms,
            "head_ms": head.compute_ms,
            "comm_ms": head.comm_ms,
            "tail_ms": tail.compute_ms,
            "payload_elements": head.payload_elements,
            "payload_bytes": head.payload_bytes,
            "head_device": self.head.device,
            "tail_device": self.tail.device,
            "predictors": {"head": self.head.predictor, "tail": self.tail.predictor},
        }


class TopologyLatency(_TimedTables):
    """Completion latency of architectures on a chain or mesh topology (the gradient method's latency model)."""

    def __init__(self, client: LatencyClient, *, space: str, topology: Topology) -> None:
        super().__init__(client, space)
        self.topology = topology
        self.luts = topology_luts(topology, self._table)

    @property
    def codecs(self) -> tuple[Codec, ...]:
        """The codec of the link across each cut (a mesh's broadcast and merge: the first branch's links)."""
        stages = self.topology.stages
        return tuple(self.topology.link(a.devices[0], b.devices[0]).encoding
                     for a, b in zip(stages, stages[1:], strict=False))

    def completion(self, arch: Architecture) -> CompletionLatency:
        with self._timed(1):
            return completion_latency(arch, self.topology, self.luts)

    def breakdown(self, arch: Architecture) -> dict[str, Any]:
        """Total and per-device latency of ``arch`` (its splits are the topology's), bytes sent over all links."""
        return {**self.completion(arch).to_dict(),
                "predictors": {name: lut.predictor for name, lut in self.luts.items()}}

    def summary(self, arch: Architecture) -> dict[str, Any]:
        """What a search result records about the topology of ``arch``."""
        n = len(self.space.layers)
        return {
            "topology": {
                "name": self.topology.name, "kind": self.topology.kind, "stages": self.topology.describe(),
                "devices": [d.label for d in self.topology.devices],
                "derived_devices": [d.label for d in self.topology.devices if d.derived],
                "links": [{"from": a, "to": b, "bandwidth_mbps": link.bandwidth_mbps, "bits": link.bits,
                           "codec": link.codec}
                          for (a, b), link in self.topology.links.items()],
            },
            "assignment": self.topology.assignment_table(arch.splits, n),
        }
