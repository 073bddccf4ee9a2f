"""Binary gates (ProxylessNAS, DESIGN.md section 5.4): architecture parameters, sampled paths, the gate gradient.

Layer l holds real-valued parameters alpha_l with p_l = softmax(alpha_l). A weight step samples one
path per layer from p_l, so only that op runs. An architecture step samples two distinct candidates per
layer, runs both, and mixes them with binary gates g (one of the two, drawn by their renormalized
probabilities, is 1): the output is g_a * out_a + g_b * out_b, so autograd gives
dL/dg_j = sum(out_j * dL/d out) and the gate gradient over the two is

    dL/dalpha_i = sum_j dL/dg_j * p_j * (delta_ij - p_i)      (p renormalized over the two)

After the optimizer step the two alphas are shifted by a common offset so that the sum of their
exponentials is what it was: the unsampled ops keep their probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import torch
from torch import nn

from nas.supernet import Supernet
from spaces.codecs import Codec, quantize_ste


def gate_gradient(alpha: torch.Tensor, gate_grad: torch.Tensor) -> torch.Tensor:
    """dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i), p = softmax(alpha), for the active candidates."""
    p = torch.softmax(alpha.detach(), dim=0)
    weighted = gate_grad * p
    return weighted - p * weighted.sum()


def rescale(alpha: torch.Tensor, active: Sequence[int], before: torch.Tensor) -> None:
    """Shift ``alpha[active]`` so that their exponentials sum to what they did ``before`` the update."""
    index = torch.as_tensor(list(active), dtype=torch.long, device=alpha.device)
    with torch.no_grad():
        offset = torch.logsumexp(alpha[index], 0) - torch.logsumexp(before, 0)
        alpha[index] -= offset


class ArchitectureParameters(nn.Module):
    """alpha per layer (``categories[l]`` candidates each) and, when the splits are searched, split logits.

    ``split_shape`` is (number of split points, number of positions); the split distribution is used by
    ``nas.expected_latency.ExpectedLatency`` and gets its gradient from the latency term only.
    """

    def __init__(
        self, categories: Sequence[int], *, split_shape: tuple[int, int] | None = None, seed: int | None = None
    ) -> None:
        super().__init__()
        if not categories or any(k < 1 for k in categories):
            raise ValueError(f"categories must be positive counts, got {list(categories)}")
        self.alphas = nn.ParameterList(nn.Parameter(torch.zeros(k)) for k in categories)
        self.split_logits = nn.Parameter(torch.zeros(split_shape)) if split_shape else None
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)

    @property
    def categories(self) -> list[int]:
        return [len(a) for a in self.alphas]

    def probs(self) -> list[torch.Tensor]:
        return [torch.softmax(a, dim=0) for a in self.alphas]

    def sample_paths(self) -> list[int]:
        """One candidate per layer, drawn from p_l (the binary gates of a weight step)."""
        with torch.no_grad():
            return [int(torch.multinomial(p, 1, generator=self.generator)) for p in self.probs()]

    def sample_pairs(self) -> list[tuple[int, ...]]:
        """Two distinct candidates per layer drawn from p_l without replacement (one where there is one)."""
        with torch.no_grad():
            return [
                tuple(int(i) for i in torch.multinomial(p, min(2, len(p)), replacement=False, generator=self.generator))
                for p in self.probs()
            ]

    def sample_gates(
        self, pairs: Sequence[Sequence[int]], device: torch.device | str | None = None
    ) -> list[torch.Tensor]:
        """Binary gates over each layer's pair (leaf tensors on ``device``): the active one is drawn by the
        pair's renormalized probabilities."""
        gates = []
        with torch.no_grad():
            for alpha, pair in zip(self.alphas, pairs, strict=True):
                p = torch.softmax(alpha[list(pair)], dim=0)
                g = torch.zeros(len(pair), device=device)
                g[int(torch.multinomial(p, 1, generator=self.generator))] = 1.0
                gates.append(g.requires_grad_())
        return gates

    def add_gate_gradients(self, pairs: Sequence[Sequence[int]], gates: Sequence[torch.Tensor]) -> None:
        """alpha.grad += the gate gradient of each layer's pair (the gates hold dL/dg after backward)."""
        for alpha, pair, g in zip(self.alphas, pairs, gates, strict=True):
            if len(pair) < 2 or g.grad is None:
                continue
            index = torch.tensor(list(pair), dtype=torch.long)
            grad = torch.zeros_like(alpha)
            grad[index] = gate_gradient(alpha[index], g.grad.to(alpha.device, alpha.dtype))
            alpha.grad = grad if alpha.grad is None else alpha.grad + grad

    def snapshot(self, pairs: Sequence[Sequence[int]]) -> list[torch.Tensor]:
        """The pairs' alphas before an update, for ``rescale_pairs``."""
        return [alpha.detach()[list(pair)].clone() for alpha, pair in zip(self.alphas, pairs, strict=True)]

    def rescale_pairs(self, pairs: Sequence[Sequence[int]], before: Sequence[torch.Tensor]) -> None:
        for alpha, pair, old in zip(self.alphas, pairs, before, strict=True):
            if len(pair) > 1:
                rescale(alpha, pair, old)

    @property
    def most_likely(self) -> list[int]:
        return [int(a.argmax()) for a in self.alphas]

    @property
    def convergence(self) -> float:
        """Mean over layers of the largest probability."""
        with torch.no_grad():
            return float(torch.stack([p.max() for p in self.probs()]).mean())


class GatedSupernet(Supernet):
    """The supernet with a forward pass over sampled paths: one op per layer, or a gated pair of ops.

    It covers the mbconv spaces too (every op comes from ``spaces.modules.build_op``).
    """

    families = ("fbnet", "mbconv")

    def _candidate(self, layer: int, index: int, x: torch.Tensor, codec: Codec | None) -> torch.Tensor:
        """One candidate's output; with a cut after it, coded by ``codec`` (inside a bottleneck: after its front)."""
        op = self.op(layer, index)
        if codec is None:
            return op(x)
        if self._bottleneck[layer][index]:
            return op.get_submodule("back")(quantize_ste(op.get_submodule("front")(x), codec))
        return quantize_ste(op(x), codec)

    def forward_paths(
        self, x: torch.Tensor, paths: Sequence[Sequence[int] | int], gates: Sequence[torch.Tensor | None] | None = None,
        cuts: Mapping[int, Codec] | None = None,
    ) -> torch.Tensor:
        """Run ``paths[l]`` at layer l: one index, or candidates mixed as sum_j gates[l][j] * out_j.

        ``cuts`` maps split points to the codec of the link there: the payload is coded straight-through,
        each candidate's own (binary gates make the mix the active one's).
        """
        cuts = cuts or {}
        for module in self.prefix.values():
            x = module(x)
        if 0 in cuts:
            x = quantize_ste(x, cuts[0])
        if len(paths) != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} paths, one per layer, got {len(paths)}")
        for i, path in enumerate(paths):
            gate = gates[i] if gates is not None else None
            codec = cuts.get(i + 1)
            if isinstance(path, int) or gate is None:
                index = path if isinstance(path, int) else path[0]
                x = self._candidate(i, int(index), x, codec)
                continue
            # a sum of tensors is a tensor (sum's start, 0, only types as int)
            mixed = sum(g * self._candidate(i, int(j), x, codec) for g, j in zip(gate, path, strict=True))
            x = cast(torch.Tensor, mixed)
        for module in self.suffix.values():
            x = module(x)
        return x
