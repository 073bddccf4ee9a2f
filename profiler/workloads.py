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

import torch
from torch import nn

from spaces import Architecture, Op
from spaces.modules import build_network, build_op, build_parts


@dataclass(frozen=True)
class Workload:
    """A callable doing ``executions`` executions of the measured thing, and the modules it runs."""

    run: Callable[[], object]
    executions: int
    modules: tuple[nn.Module, ...]


def _prepare(module: nn.Module, device: str) -> nn.Module:
    return module.to(device).eval()


def op_workload(op: Op, *, copies: int, device: str = "cpu", seed: int = 0) -> Workload:
    """``copies`` independent instances of ``op``, each applied to its own batch-1 input."""
    torch.manual_seed(seed)
    modules = tuple(_prepare(build_op(op), device) for _ in range(copies))
    inputs = tuple(torch.randn(1, *op.input_shape, device=device) for _ in range(copies))
    pairs = tuple(zip(modules, inputs, strict=True))

    def run() -> None:
        for module, x in pairs:
            module(x)

    return Workload(run, copies, modules)


def model_workload(arch: Architecture, *, device: str = "cpu", seed: int = 0) -> Workload:
    """The whole network end to end, or with one split point its head (the first part) alone."""
    torch.manual_seed(seed)
    network: nn.Module = build_parts(arch.with_splits(arch.split))[0] if arch.splits else build_network(arch)
    module = _prepare(network, device)
    x = torch.randn(1, 3, arch.space.input_size, arch.space.input_size, device=device)
    return Workload(lambda: module(x), 1, (module,))
