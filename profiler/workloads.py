"""What runs while an entry is timed: an op as independent copies, or a whole network (or its head).

DESIGN.md section 7: a block timed alone runs with its weights warm in the caches, which it never has
inside a network, so the sum of such timings under-predicts whole networks by 10-18 %. An op is
therefore timed as ``copies`` independent instances (own weights and own input each) run one after
another, and the time is divided by ``copies``: every instance's data have been evicted by the others
by the time it runs again, as they are by the rest of the network. (Measured on the 2-core reference
machine under load: alone -22 %, 8 copies -11 %, 16 copies -9 % median bias against whole models.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from spaces import Architecture, Op
from spaces.modules import build_network, build_op, build_parts


@dataclass(frozen=True)
class Workload:
    """What one call times: ``modules[i]`` applied to ``inputs[i]``, doing ``executions`` executions of an entry.

    The modules are built on first use (from ``build``, which seeds torch itself, so they are the same
    whenever they are built): a runtime that runs a cached conversion of them (``profiler.runtimes``)
    needs only ``inputs`` and ``key``, which names what is built (op or architecture, copies, seed).
    """

    executions: int
    inputs: tuple[torch.Tensor, ...]
    key: str
    build: Callable[[], tuple[nn.Module, ...]]

    @cached_property
    def modules(self) -> tuple[nn.Module, ...]:
        return self.build()

    @cached_property
    def run(self) -> Callable[[], None]:
        """The timed call (torch eager)."""
        pairs = tuple(zip(self.modules, self.inputs, strict=True))

        def run() -> None:
            for module, x in pairs:
                module(x)

        return run


def _prepare(module: nn.Module, device: str) -> nn.Module:
    return module.to(device).eval()


def _inputs(shape: tuple[int, ...], count: int, *, device: str, seed: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(1, *shape, generator=generator).to(device) for _ in range(count))


def op_workload(op: Op, *, copies: int, device: str = "cpu", seed: int = 0) -> Workload:
    """``copies`` independent instances of ``op``, each applied to its own batch-1 input."""

    def build() -> tuple[nn.Module, ...]:
        torch.manual_seed(seed)
        return tuple(_prepare(build_op(op), device) for _ in range(copies))

    inputs = _inputs(op.input_shape, copies, device=device, seed=seed)
    return Workload(copies, inputs, f"{op.key}/copies{copies}/seed{seed}", build)


def model_workload(arch: Architecture, *, device: str = "cpu", seed: int = 0) -> Workload:
    """The whole network end to end, or with one split point its head (the first part) alone."""

    def build() -> tuple[nn.Module, ...]:
        torch.manual_seed(seed)
        network = build_parts(arch.with_splits(arch.split))[0] if arch.splits else build_network(arch)
        return (_prepare(network, device),)

    inputs = _inputs((3, arch.space.input_size, arch.space.input_size), 1, device=device, seed=seed)
    return Workload(1, inputs, f"{arch.space.name}/{arch.encode()}/seed{seed}", build)
