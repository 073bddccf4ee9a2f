"""Black-box joint search of the architecture, the split point and training hyperparameters (``tune``).

Every trial samples one block per layer, a split point, a learning rate, a batch size and the training
dropout at the split (Optuna's TPE through Ray Tune's ``OptunaSearch``), trains that network from scratch
with the re-training loop of ``nas.training``, and reports NASC's J after every epoch: l_SC on the
validation split plus the latency hinge (``nas.training.network_objective``). ASHA stops unpromising
trials early, epochs being the fidelity. The best trial (lowest J at its last epoch) is then re-trained
from scratch for ``retrain_epochs`` with its hyperparameters, as NASC re-trains its answer: trials train
at most ``tune.epochs``, so the trial's own network is not the equivalent of a re-trained one.

Ray and Optuna are imported when the method runs (the ``sweep`` extra). A Ray already
initialized in this process (or reachable at ``RAY_ADDRESS``) is used, else a local one is started with the
machine's cores. Ray Tune's files go to a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from contextlib import redirect_stdout
from typing import Any

import torch

from nas.config import SearchConfig, TuneOptions
from nas.data import ImageData
from nas.latency import SplitLatencyModel
from nas.methods import SearchContext, SearchResult, register_method
from nas.training import network_objective, retrain, training_epochs
from spaces import Architecture, SearchSpace

METRIC = "objective"


def ensure_ray() -> None:
    """A Ray to run trials on: this process's, the cluster at ``RAY_ADDRESS``, or a new local one, quiet."""
    import ray

    if ray.is_initialized():
        return
    quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if os.environ.get("RAY_ADDRESS"):
        ray.init(**quiet)  # ray.init reads the address itself
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, **quiet)


def search_space(space: SearchSpace, options: TuneOptions) -> dict[str, Any]:
    """Optuna distributions of a trial's variables: ``layer<i>`` (block names), ``split`` and the hyperparameters."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    layers = {f"layer{layer.index}": CategoricalDistribution(layer.block_names) for layer in space.layers}
    return layers | {
        "split": CategoricalDistribution(list(space.split_points)),
        "lr": FloatDistribution(options.lr_min, options.lr_max, log=True),
        "batch_size": CategoricalDistribution(list(options.batch_sizes)),
        "dropout": FloatDistribution(options.dropout_min, options.dropout_max),
    }


def trial_architecture(space: SearchSpace, params: dict[str, Any]) -> Architecture:
    return Architecture(space, tuple(params[f"layer{layer.index}"] for layer in space.layers), (int(params["split"]),))


def trial_config(config: SearchConfig, params: dict[str, Any], *, epochs: int) -> SearchConfig:
    """``config`` training a trial's network: its learning rate, batch size and dropout, for ``epochs``."""
    return config.model_copy(update={
        "batch_size": int(params["batch_size"]),
        "train_dropout": float(params["dropout"]),
        "retrain_epochs": epochs,
        "retrain_optimizer": config.retrain_optimizer.model_copy(update={"lr": float(params["lr"])}),
    })


def hyperparameters(params: dict[str, Any]) -> dict[str, float]:
    return {"lr": float(params["lr"]), "batch_size": int(params["batch_size"]), "dropout": float(params["dropout"])}


def run_trial(
    params: dict[str, Any], *, config: SearchConfig, data: ImageData, latency: SplitLatencyModel, device: str
) -> None:
    """One trial in a Ray worker: train its network epoch by epoch, reporting J and the steps trained so far."""
    from ray import tune

    torch.set_num_threads(1)  # trials run side by side on the cores Ray gives them
    ctx = SearchContext(trial_config(config, params, epochs=config.tune.epochs), data, latency, torch.device(device))
    arch = trial_architecture(latency.space, params)
    steps = 0
    for network in training_epochs(ctx, arch, drop=ctx.config.train_dropout):
        steps += ctx.steps("train")
        tune.report({METRIC: network_objective(ctx, network), "steps": steps})


def _tune_modules() -> Any:
    try:
        from optuna import logging as optuna_logging
        from optuna.samplers import TPESampler
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.optuna import OptunaSearch
    except ImportError as exc:
        raise ValueError(f"--method tune runs on Ray Tune with Optuna, and {exc.name or 'ray'} is not installed: "
                         "install splitnas with its sweep extra (scripts/setup.sh does)") from None
    optuna_logging.set_verbosity(optuna_logging.WARNING)  # no line per study created
    return tune, ASHAScheduler, OptunaSearch, TPESampler


@register_method("tune")
def tune_search(ctx: SearchContext) -> SearchResult:
    """TPE over (blocks, split, lr, batch size, dropout) with ASHA early stopping; the best trial re-trained."""
    tune, ASHAScheduler, OptunaSearch, TPESampler = _tune_modules()
    config, options, latency = ctx.config, ctx.config.tune, ctx.split_latency
    ensure_ray()

    class TrialProgress(tune.Callback):  # type: ignore[name-defined]
        """Each finished trial as one ``search`` record of the job (in the order trials finish)."""

        def __init__(self) -> None:
            self.done = 0

        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self.done += 1
            arch = trial_architecture(latency.space, trial.config)
            ctx.callback.on_step("search")
            ctx.callback.on_epoch({
                "stage": "search", "epoch": self.done, "loss": trial.last_result[METRIC], "arch": arch.encode(),
                "latency_ms": latency.breakdown(arch)["total_ms"],
                "trial_epochs": trial.last_result["training_iteration"], **hyperparameters(trial.config),
            })

    searcher = OptunaSearch(
        space=search_space(latency.space, options), metric=METRIC, mode="min",
        sampler=TPESampler(seed=config.seed, n_startup_trials=options.startup_trials),
    )
    scheduler = ASHAScheduler(metric=METRIC, mode="min", max_t=options.epochs, grace_period=options.grace_epochs,
                              reduction_factor=options.reduction_factor)
    resources = {"cpu": 1} | ({"gpu": 1 / options.concurrent} if ctx.device.type == "cuda" else {})
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, config=config, data=ctx.data, latency=latency, device=str(ctx.device)),
        resources,
    )
    ctx.begin_stage("search", options.trials, 1)
    # Ray Tune prints its experiment's settings on stdout even at verbose 0
    with tempfile.TemporaryDirectory(prefix="splitnas-tune-") as storage, redirect_stdout(io.StringIO()):
        results = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=options.trials,
                                        max_concurrent_trials=options.concurrent),
            run_config=tune.RunConfig(name="tune", storage_path=storage, verbose=0, callbacks=[TrialProgress()]),
        ).fit()
        if results.errors:
            raise RuntimeError(f"{len(results.errors)} of {len(results)} tune trials failed; the first: "
                               f"{results.errors[0]}")
        trials = [results[i] for i in range(len(results))]
        best = results.get_best_result(metric=METRIC, mode="min", scope="last")
    params = dict(best.config)
    arch = trial_architecture(latency.space, params)
    best_ctx = SearchContext(trial_config(config, params, epochs=config.retrain_epochs), ctx.data, ctx.latency,
                             ctx.device, ctx.callback)
    retrained = retrain(best_ctx, arch, drop=best_ctx.config.train_dropout)
    return SearchResult(
        arch.blocks, arch.split, retrained.accuracy_at_loss, retrained.accuracy_clean,
        extra={
            "hyperparameters": hyperparameters(params), "trials": len(trials),
            "trial_epochs": sum(int(t.metrics["training_iteration"]) for t in trials),
            "trial_steps": sum(int(t.metrics["steps"]) for t in trials),
            "trial_objective": float(best.metrics[METRIC]),
        },
        network=retrained.network,
    )
