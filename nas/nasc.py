"""NASC (DESIGN.md 5.1): one-shot joint search of the architecture and the split point.

``random`` and ``evolution`` run the same three stages with random search or regularized evolution
in place of ASNG in the distribution-update stage: the same supernet training, objective, latency
model and number of objective evaluations, so search quality is compared, not asserted.
"""

from __future__ import annotations

from nas.methods import SearchContext, SearchResult, decode, register_method
from nas.searchers import create_searcher
from nas.training import describe_split, pretrained_supernet, retrain, split_objective, update_distribution


def one_shot_search(ctx: SearchContext, searcher_name: str) -> SearchResult:
    """Pre-train the supernet over sampled paths and split points, search them jointly with the named
    searcher, then re-train the answer from scratch with dropout at its split point."""
    config = ctx.config
    supernet = pretrained_supernet(ctx, search_splits=True, drop=config.train_dropout,
                                   codec=ctx.split_latency.link.encoding)
    n_layers = len(supernet.layers)
    searcher = create_searcher(
        searcher_name, supernet.categories + [n_layers + 1], seed=config.seed, **config.searcher_options
    )
    update_distribution(ctx, supernet, searcher, split_objective(ctx, supernet), describe_split(ctx, supernet))
    blocks, split = decode(searcher.most_likely, n_layers)
    arch = supernet.architecture(blocks, split)
    del supernet
    retrained = retrain(ctx, arch, drop=config.train_dropout)
    return SearchResult(arch.blocks, arch.split, retrained.accuracy_at_loss, retrained.accuracy_clean,
                        searcher.convergence, network=retrained.network)


@register_method("nasc")
def nasc(ctx: SearchContext) -> SearchResult:
    """ASNG over the layers and the split point, objective l_SC + latency hinge."""
    return one_shot_search(ctx, "asng")


@register_method("random")
def random_search(ctx: SearchContext) -> SearchResult:
    """Random search over the layers and the split point, same objective and budget as NASC."""
    return one_shot_search(ctx, "random")


@register_method("evolution")
def evolution(ctx: SearchContext) -> SearchResult:
    """Regularized evolution over the layers and the split point, same objective and budget as NASC."""
    return one_shot_search(ctx, "evolution")
