"""What a search found, kept: the re-trained weights of its answer in a file next to the job.

The file (``<job>.weights.pt``, written by ``torch.save``, read back with ``weights_only=True``) holds the
space, the architecture with its split points, the codec of every cut, the class count, the input shape
and the ``nas.supernet.SplitNetwork`` state dict; the job's result names it (``result.weights``), and
``load_searched_network(job)`` rebuilds the network from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import torch

from nas.results import Job
from nas.supernet import SplitNetwork
from spaces import Architecture
from spaces.errors import UserError

WEIGHTS_FORMAT: Final = 1


class SearchedNetworkError(UserError, ValueError):
    """A job whose network cannot be loaded (not finished, no weights, a missing or foreign file)."""


@dataclass(frozen=True)
class SearchedNetwork:
    """What the weights file says about its network."""

    job: str
    space: str
    architecture: str
    splits: tuple[int, ...]
    codecs: tuple[str, ...]
    num_classes: int
    input_shape: tuple[int, ...]

    @property
    def arch(self) -> Architecture:
        return Architecture.parse(self.architecture, self.space)


def weights_path(job_file: Path) -> Path:
    """Where the weights of the job written to ``job_file`` go: ``job.json`` -> ``job.weights.pt``."""
    return job_file.with_suffix(".weights.pt")


def describe_network(network: SplitNetwork, *, job: str) -> SearchedNetwork:
    """What rebuilds ``network``: its space, architecture, splits, codecs, classes and input shape (batch 1)."""
    arch = network.arch
    return SearchedNetwork(
        job=job, space=arch.space.name, architecture=arch.encode(), splits=arch.splits,
        codecs=tuple(codec.name for codec in network.codecs), num_classes=network.num_classes,
        input_shape=(1, *arch.space.prefix[0].op.input_shape),
    )


def save_searched_network(network: SplitNetwork, path: Path, *, job: str) -> Path:
    """Write ``network`` with what rebuilds it; written whole or not at all (temporary file, then renamed)."""
    meta = describe_network(network, job=job)
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    state = {name: value.detach().cpu() for name, value in network.state_dict().items()}
    torch.save({"format": WEIGHTS_FORMAT, "meta": meta.__dict__, "state_dict": state}, partial)
    os.replace(partial, path)
    return path


def load_searched_network(
    job: Job, *, map_location: str | torch.device = "cpu"
) -> tuple[SplitNetwork, SearchedNetwork]:
    """The re-trained network of a finished job (eval mode) and what its weights file says about it."""
    if job.status != "completed" or job.result is None:
        raise SearchedNetworkError(f"job {job.uid} is {job.status}: only a completed search has a network")
    if job.result.weights is None:
        raise SearchedNetworkError(
            f"job {job.uid} kept no weights (searched before splitnas stored them): run the search again"
        )
    path = Path(job.result.weights)
    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise SearchedNetworkError(f"job {job.uid}: its weights file {path} does not exist (moved or deleted?)") \
            from None
    except Exception as exc:  # a torn or foreign file: torch raises several kinds
        raise SearchedNetworkError(f"job {job.uid}: cannot read its weights file {path}: {exc}") from None
    if not isinstance(saved, dict) or saved.get("format") != WEIGHTS_FORMAT:
        raise SearchedNetworkError(f"job {job.uid}: {path} is not a splitnas weights file of format {WEIGHTS_FORMAT}")
    meta = _meta(saved["meta"])
    if meta.architecture != job.result.architecture:
        raise SearchedNetworkError(
            f"job {job.uid}: {path} holds {meta.architecture}, not the job's answer {job.result.architecture}"
        )
    network = SplitNetwork(meta.arch, meta.num_classes, meta.codecs)
    network.load_state_dict(saved["state_dict"])
    return network.eval(), meta


def _meta(data: dict[str, Any]) -> SearchedNetwork:
    return SearchedNetwork(
        job=str(data["job"]), space=str(data["space"]), architecture=str(data["architecture"]),
        splits=tuple(int(k) for k in data["splits"]), codecs=tuple(str(c) for c in data["codecs"]),
        num_classes=int(data["num_classes"]), input_shape=tuple(int(n) for n in data["input_shape"]),
    )
