"""Differentiable expected completion latency of a topology (DESIGN.md sections 3 and 5.4).

With independent per-layer op distributions p_l, every chain latency term is linear in one layer's
distribution (a layer's compute on its device, the payload after the split, a bottleneck block's front
and back shares), so the expectation is the latency formula evaluated on expected per-layer values:

    E[T | splits] = sum over stages of ( sum over its layers l of sum_i p_li U_m(op_li) + E[eps] )

which is exact for chains. When the split points are searched too, each split point j has its own
categorical q_j over 0..n; the joint distribution is their product restricted to strictly increasing
tuples (renormalized), and E[T] = sum over those tuples of P(k) E[T | k], enumerated exactly.

For a mesh the max over branches is taken of the branches' expected terms: a lower bound of the
expectation (Jensen), exact when the same branch is the slowest for every architecture in the support.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from predictor.latency import DeviceLUT, completion_terms, fixed_terms
from predictor.topology import Topology, TopologyError
from spaces import SearchSpace

MAX_SPLIT_TUPLES = 200_000


def split_tuples(n_layers: int, n_splits: int) -> torch.Tensor:
    """Every strictly increasing tuple of ``n_splits`` split points in 0..n_layers, shape (K, n_splits)."""
    count = math.comb(n_layers + 1, n_splits)
    if count > MAX_SPLIT_TUPLES:
        raise ValueError(
            f"{count} assignments of {n_splits} split points to {n_layers + 1} positions is too many to enumerate "
            f"(limit {MAX_SPLIT_TUPLES}); fix the assignment in the topology file"
        )
    rows = list(itertools.combinations(range(n_layers + 1), n_splits))
    return torch.tensor(rows, dtype=torch.long).reshape(len(rows), n_splits)


def split_tuple_probs(split_logits: torch.Tensor, tuples: torch.Tensor) -> torch.Tensor:
    """P(tuple) proportional to prod_j softmax(split_logits[j])[k_j], over the valid ``tuples`` only."""
    log_q = torch.log_softmax(split_logits, dim=-1)
    score = log_q.gather(1, tuples.T).sum(dim=0)
    return torch.softmax(score, dim=0)


class ExpectedLatency:
    """E[T] of a space on a topology as a differentiable function of the architecture distribution.

    Probabilities come per layer, ordered like ``space.layer(l).block_names``. ``luts`` maps each
    topology device name to its latency table (``predictor.topology.topology_luts``).
    """

    def __init__(self, space: SearchSpace, topology: Topology, luts: Mapping[str, DeviceLUT]) -> None:
        self.space, self.topology = space, topology
        self.n_layers = len(space.layers)
        self.device_names = [d.name for d in topology.devices]
        missing = [n for n in self.device_names if n not in luts]
        if missing:
            raise TopologyError(f"{topology.source}: no latency table for device {missing[0]!r}")
        layer_of, fronts, payloads = [], [], []
        columns: list[tuple[int, str]] = []
        for layer in space.layers:
            for block in layer.blocks:
                op = layer.op(block)
                layer_of.append(layer.index)
                fronts.append(op.front_share)
                payloads.append(op.payload)
                columns.append((layer.index, block.name))
        table = np.empty((len(self.device_names), len(columns)))
        for d, name in enumerate(self.device_names):
            lut = luts[name]
            if lut.space != space.name:
                raise TopologyError(f"latency table of {name!r} describes space {lut.space!r}, not {space.name!r}")
            for c, (layer_index, block_name) in enumerate(columns):
                value = lut.table[layer_index, lut.column(block_name)]
                if math.isnan(value):
                    raise TopologyError(
                        f"latency table of {name!r} has no value for block {block_name!r} at layer {layer_index}; "
                        "use a predictor that fills unmeasured entries"
                    )
                table[d, c] = lut.scale * value
        self.fixed = fixed_terms([luts[name] for name in self.device_names])
        f64 = torch.float64
        self.layer_of = torch.tensor(layer_of, dtype=torch.long)
        self.table = torch.tensor(table, dtype=f64)
        self.front = torch.tensor(fronts, dtype=f64)
        self.payload = torch.tensor(payloads, dtype=f64)
        self.prefix_payload = float(space.prefix[-1].op.payload)
        self._tuples: torch.Tensor | None = None

    @property
    def tuples(self) -> torch.Tensor:
        """All valid split tuples of the topology (enumerated once)."""
        if self._tuples is None:
            self._tuples = split_tuples(self.n_layers, self.topology.n_splits)
        return self._tuples

    def layer_terms(self, probs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Expected per-layer latency u (D, n), its back part ub (D, n) and payload v at split k (n + 1)."""
        if len(probs) != self.n_layers:
            raise ValueError(f"expected {self.n_layers} per-layer distributions, got {len(probs)}")
        p = torch.cat([q.to(torch.float64) for q in probs])
        if p.numel() != self.layer_of.numel():
            raise ValueError("per-layer distributions must cover every candidate block of their layer")
        weighted = p * self.table
        zeros = torch.zeros(len(self.device_names), self.n_layers, dtype=torch.float64)
        u = zeros.index_add(1, self.layer_of, weighted)
        ub = zeros.index_add(1, self.layer_of, weighted * (1.0 - self.front))
        v = torch.zeros(self.n_layers, dtype=torch.float64).index_add(0, self.layer_of, p * self.payload)
        return u, ub, torch.cat([v.new_tensor([self.prefix_payload]), v])

    def latencies(self, probs: Sequence[torch.Tensor], splits: torch.Tensor) -> torch.Tensor:
        """E[T | splits] for each row of ``splits`` (K, n_splits): shape (K,)."""
        u, ub, v = self.layer_terms(probs)
        k_rows = splits.shape[0]
        bounds = torch.cat(
            [splits.new_zeros(k_rows, 1), splits, splits.new_full((k_rows, 1), self.n_layers)], dim=1
        )
        return completion_terms(u[None], ub[None], v[None], bounds, self.topology.layout, self.fixed).total

    def __call__(
        self,
        probs: Sequence[torch.Tensor],
        *,
        splits: Sequence[int] | None = None,
        split_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """E[T] in ms: at fixed ``splits``, or in expectation over the split distribution ``split_logits``."""
        if splits is not None and split_logits is None:
            self.topology.check_splits(list(splits), self.n_layers, where="splits")
            return self.latencies(probs, torch.tensor([list(splits)], dtype=torch.long))[0]
        if splits is not None or split_logits is None:
            raise ValueError("give either fixed splits or split_logits")
        expected_shape = (self.topology.n_splits, self.n_layers + 1)
        if tuple(split_logits.shape) != expected_shape:
            raise ValueError(f"split_logits must have shape {expected_shape}, got {tuple(split_logits.shape)}")
        weights = split_tuple_probs(split_logits.to(torch.float64), self.tuples)
        return (weights * self.latencies(probs, self.tuples)).sum()
