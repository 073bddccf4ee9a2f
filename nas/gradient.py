"""The gradient variant (DESIGN.md 5.4): ProxylessNAS binary-gate search with expected multi-split latency.

Warm-up epochs train the supernet weights over paths sampled from p (uniform while alpha = 0); then
every step of the search epochs is a weight step on a training batch (one sampled path) and, every
``arch_every`` steps, an architecture step on a validation batch (two sampled paths per layer, the gate
gradient for the cross-entropy, autograd for the expected latency E[T] of the topology). The answer is
the most likely op of every layer and the fixed or most likely split points, re-trained from scratch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nas.expected_latency import ExpectedLatency, split_tuple_probs
from nas.gates import ArchitectureParameters, GatedSupernet
from nas.latency import TopologyLatency
from nas.latency_losses import LatencyLoss, create_latency_loss
from nas.methods import SearchContext, SearchResult, register_method
from nas.training import make_optimizer, retrain
from spaces.codecs import Codec


class GradientSearch:
    """Binary-gate search state: the supernet, architecture parameters, E[T] and the loss form.

    ``splits`` fixes the topology's split points; ``None`` searches them (one categorical per split
    point, E[T] taken over their joint distribution on strictly increasing tuples). With fixed splits,
    ``codecs`` (one per split point) code the payloads there as the links send them; searched split
    points move, so the paths then train uncoded (the re-trained answer is coded).
    """

    def __init__(
        self, supernet: GatedSupernet, expected: ExpectedLatency, loss: LatencyLoss, *,
        splits: Sequence[int] | None, weight_optimizer: torch.optim.Optimizer, arch_lr: float = 6e-3,
        seed: int | None = None, codecs: Sequence[Codec] | None = None,
    ) -> None:
        self.supernet, self.expected, self.loss = supernet, expected, loss
        self.splits = None if splits is None else tuple(int(k) for k in splits)
        self.cuts = dict(zip(self.splits, codecs, strict=True)) if self.splits is not None and codecs else {}
        n_splits, positions = expected.topology.n_splits, expected.n_layers + 1
        self.params = ArchitectureParameters(
            supernet.categories, split_shape=None if self.splits is not None else (n_splits, positions), seed=seed
        )
        self.weight_optimizer = weight_optimizer
        # beta1 = 0 (ProxylessNAS): parameters without a gradient in a step do not move
        self.arch_optimizer = torch.optim.Adam(self.params.parameters(), lr=arch_lr, betas=(0.0, 0.999), eps=1e-8)

    def expected_ms(self) -> torch.Tensor:
        probs = self.params.probs()
        if self.splits is not None:
            return self.expected(probs, splits=self.splits)
        return self.expected(probs, split_logits=self.params.split_logits)

    def weight_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """One path per layer from p; cross-entropy on a training batch; one optimizer step of its weights."""
        loss = F.cross_entropy(self.supernet.forward_paths(x, self.params.sample_paths(), cuts=self.cuts), y)
        self.weight_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.weight_optimizer.step()
        return loss.item()

    def arch_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Two gated paths per layer on a validation batch; the loss form's gradient; rescaled alphas."""
        pairs = self.params.sample_pairs()
        gates = self.params.sample_gates(pairs, device=x.device)
        self.supernet.requires_grad_(False)  # gradients for the gates only, not for the weights
        try:
            ce = F.cross_entropy(self.supernet.forward_paths(x, pairs, gates, cuts=self.cuts), y)
            expected = self.expected_ms()
            loss = self.loss(ce.to(expected.dtype).cpu(), expected)
            self.arch_optimizer.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            self.supernet.requires_grad_(True)
        self.params.add_gate_gradients(pairs, gates)
        before = self.params.snapshot(pairs)
        self.arch_optimizer.step()
        self.params.rescale_pairs(pairs, before)
        return {"ce": ce.item(), "expected_ms": expected.item(), "loss": loss.item()}

    @torch.no_grad()
    def _split_weights(self) -> torch.Tensor:
        """Probability of each split tuple under the searched split logits."""
        if self.params.split_logits is None:
            raise RuntimeError("the split distribution exists only when the splits are searched")
        return split_tuple_probs(self.params.split_logits.double(), self.expected.tuples)

    def most_likely_splits(self) -> tuple[int, ...]:
        if self.splits is not None:
            return self.splits
        weights = self._split_weights()
        return tuple(int(k) for k in self.expected.tuples[int(weights.argmax())])

    def split_distribution(self, top: int = 5) -> list[dict[str, Any]]:
        """The ``top`` most likely split tuples with their probabilities (searched splits only)."""
        if self.splits is not None:
            return []
        weights = self._split_weights()
        best = torch.argsort(weights, descending=True)[:top]
        return [{"splits": self.expected.tuples[i].tolist(), "p": float(weights[i])} for i in best]

    def answer(self) -> tuple[list[int], tuple[int, ...]]:
        """Per-layer block indices and split points of the most likely architecture."""
        return self.params.most_likely, self.most_likely_splits()


def _cycle(ctx: SearchContext, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of ``split`` epoch after epoch (the architecture steps outlast one pass over validation)."""
    while True:
        empty = True
        for batch in ctx.batches(split):  # type: ignore[arg-type]
            empty = False
            yield batch
        if empty:
            raise ValueError(f"the {split!r} split of {ctx.data.name!r} holds no images")


@register_method("gradient")
def gradient(ctx: SearchContext) -> SearchResult:
    """Binary-gate search over the ops (and, when asked, the split points) of a chain or mesh topology."""
    config = ctx.config
    options = config.gradient
    latency = ctx.latency
    if not isinstance(latency, TopologyLatency):
        raise ValueError("the gradient method needs a topology (nas search --method gradient --topology FILE)")
    torch.manual_seed(config.seed)
    supernet = GatedSupernet(config.space, ctx.data.num_classes).to(ctx.device)
    n_layers = len(supernet.layers)
    topology = latency.topology
    splits = None if options.search_splits else topology.splits(n_layers)
    expected = ExpectedLatency(supernet.space, topology, latency.luts)
    loss = create_latency_loss(options.latency_loss, config.t_th, options.latency_weight)
    steps = ctx.steps("train")
    total_steps = (config.pretrain_epochs + config.search_epochs) * steps
    weight_optimizer, scheduler = make_optimizer(supernet.parameters(), config.supernet_optimizer, total_steps)
    search = GradientSearch(supernet, expected, loss, splits=splits, weight_optimizer=weight_optimizer,
                            arch_lr=options.arch_lr, seed=config.seed, codecs=latency.codecs)

    def describe() -> dict[str, Any]:
        blocks, ks = search.answer()
        arch = supernet.architecture(blocks).with_splits(*ks)
        with torch.no_grad():
            expected_ms = float(search.expected_ms())
        return {"arch": arch.encode(), "latency_ms": latency.completion(arch).total_ms, "expected_ms": expected_ms,
                "convergence": search.params.convergence}

    supernet.train()
    ctx.callback.on_stage("warmup", config.pretrain_epochs, steps)
    for epoch in range(config.pretrain_epochs):
        losses = []
        for x, y in ctx.batches("train"):
            losses.append(search.weight_step(x, y))
            if scheduler is not None:
                scheduler.step()
            ctx.callback.on_step("warmup")
        ctx.callback.on_epoch({"stage": "warmup", "epoch": epoch + 1, "loss": float(np.mean(losses))})

    ctx.callback.on_stage("search", config.search_epochs, steps)
    validation = _cycle(ctx, "val")
    for epoch in range(config.search_epochs):
        losses, arch_losses = [], []
        for step, (x, y) in enumerate(ctx.batches("train")):
            losses.append(search.weight_step(x, y))
            if scheduler is not None:
                scheduler.step()
            if step % options.arch_every == 0:
                arch_losses.append(search.arch_step(*next(validation))["loss"])
            ctx.callback.on_step("search")
        ctx.callback.on_epoch({"stage": "search", "epoch": epoch + 1, "loss": float(np.mean(losses)),
                               "arch_loss": float(np.mean(arch_losses)), **describe()})

    final = describe()
    blocks, ks = search.answer()
    arch = supernet.architecture(blocks).with_splits(*ks)
    convergence = search.params.convergence
    # the links of a topology are lossless; every cut codes its payload as its link sends it
    retrained = retrain(ctx, arch, drop=0.0)
    accuracy = retrained.accuracy_clean
    return SearchResult(
        arch.blocks, ks[0], accuracy, accuracy, convergence, network=retrained.network,
        extra={
            "splits": list(ks),
            "loss_rate": 0.0,
            "expected_ms": final["expected_ms"],
            "latency_loss": loss.name,
            "latency_weight": loss.weight,
            "search_splits": options.search_splits,
            "split_distribution": search.split_distribution(),
            **latency.summary(arch),
        },
    )
