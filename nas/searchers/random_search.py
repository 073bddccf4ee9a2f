"""Random search: the reference searcher every other one is compared with."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas.searchers.base import BestSeen, Searcher, register_searcher


@register_searcher("random")
class RandomSearch(Searcher):
    """Samples uniformly; the answer is the best candidate told so far."""

    def __init__(self, categories: Sequence[int], *, seed: int | None = None) -> None:
        super().__init__(categories, seed=seed)
        self.best = BestSeen(self.dims)

    def sample(self, n: int) -> np.ndarray:
        return self.uniform(n)

    def update(self, samples: np.ndarray, losses: Sequence[float] | np.ndarray) -> None:
        self.best.add(*self._check_told(samples, losses))

    @property
    def most_likely(self) -> np.ndarray:
        return self.best.sample.copy()

    @property
    def convergence(self) -> float:
        """The sampling distribution stays uniform: the mean of 1 / K_i."""
        return float(np.mean(1.0 / self.categories))
