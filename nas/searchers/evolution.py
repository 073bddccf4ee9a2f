"""Regularized (aging) evolution (Real et al., AAAI 2019) as an ask/tell searcher."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from nas.searchers.base import BestSeen, Searcher, register_searcher


@register_searcher("evolution")
class RegularizedEvolution(Searcher):
    """Tournament selection, one-variable mutation, and the oldest member dies.

    Until the population is full, candidates are uniform; then each child is the best of
    ``tournament_size`` random members with one variable changed to another value.
    """

    def __init__(
        self, categories: Sequence[int], *, seed: int | None = None, population_size: int = 20,
        tournament_size: int = 5,
    ) -> None:
        super().__init__(categories, seed=seed)
        if not 1 <= tournament_size <= population_size:
            raise ValueError(f"need 1 <= tournament_size <= population_size, got {tournament_size}, {population_size}")
        self.population_size, self.tournament_size = population_size, tournament_size
        self.population: deque[tuple[np.ndarray, float]] = deque(maxlen=population_size)
        self.best = BestSeen(self.dims)
        self._mutable = np.flatnonzero(self.categories > 1)

    def sample(self, n: int) -> np.ndarray:
        if len(self.population) < self.population_size or len(self._mutable) == 0:
            return self.uniform(n)
        return np.stack([self._child() for _ in range(n)])

    def _child(self) -> np.ndarray:
        picks = self.rng.choice(len(self.population), self.tournament_size, replace=False)
        parent = min((self.population[i] for i in picks), key=lambda member: member[1])[0]
        child = parent.copy()
        i = self.rng.choice(self._mutable)
        child[i] = (child[i] + self.rng.integers(1, self.categories[i])) % self.categories[i]
        return child

    def update(self, samples: np.ndarray, losses: Sequence[float] | np.ndarray) -> None:
        told, values = self._check_told(samples, losses)
        self.population.extend(zip(told.copy(), values.tolist(), strict=True))
        self.best.add(told, values)

    @property
    def most_likely(self) -> np.ndarray:
        return self.best.sample.copy()

    @property
    def convergence(self) -> float:
        """Mean over variables of the share of the population holding its most common value."""
        if not self.population:
            return float(np.mean(1.0 / self.categories))
        members = np.stack([m for m, _ in self.population])
        shares = [np.bincount(members[:, i]).max() / len(members) for i in range(self.dims)]
        return float(np.mean(shares))
