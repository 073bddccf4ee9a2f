"""What every search method gets (the context) and gives (a result), its progress callbacks, and the registry."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.config import SearchConfig
from nas.data import ImageData, Split
from nas.latency import SplitLatencyModel, TopologyLatency
from spaces.registry import registrar


class SearchCallback:
    """Receives a search's progress; every hook does nothing unless overridden."""

    def on_stage(self, stage: str, epochs: int, steps_per_epoch: int) -> None:
        """A stage (``pretrain``, ``search``, ``split``, ``retrain``) starts."""

    def on_step(self, stage: str) -> None:
        """One optimization or distribution step ended."""

    def on_epoch(self, record: dict[str, Any]) -> None:
        """An epoch ended: ``record`` holds stage, epoch, loss, arch, latency_ms, convergence, ..."""


class CallbackList(SearchCallback):
    def __init__(self, callbacks: Sequence[SearchCallback]) -> None:
        self.callbacks = list(callbacks)

    def on_stage(self, stage: str, epochs: int, steps_per_epoch: int) -> None:
        for callback in self.callbacks:
            callback.on_stage(stage, epochs, steps_per_epoch)

    def on_step(self, stage: str) -> None:
        for callback in self.callbacks:
            callback.on_step(stage)

    def on_epoch(self, record: dict[str, Any]) -> None:
        for callback in self.callbacks:
            callback.on_epoch(record)


@dataclass
class SearchContext:
    """Everything a method needs: settings, data, the latency model, where to compute, whom to tell."""

    config: SearchConfig
    data: ImageData
    latency: SplitLatencyModel | TopologyLatency  # a topology for the gradient method, else a head-tail split
    device: torch.device
    callback: SearchCallback = field(default_factory=SearchCallback)

    def __post_init__(self) -> None:
        self.batch_generator = torch.Generator()
        self.loss_generator = torch.Generator(device=self.device)
        self._seed("start")

    @property
    def split_latency(self) -> SplitLatencyModel:
        """The head-tail latency model that every method but the gradient one searches with."""
        if not isinstance(self.latency, SplitLatencyModel):
            raise ValueError(f"the {self.config.method!r} method searches a head-tail split, not a topology")
        return self.latency

    def begin_stage(self, stage: str, epochs: int, steps_per_epoch: int) -> None:
        """Seed the batch order and packet-loss masks from (seed, stage), then tell the callback.

        So a stage's randomness does not depend on the stages before it: a search that loads a cached
        pre-trained supernet runs exactly as one that pre-trained it.
        """
        self._seed(stage)
        self.callback.on_stage(stage, epochs, steps_per_epoch)

    def _seed(self, stage: str) -> None:
        seed = zlib.crc32(f"{self.config.seed}/{stage}".encode())
        self.batch_generator.manual_seed(seed)
        self.loss_generator.manual_seed(seed + 1)

    def steps(self, split: Split) -> int:
        """Steps in one epoch over ``split`` (capped by ``steps_per_epoch``)."""
        n = -(-self.data.size(split) // self.config.batch_size)
        return min(n, self.config.steps_per_epoch or n)

    def batches(self, split: Split) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled batches of ``split`` on the search device, capped by ``steps_per_epoch``."""
        batches = self.data.batches(
            split, self.config.batch_size, shuffle=True, generator=self.batch_generator, device=self.device
        )
        for step, batch in enumerate(batches):
            if step >= self.steps(split):
                return
            yield batch


@dataclass
class SearchResult:
    """The found architecture with its split point, and what a method reports about it."""

    blocks: tuple[str, ...]
    split: int
    accuracy_at_loss: float
    accuracy_clean: float
    convergence: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    network: nn.Module | None = None  # the re-trained answer (nas.supernet.SplitNetwork), kept with the job


Method = Callable[[SearchContext], SearchResult]
METHODS: dict[str, Method] = {}


# what ``nas search --method`` runs, one decorator line per method
register_method = registrar(METHODS, "search method")


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown search method {name!r}; allowed: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def decode(sample: np.ndarray, n_layers: int) -> tuple[np.ndarray, int | None]:
    """A searcher's sample: per-layer block indices, then (when searched) the split point."""
    sample = np.asarray(sample)
    return sample[:n_layers], (int(sample[n_layers]) if len(sample) > n_layers else None)
