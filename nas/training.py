"""The stages of a one-shot search (DESIGN.md 5.1): weight pre-training, distribution update, re-training.

Shared by NASC, the HWNAS baselines, random search and evolution; they differ in the variables they
search, the objective of the distribution update, and the dropout of each stage.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock
from torch import nn

from nas.config import OptimizerConfig, SearchConfig
from nas.methods import SearchContext, decode
from nas.searchers import RandomSearch, Searcher
from nas.supernet import SplitNetwork, Supernet, over_link, packet_loss
from spaces import Architecture
from spaces.codecs import Codec

Objective = Callable[[torch.Tensor, torch.Tensor, np.ndarray], np.ndarray]
Describe = Callable[[np.ndarray], dict[str, Any]]


def make_optimizer(
    parameters: Sequence[nn.Parameter] | Any, settings: OptimizerConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    optimizer = torch.optim.SGD(
        parameters, lr=settings.lr, momentum=settings.momentum, nesterov=settings.nesterov and settings.momentum > 0,
        weight_decay=settings.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(total_steps, 1)) if settings.cosine else None
    return optimizer, scheduler


def descend(
    loss: torch.Tensor, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler | None
) -> float:
    """One gradient step on ``loss`` (and one scheduler step); returns the loss value."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return loss.item()


def pretrain_supernet(
    ctx: SearchContext, supernet: Supernet, *, search_splits: bool, drop: float, codec: Codec | None = None
) -> None:
    """Stage 1: each step trains the mean loss of ``lambda_x`` uniformly sampled paths (and split points)
    with the payload coded by ``codec`` (straight-through) and dropout ``drop`` at the split."""
    config = ctx.config
    n_layers = len(supernet.layers)
    categories = supernet.categories + ([n_layers + 1] if search_splits else [])
    sampler = RandomSearch(categories, seed=config.seed)
    steps = ctx.steps("train")
    ctx.begin_stage("pretrain", config.pretrain_epochs, steps)
    optimizer, scheduler = make_optimizer(supernet.parameters(), config.supernet_optimizer,
                                          config.pretrain_epochs * steps)
    supernet.train()
    for epoch in range(config.pretrain_epochs):
        losses = []
        for x, y in ctx.batches("train"):
            loss = torch.zeros((), device=ctx.device)
            for sample in sampler.sample(config.lambda_x):
                blocks, split = decode(sample, n_layers)
                logits = supernet(x, blocks, n_layers if split is None else split, drop,
                                  generator=ctx.loss_generator, scale=config.scale_dropout, codec=codec)
                loss = loss + F.cross_entropy(logits, y) / config.lambda_x
            losses.append(descend(loss, optimizer, scheduler))
            ctx.callback.on_step("pretrain")
        ctx.callback.on_epoch({"stage": "pretrain", "epoch": epoch + 1, "loss": float(np.mean(losses))})


def pretrain_settings(
    ctx: SearchContext, *, search_splits: bool, drop: float, codec: Codec | None = None
) -> dict[str, Any]:
    """Everything stage 1's result depends on (the key of a cached pre-trained supernet).

    The codec is named when it codes anything: caches made before codecs existed were trained in float32.
    """
    settings = ctx.config.model_dump(mode="json", include={
        "space", "pretrain_epochs", "steps_per_epoch", "lambda_x", "batch_size", "supernet_optimizer", "seed",
        "data_limit", "scale_dropout",
    })
    coded = {"codec": codec.name} if codec is not None and codec.name != "float32" else {}
    return settings | {"data": ctx.data.name, "search_splits": search_splits, "drop": drop,
                       "num_classes": ctx.data.num_classes} | coded


def pretrained_supernet(
    ctx: SearchContext, *, search_splits: bool, drop: float, codec: Codec | None = None
) -> Supernet:
    """Stage 1, or its result from ``supernet_cache`` when that was made with the same settings.

    One-shot search trains the supernet once: searches with other searchers, thresholds or links reuse it.
    ``supernet_cache`` names a file, or a directory holding one file per settings (what a sweep's cells
    share). A lock beside the file makes a search that needs it while another pre-trains it wait and load it.
    """
    config = ctx.config
    torch.manual_seed(config.seed)
    supernet = Supernet(config.space, ctx.data.num_classes).to(ctx.device)
    settings = pretrain_settings(ctx, search_splits=search_splits, drop=drop, codec=codec)
    if not config.supernet_cache:
        pretrain_supernet(ctx, supernet, search_splits=search_splits, drop=drop, codec=codec)
        return supernet
    path = cache_file(config.supernet_cache, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        if path.is_file():
            saved = torch.load(path, map_location=ctx.device, weights_only=True)
            if saved["settings"] != settings:
                differ = sorted(k for k in settings.keys() | saved["settings"].keys()
                                if settings.get(k) != saved["settings"].get(k))
                raise ValueError(f"supernet cache {path} was pre-trained with other settings ({', '.join(differ)}); "
                                 "remove it or name another file")
            supernet.load_state_dict(saved["state_dict"])
            ctx.callback.on_epoch({"stage": "pretrain", "epoch": 0, "loaded": str(path)})
            return supernet
        pretrain_supernet(ctx, supernet, search_splits=search_splits, drop=drop, codec=codec)
        partial = path.with_name(f".{path.name}.partial")  # a search killed while writing leaves no torn cache
        torch.save({"settings": settings, "state_dict": supernet.state_dict()}, partial)
        partial.replace(path)
    return supernet


def cache_file(cache: str, settings: dict[str, Any]) -> Path:
    """The cached supernet of these stage-1 settings: ``cache`` itself, or a file named by their hash in it
    when ``cache`` is a directory (one that exists, or a path ending in ``/``: made when first written)."""
    if not (cache.endswith("/") or Path(cache).is_dir()):
        return Path(cache)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache) / f"supernet-{digest}.pt"


def latency_penalty(config: SearchConfig, latency_ms: np.ndarray | float) -> np.ndarray:
    """The latency term of J: eps_lat * max(0, T - T_th)."""
    return config.eps_lat * np.maximum(0.0, np.asarray(latency_ms) - config.t_th)


def penalized(config: SearchConfig, losses: Sequence[float] | np.ndarray, latency_ms: np.ndarray | float) -> np.ndarray:
    """NASC's J (DESIGN.md 5.1) from the losses and latencies of candidates: eps_loss * loss + the latency term."""
    return config.eps_loss * np.asarray(losses) + latency_penalty(config, latency_ms)


@torch.no_grad()
def loss_over_rates(
    ctx: SearchContext, payload: torch.Tensor, tail: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor,
    rates: Sequence[float],
) -> float:
    """l_SC of a received ``payload``: the mean over ``rates`` of the tail's cross-entropy with that packet loss."""
    losses = [
        F.cross_entropy(tail(packet_loss(payload, p, generator=ctx.loss_generator, scale=ctx.config.scale_dropout)),
                        y).item()
        for p in rates
    ]
    return float(np.mean(losses))


@torch.no_grad()
def sc_loss(
    ctx: SearchContext, supernet: Supernet, x: torch.Tensor, y: torch.Tensor, blocks: Sequence[int] | np.ndarray,
    split: int, rates: Sequence[float], codec: Codec | None = None,
) -> float:
    """l_SC of a supernet path: the mean over ``rates`` of the cross-entropy with the payload coded by ``codec``
    and that packet loss at the split (head run and payload coded once)."""
    payload = over_link(supernet.head(x, blocks, split), codec, 0.0)
    return loss_over_rates(ctx, payload, lambda z: supernet.tail(z, blocks, split), y, rates)


@torch.no_grad()
def network_objective(ctx: SearchContext, network: SplitNetwork) -> float:
    """NASC's J of a trained one-split network: l_SC over the validation split (in order, capped by
    ``steps_per_epoch``) plus the latency term of its architecture."""
    config = ctx.config
    network.eval()
    payloads = (
        (over_link(network.head(x), network.codecs[0], 0.0), y)
        for x, y in islice(ctx.data.batches("val", config.batch_size, device=ctx.device), ctx.steps("val"))
    )
    loss = float(np.mean([loss_over_rates(ctx, z, network.tail, y, config.dropout_set) for z, y in payloads]))
    return float(penalized(config, [loss], ctx.split_latency.breakdown(network.arch)["total_ms"])[0])


def split_objective(ctx: SearchContext, supernet: Supernet) -> Objective:
    """NASC's J: eps_loss * l_SC + eps_lat * max(0, T_split - T_th), for samples holding a split point."""
    config, n_layers = ctx.config, len(supernet.layers)
    codec = ctx.split_latency.link.encoding

    def objective(x: torch.Tensor, y: torch.Tensor, samples: np.ndarray) -> np.ndarray:
        latency = ctx.split_latency.split(samples[:, :n_layers], samples[:, n_layers])["total_ms"]
        losses = [sc_loss(ctx, supernet, x, y, s[:n_layers], int(s[n_layers]), config.dropout_set, codec)
                  for s in samples]
        return penalized(config, losses, latency)

    return objective


def whole_model_objective(ctx: SearchContext, supernet: Supernet) -> Objective:
    """HWNAS's J: eps_loss * CE without loss + eps_lat * max(0, T_whole_on_head_device - T_th)."""
    config, n_layers = ctx.config, len(supernet.layers)

    def objective(x: torch.Tensor, y: torch.Tensor, samples: np.ndarray) -> np.ndarray:
        latency = ctx.split_latency.whole(samples)
        losses = [sc_loss(ctx, supernet, x, y, s, n_layers, (0.0,)) for s in samples]
        return penalized(config, losses, latency)

    return objective


def update_distribution(
    ctx: SearchContext, supernet: Supernet, searcher: Searcher, objective: Objective, describe: Describe
) -> None:
    """Stage 2: weights frozen; each step asks ``lambda_theta`` candidates, scores them on a validation
    batch, and tells the searcher.

    The supernet stays in training mode (batch statistics): its running statistics mix every path.
    """
    config = ctx.config
    steps = ctx.steps("val")
    ctx.begin_stage("search", config.search_epochs, steps)
    supernet.train()
    for epoch in range(config.search_epochs):
        values = []
        for x, y in ctx.batches("val"):
            samples = searcher.sample(config.lambda_theta)
            losses = objective(x, y, samples)
            searcher.update(samples, losses)
            values.append(float(np.mean(losses)))
            ctx.callback.on_step("search")
        ctx.callback.on_epoch({
            "stage": "search", "epoch": epoch + 1, "loss": float(np.mean(values)),
            "convergence": searcher.convergence, **describe(searcher.most_likely),
        })


def describe_split(ctx: SearchContext, supernet: Supernet) -> Describe:
    """Progress fields of a (blocks + split) answer: its architecture string and predicted latency."""
    n_layers = len(supernet.layers)

    def describe(sample: np.ndarray) -> dict[str, Any]:
        blocks, split = decode(sample, n_layers)
        latency = float(ctx.split_latency.split(blocks[None], np.array([split]))["total_ms"][0])
        return {"arch": supernet.architecture(blocks, split).encode(), "latency_ms": latency}

    return describe


def describe_whole(ctx: SearchContext, supernet: Supernet) -> Describe:
    def describe(sample: np.ndarray) -> dict[str, Any]:
        return {"arch": supernet.architecture(sample).encode(), "latency_ms": float(ctx.split_latency.whole(sample)[0])}

    return describe


def choose_split(ctx: SearchContext, supernet: Supernet, blocks: np.ndarray) -> tuple[int, dict[int, float]]:
    """The split point minimizing J for fixed ``blocks``, l_SC on ``split_eval_batches`` validation batches.

    Exact branch and bound: splits are tried by increasing latency penalty, and once a penalty alone
    reaches the best J found (l_SC >= 0) no later split can win, so their l_SC is not computed.
    """
    config, n_layers = ctx.config, len(supernet.layers)
    codec = ctx.split_latency.link.encoding
    splits = np.arange(n_layers + 1)
    latency = ctx.split_latency.split(np.repeat(blocks[None], len(splits), axis=0), splits)["total_ms"]
    penalty = latency_penalty(config, latency)
    ctx.begin_stage("split", 1, len(splits))
    batches = []
    for batch in ctx.batches("val"):
        batches.append(batch)
        if len(batches) == config.split_eval_batches:
            break
    supernet.train()
    scores: dict[int, float] = {}
    best, best_split = np.inf, int(np.argmin(penalty))
    for k in np.argsort(penalty, kind="stable"):
        if penalty[k] >= best:
            break
        loss = np.mean([sc_loss(ctx, supernet, x, y, blocks, int(k), config.dropout_set, codec) for x, y in batches])
        scores[int(k)] = float(config.eps_loss * loss + penalty[k])
        if scores[int(k)] < best:
            best, best_split = scores[int(k)], int(k)
        ctx.callback.on_step("split")
    ctx.callback.on_epoch({
        "stage": "split", "epoch": 1, "loss": best, "arch": supernet.architecture(blocks, best_split).encode(),
        "latency_ms": float(latency[best_split]), "splits_scored": len(scores),
    })
    return best_split, scores


@torch.no_grad()
def accuracy(ctx: SearchContext, network: SplitNetwork, drop: float) -> float:
    """Test accuracy with the payload coded as its link sends it and packet loss ``drop`` at the split."""
    network.eval()
    correct = total = 0
    # evaluation keeps no activations for backward: larger batches run faster
    for x, y in ctx.data.batches("test", max(ctx.config.batch_size, 128), device=ctx.device):
        logits = network(x, drop, generator=ctx.loss_generator, scale=ctx.config.scale_dropout)
        correct += int((logits.argmax(dim=1) == y).sum())
        total += len(y)
    return correct / max(total, 1)


@dataclass
class Retrained:
    """The re-trained answer and its test accuracy at the link's loss rate and without loss."""

    network: SplitNetwork
    accuracy_at_loss: float
    accuracy_clean: float


def training_epochs(ctx: SearchContext, arch: Architecture, *, drop: float) -> Iterator[SplitNetwork]:
    """Stage 3 epoch by epoch: train ``arch`` from scratch for ``retrain_epochs`` with its payloads coded as its
    links send them (straight-through) and dropout ``drop`` at its split point(s); yields the network after
    every epoch (a caller may stop early)."""
    config = ctx.config
    torch.manual_seed(config.seed)
    network = SplitNetwork(arch, ctx.data.num_classes, ctx.latency.codecs).to(ctx.device)
    steps = ctx.steps("train")
    ctx.begin_stage("retrain", config.retrain_epochs, steps)
    optimizer, scheduler = make_optimizer(network.parameters(), config.retrain_optimizer,
                                          config.retrain_epochs * steps)
    for epoch in range(config.retrain_epochs):
        network.train()
        losses = []
        for x, y in ctx.batches("train"):
            loss = F.cross_entropy(network(x, drop, generator=ctx.loss_generator, scale=config.scale_dropout), y)
            losses.append(descend(loss, optimizer, scheduler))
            ctx.callback.on_step("retrain")
        ctx.callback.on_epoch({"stage": "retrain", "epoch": epoch + 1, "loss": float(np.mean(losses)),
                               "arch": arch.encode()})
        yield network
    if not config.retrain_epochs:
        yield network


def retrain(ctx: SearchContext, arch: Architecture, *, drop: float) -> Retrained:
    """Stage 3: train ``arch`` from scratch (``training_epochs``), then its test accuracy with and without loss."""
    network = deque(training_epochs(ctx, arch, drop=drop), maxlen=1)[0]
    return Retrained(network, accuracy(ctx, network, ctx.config.loss), accuracy(ctx, network, 0.0))
