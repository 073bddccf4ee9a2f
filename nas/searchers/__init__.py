"""Ask/tell searchers over categorical variables: ASNG, random search, regularized evolution."""

from __future__ import annotations

from nas.searchers.asng import ASNG, ranking_utilities
from nas.searchers.base import SEARCHERS, Searcher, create_searcher, register_searcher
from nas.searchers.evolution import RegularizedEvolution
from nas.searchers.random_search import RandomSearch

__all__ = [
    "ASNG",
    "SEARCHERS",
    "RandomSearch",
    "RegularizedEvolution",
    "Searcher",
    "create_searcher",
    "ranking_utilities",
    "register_searcher",
]
