"""The HWNAS baselines (DESIGN.md 5.2): conventional hardware-aware NAS, split afterwards.

The search sees the whole model on the head (end) device and no packet loss; the split point is then
chosen to minimize NASC's objective for the found architecture, and the result is re-trained with
dropout at the split (``hwnas``) or without (``hwnas-nodropout``).
"""

from __future__ import annotations

from nas.methods import SearchContext, SearchResult, register_method
from nas.searchers import create_searcher
from nas.training import (
    choose_split,
    describe_whole,
    pretrained_supernet,
    retrain,
    update_distribution,
    whole_model_objective,
)


def hwnas(ctx: SearchContext, *, retrain_dropout: float) -> SearchResult:
    config = ctx.config
    supernet = pretrained_supernet(ctx, search_splits=False, drop=0.0)
    searcher = create_searcher("asng", supernet.categories, seed=config.seed, **config.searcher_options)
    update_distribution(ctx, supernet, searcher, whole_model_objective(ctx, supernet), describe_whole(ctx, supernet))
    blocks = searcher.most_likely
    split, scores = choose_split(ctx, supernet, blocks)
    arch = supernet.architecture(blocks, split)
    del supernet
    retrained = retrain(ctx, arch, drop=retrain_dropout)
    return SearchResult(
        arch.blocks, split, retrained.accuracy_at_loss, retrained.accuracy_clean, searcher.convergence,
        extra={"split_objective": {str(k): v for k, v in sorted(scores.items())}, "retrain_dropout": retrain_dropout},
        network=retrained.network,
    )


@register_method("hwnas")
def hwnas_dropout(ctx: SearchContext) -> SearchResult:
    """HWNAS, then the best split, re-trained with dropout at the split."""
    return hwnas(ctx, retrain_dropout=ctx.config.train_dropout)


@register_method("hwnas-nodropout")
def hwnas_no_dropout(ctx: SearchContext) -> SearchResult:
    """HWNAS, then the best split, re-trained without dropout."""
    return hwnas(ctx, retrain_dropout=0.0)
