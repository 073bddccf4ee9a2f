"""Ask/tell searchers over categorical variables, and their registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from spaces.registry import registrar


class Searcher:
    """Searches D categorical variables; variable i takes the values 0..K_i-1.

    ``sample(n)`` asks for n candidates as an (n, D) integer array, ``update(samples, losses)`` tells
    their losses (lower is better). ``most_likely`` is the current answer, ``convergence`` a number in
    [0, 1] that grows as the searcher settles on one candidate.
    """

    name: str = ""

    def __init__(self, categories: Sequence[int], *, seed: int | None = None) -> None:
        self.categories = np.asarray(categories, dtype=int)
        if self.categories.ndim != 1 or len(self.categories) == 0 or (self.categories < 1).any():
            raise ValueError(f"categories must be a non-empty list of positive counts, got {list(categories)}")
        self.rng = np.random.default_rng(seed)

    @property
    def dims(self) -> int:
        return len(self.categories)

    def uniform(self, n: int) -> np.ndarray:
        """n candidates drawn uniformly at random."""
        return self.rng.integers(0, self.categories, size=(n, self.dims))

    def sample(self, n: int) -> np.ndarray:
        raise NotImplementedError

    def update(self, samples: np.ndarray, losses: Sequence[float] | np.ndarray) -> None:
        raise NotImplementedError

    @property
    def most_likely(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def convergence(self) -> float:
        raise NotImplementedError

    def _check_told(self, samples: np.ndarray, losses: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        told = np.asarray(samples, dtype=int)
        values = np.asarray(losses, dtype=float)
        if told.ndim != 2 or told.shape[1] != self.dims or len(values) != len(told):
            raise ValueError(
                f"expected ({len(values)}, {self.dims}) samples for {len(values)} losses, got shape {told.shape}"
            )
        if ((told < 0) | (told >= self.categories)).any():
            raise ValueError("samples hold values outside their variable's categories")
        if not np.isfinite(values).all():
            raise ValueError(f"losses must be finite, got {values.tolist()}")
        return told, values


class BestSeen:
    """The lowest-loss candidate told so far (the answer of random search and evolution)."""

    def __init__(self, dims: int) -> None:
        self.sample = np.zeros(dims, dtype=int)
        self.loss = np.inf

    def add(self, samples: np.ndarray, losses: np.ndarray) -> None:
        best = int(np.argmin(losses))
        if losses[best] < self.loss:
            self.sample, self.loss = samples[best].copy(), float(losses[best])


SEARCHERS: dict[str, type[Searcher]] = {}


register_searcher = registrar(SEARCHERS, "searcher", attribute="name")


def create_searcher(name: str, categories: Sequence[int], *, seed: int | None = None, **options: Any) -> Searcher:
    """The registered searcher ``name``; an error lists the registered names."""
    if name not in SEARCHERS:
        raise ValueError(f"unknown searcher {name!r}; allowed: {', '.join(sorted(SEARCHERS))}")
    return SEARCHERS[name](categories, seed=seed, **options)
