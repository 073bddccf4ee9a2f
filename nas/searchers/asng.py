"""Adaptive stochastic natural gradient over categorical variables (Akimoto et al., ICML 2019).

Exactly DESIGN.md section 5.3: theta holds one probability row per variable; each update moves theta
along the Fisher-normalized natural gradient of the ranked losses with a step size that adapts
through the accumulated direction ``s``, then keeps every row on the simplex above a floor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nas.searchers.base import Searcher, register_searcher


def ranking_utilities(losses: np.ndarray, rho: float = 0.25) -> np.ndarray:
    """Rank-based utilities: the best ceil(rho * lambda) get +1/mu, the worst as many -1/mu.

    Samples with equal losses share the mean of their weights, so for lambda = 2 the better sample
    gets +1, the worse -1, and a tie gives both 0.
    """
    lam = len(losses)
    if lam < 2:
        raise ValueError("a ranking needs at least two samples")
    mu = math.ceil(lam * rho)
    by_rank = np.zeros(lam)
    by_rank[:mu] = 1 / mu
    by_rank[lam - mu :] = -1 / mu
    order = np.argsort(losses, kind="stable")
    weights = np.empty(lam)
    weights[order] = by_rank
    _, group = np.unique(losses, return_inverse=True)
    for g in np.unique(group):
        weights[group == g] = weights[group == g].mean()
    return weights


@register_searcher("asng")
class ASNG(Searcher):
    """ASNG with the reference settings: delta_init = 1, Delta = 1, gamma = 0, s = 0, alpha = 1.5."""

    def __init__(
        self, categories: Sequence[int], *, seed: int | None = None, alpha: float = 1.5, delta_init: float = 1.0,
        delta_max: float = np.inf, rho: float = 0.25,
    ) -> None:
        super().__init__(categories, seed=seed)
        k = self.categories
        self.theta = np.zeros((self.dims, int(k.max())))
        for i, ki in enumerate(k):
            self.theta[i, :ki] = 1.0 / ki
        self.n_params = int((k - 1).sum())
        d_valid = int((k > 1).sum())
        self.theta_min = np.where(k > 1, 1.0 / (max(d_valid, 1) * np.maximum(k - 1, 1)), 0.0)
        self.alpha, self.delta_init, self.delta_max, self.rho = alpha, delta_init, delta_max, rho
        self.Delta = 1.0
        self.gamma = 0.0
        self.s = np.zeros(self.n_params)

    @property
    def delta(self) -> float:
        return self.delta_init / self.Delta

    def sample(self, n: int) -> np.ndarray:
        """One value per row by inverse CDF (the last cumulative value of each row forced to 1)."""
        cdf = np.cumsum(self.theta, axis=1)
        cdf[np.arange(self.dims), self.categories - 1] = 1.0
        u = self.rng.random((n, self.dims, 1))
        return (u < cdf[None]).argmax(axis=2)

    def one_hot(self, samples: np.ndarray) -> np.ndarray:
        out = np.zeros((len(samples), *self.theta.shape))
        out[np.arange(len(samples))[:, None], np.arange(self.dims)[None, :], samples] = 1.0
        return out

    def update(self, samples: np.ndarray, losses: Sequence[float] | np.ndarray) -> None:
        """One ASNG step; a tie (all utilities zero) or a zero gradient leaves everything unchanged."""
        told, values = self._check_told(samples, losses)
        utilities = ranking_utilities(values, self.rho)
        if not utilities.any():
            return
        grad = np.mean(utilities[:, None, None] * (self.one_hot(told) - self.theta), axis=0)
        if np.abs(grad).max() < 1e-18:
            return
        direction = self.fisher_direction(grad)
        norm = float(np.linalg.norm(direction)) + 1e-8
        delta = self.delta
        beta = delta / math.sqrt(self.n_params)
        self.theta += delta * grad / norm
        self.project()
        self.s = (1 - beta) * self.s + math.sqrt(beta * (2 - beta)) * direction / norm
        self.gamma = (1 - beta) ** 2 * self.gamma + beta * (2 - beta)
        self.Delta = min(self.delta_max, self.Delta * math.exp(beta * (self.gamma - self.s @ self.s / self.alpha)))

    def fisher_direction(self, grad: np.ndarray) -> np.ndarray:
        """s~: per row, over its first K_i - 1 entries, the gradient in the Fisher metric's coordinates."""
        parts = []
        for i, k in enumerate(self.categories):
            if k == 1:
                continue
            theta_i, theta_last = self.theta[i, : k - 1], self.theta[i, k - 1]
            g = grad[i, : k - 1]
            parts.append(g / np.sqrt(theta_i) + np.sqrt(theta_i) * g.sum() / (theta_last + np.sqrt(theta_last)))
        return np.concatenate(parts) if parts else np.zeros(0)

    def project(self) -> None:
        """Put every row back on the simplex with entries at least theta_min (the reference's rule)."""
        for i, k in enumerate(self.categories):
            row, floor = self.theta[i, :k], self.theta_min[i]
            row[:] = np.maximum(row, floor)
            total = row.sum()
            excess = total - floor * k
            if excess > 0:
                row -= (total - 1) * (row - floor) / excess
            row /= row.sum()

    @property
    def most_likely(self) -> np.ndarray:
        return self.theta.argmax(axis=1)

    @property
    def convergence(self) -> float:
        """Mean of the row maxima of theta."""
        return float(self.theta.max(axis=1).mean())
