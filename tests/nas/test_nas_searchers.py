"""ASNG on its own, and the ask/tell contract of every registered searcher against random search."""

from __future__ import annotations

import numpy as np
import pytest

from nas.searchers import ASNG, SEARCHERS, create_searcher, ranking_utilities, register_searcher
from nas.searchers.base import Searcher

CATEGORIES = [9] * 8 + [23]
TARGET = np.array([3, 0, 8, 5, 1, 7, 2, 4, 17])


def hamming(samples: np.ndarray) -> np.ndarray:
    """A separable objective whose only optimum is TARGET (0 there, one per wrong variable elsewhere)."""
    return (np.asarray(samples) != TARGET).sum(axis=1).astype(float)


def run(searcher: Searcher, steps: int, lam: int = 2) -> Searcher:
    for _ in range(steps):
        samples = searcher.sample(lam)
        searcher.update(samples, hamming(samples))
    return searcher


def test_asng_converges_to_the_known_optimum() -> None:
    asng = run(ASNG(CATEGORIES, seed=0), steps=3000)
    assert asng.most_likely.tolist() == TARGET.tolist()
    # rows cannot exceed 1 - (K - 1) * theta_min; near that means converged
    assert asng.convergence > 0.85


def test_asng_converges_with_larger_lambda_and_noise() -> None:
    asng = ASNG(CATEGORIES, seed=1)
    noise = np.random.default_rng(2)
    for _ in range(1500):
        samples = asng.sample(6)
        asng.update(samples, hamming(samples) + noise.normal(0, 0.3, len(samples)))
    assert asng.most_likely.tolist() == TARGET.tolist()


def test_asng_tie_makes_no_update() -> None:
    asng = run(ASNG(CATEGORIES, seed=3), steps=20)
    before = (asng.theta.copy(), asng.s.copy(), asng.gamma, asng.Delta)
    samples = asng.sample(2)
    asng.update(samples, [1.5, 1.5])
    assert np.array_equal(asng.theta, before[0])
    assert np.array_equal(asng.s, before[1])
    assert (asng.gamma, asng.Delta) == before[2:]


def test_asng_rows_stay_on_the_simplex_above_the_floor() -> None:
    asng = run(ASNG(CATEGORIES, seed=4), steps=500)
    for i, k in enumerate(CATEGORIES):
        row = asng.theta[i, :k]
        assert row.sum() == pytest.approx(1.0)
        assert row.min() >= 1 / (len(CATEGORIES) * (k - 1)) - 1e-12
        assert (asng.theta[i, k:] == 0).all()


def test_asng_first_step_follows_the_reference_formulas() -> None:
    asng = ASNG([3, 2], seed=0)
    samples = np.array([[0, 1], [2, 1]])
    asng.update(samples, [0.0, 1.0])
    # G = 0.5 * (onehot_best - onehot_worst); row 2 identical in both samples -> no change there
    grad = np.array([[0.5, 0, -0.5], [0, 0, 0]])
    theta0 = np.array([1 / 3, 1 / 3, 1 / 3])
    s_row = grad[0, :2] / np.sqrt(theta0[:2]) + np.sqrt(theta0[:2]) * grad[0, :2].sum() / (
        theta0[2] + np.sqrt(theta0[2])
    )
    direction = np.concatenate([s_row, [0.0]])
    expected = theta0 + grad[0] / (np.linalg.norm(direction) + 1e-8)
    floor = 1 / (2 * 2)
    expected = np.maximum(expected, floor)
    total = expected.sum()
    expected -= (total - 1) * (expected - floor) / (total - 3 * floor)
    assert asng.theta[0, :3] == pytest.approx(expected / expected.sum())
    assert asng.theta[1, :2] == pytest.approx([0.5, 0.5])
    beta = 1 / np.sqrt(3)
    assert asng.gamma == pytest.approx(beta * (2 - beta))


def test_ranking_utilities() -> None:
    assert ranking_utilities(np.array([2.0, 1.0])).tolist() == [-1.0, 1.0]
    assert ranking_utilities(np.array([1.0, 1.0])).tolist() == [0.0, 0.0]
    assert ranking_utilities(np.array([4.0, 1.0, 3.0, 2.0])).tolist() == [-1.0, 1.0, 0.0, 0.0]


def test_registry_refuses_duplicates_and_unknown_names() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_searcher("asng")(ASNG)
    with pytest.raises(ValueError, match="allowed: .*asng"):
        create_searcher("nope", CATEGORIES)


@pytest.mark.parametrize("name", sorted(SEARCHERS))
class TestSearcherContract:
    def test_samples_are_valid_and_seeded(self, name: str) -> None:
        a, b = create_searcher(name, CATEGORIES, seed=7), create_searcher(name, CATEGORIES, seed=7)
        for _ in range(30):
            samples = a.sample(2)
            assert samples.shape == (2, len(CATEGORIES))
            assert ((samples >= 0) & (samples < np.array(CATEGORIES))).all()
            assert np.array_equal(samples, b.sample(2))
            a.update(samples, hamming(samples))
            b.update(samples, hamming(samples))
        assert np.array_equal(a.most_likely, b.most_likely)
        assert 0.0 < a.convergence <= 1.0

    def test_rejects_malformed_feedback(self, name: str) -> None:
        searcher = create_searcher(name, CATEGORIES, seed=0)
        samples = searcher.sample(2)
        with pytest.raises(ValueError):
            searcher.update(samples, [1.0])
        with pytest.raises(ValueError):
            searcher.update(samples, [1.0, float("nan")])
        with pytest.raises(ValueError):
            searcher.update(samples + 30, [1.0, 2.0])


@pytest.mark.parametrize("name", sorted(set(SEARCHERS) - {"random"}))
def test_at_least_as_good_as_random_search(name: str) -> None:
    """Random search is the reference: every searcher's answer must match or beat it on the same budget."""
    found, reference = [], []
    for seed in range(3):
        found.append(hamming(run(create_searcher(name, CATEGORIES, seed=seed), 600).most_likely[None])[0])
        reference.append(hamming(run(create_searcher("random", CATEGORIES, seed=seed), 600).most_likely[None])[0])
    assert np.median(found) < np.median(reference)
