"""The latency side of a search: split latency of sampled architectures for one scenario."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from nas.latency_client import LatencyClient
from predictor.latency import Link, batch_architecture_latency, batch_split_latency, split_latency
from spaces import Architecture, get_space


class SplitLatencyModel:
    """T = T_head + q * n_h / r + T_tail (DESIGN.md section 3) for a head device, a tail device and a link.

    Architectures are given as per-layer block indices (into each layer's candidate blocks) and split
    points, many at a time. ``seconds`` is all the time spent on latency, table fetches included.
    """

    def __init__(self, client: LatencyClient, *, space: str, head_device: str, tail_device: str, link: Link) -> None:
        self.space = get_space(space)
        self.link = link
        self._client_start = client.seconds  # a shared client may have served earlier searches
        # a client shared by several searches revalidates its tables once per search (304 when unchanged)
        self.head = client.lut(head_device, space, revalidate=True)
        self.tail = client.lut(tail_device, space, revalidate=True)
        self.client = client
        width = max(len(layer.blocks) for layer in self.space.layers)
        self.columns = np.zeros((len(self.space.layers), width), dtype=np.intp)
        for layer in self.space.layers:
            self.columns[layer.index, : len(layer.blocks)] = [self.head.column(b.name) for b in layer.blocks]
        self._compute_seconds = 0.0
        self.queries = 0

    @property
    def seconds(self) -> float:
        return self.client.seconds - self._client_start + self._compute_seconds

    def _lut_columns(self, blocks: np.ndarray) -> np.ndarray:
        blocks = np.atleast_2d(np.asarray(blocks, dtype=np.intp))
        return self.columns[np.arange(blocks.shape[1])[None, :], blocks]

    def split(self, blocks: np.ndarray, splits: np.ndarray) -> dict[str, np.ndarray]:
        """Arrays ``total_ms``, ``head_ms``, ``comm_ms``, ``tail_ms``, ``payload_elements`` for N architectures."""
        start = time.perf_counter()
        columns = self._lut_columns(blocks)
        out = batch_split_latency(columns, np.atleast_1d(np.asarray(splits)), self.head, self.tail, self.link)
        self._compute_seconds += time.perf_counter() - start
        self.queries += len(columns)
        return out

    def whole(self, blocks: np.ndarray, *, on: str = "head") -> np.ndarray:
        """Whole-model latency of N architectures on one device (the HWNAS view: no split)."""
        start = time.perf_counter()
        lut = self.head if on == "head" else self.tail
        columns = self._lut_columns(blocks)
        out = batch_architecture_latency(columns, lut)
        self._compute_seconds += time.perf_counter() - start
        self.queries += len(columns)
        return out

    def breakdown(self, arch: Architecture) -> dict[str, Any]:
        """Head, link and tail latency of ``arch`` (one split point) with its payload."""
        start = time.perf_counter()
        chain = split_latency(arch, self.head, self.tail, self.link)
        self._compute_seconds += time.perf_counter() - start
        self.queries += 1
        head, tail = chain.segments
        return {
            "total_ms": chain.total_ms,
            "head_ms": head.compute_ms,
            "comm_ms": head.comm_ms,
            "tail_ms": tail.compute_ms,
            "payload_elements": head.payload_elements,
            "payload_bytes": head.payload_elements * self.link.bits // 8,
            "head_device": self.head.device,
            "tail_device": self.tail.device,
            "predictors": {"head": self.head.predictor, "tail": self.tail.predictor},
        }
