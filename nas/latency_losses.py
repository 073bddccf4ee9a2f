"""How the gradient search weighs accuracy against expected latency (DESIGN.md section 5.4), and the registry.

Each form maps the cross-entropy and the expected latency E[T] (ms) of the architecture distribution to
the loss of an architecture step. The weight decay term lambda_1 * ||w||^2 of the squared form does not
depend on the architecture parameters; it is the weight optimizer's decay (``2 * lambda_1``).
"""

from __future__ import annotations

import math

import torch

from spaces.registry import registrar


class LatencyLoss:
    """Combines cross-entropy and E[T] against a latency target ``target_ms``."""

    name: str = ""

    def __init__(self, target_ms: float, weight: float | None = None) -> None:
        if not (math.isfinite(target_ms) and target_ms > 0):
            raise ValueError(f"the latency target must be a positive number of ms, got {target_ms}")
        self.target_ms = target_ms
        self.weight = self.default_weight(target_ms) if weight is None else weight
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"the latency weight must be a non-negative number, got {self.weight}")

    def default_weight(self, target_ms: float) -> float:
        raise NotImplementedError

    def __call__(self, ce: torch.Tensor, expected_ms: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


LATENCY_LOSSES: dict[str, type[LatencyLoss]] = {}


register_latency_loss = registrar(LATENCY_LOSSES, "latency loss", attribute="name")


def create_latency_loss(name: str, target_ms: float, weight: float | None = None) -> LatencyLoss:
    if name not in LATENCY_LOSSES:
        raise ValueError(f"unknown latency loss {name!r}; allowed: {', '.join(sorted(LATENCY_LOSSES))}")
    return LATENCY_LOSSES[name](target_ms, weight)


@register_latency_loss("squared")
class SquaredPenalty(LatencyLoss):
    """JMSNAS: CE + lambda_2 (E[T] - T_const)^2, pulling E[T] towards the constraint from both sides.

    lambda_2 defaults to 1 / T_const^2: missing the constraint by its whole value costs one nat.
    """

    def default_weight(self, target_ms: float) -> float:
        return 1.0 / target_ms**2

    def __call__(self, ce: torch.Tensor, expected_ms: torch.Tensor) -> torch.Tensor:
        return ce + self.weight * (expected_ms - self.target_ms) ** 2


@register_latency_loss("hinge")
class HingePenalty(LatencyLoss):
    """NASC (DESIGN.md 5.1): CE + eps_lat * max(0, E[T] - T_th); eps_lat = 1 per ms as in the reference."""

    def default_weight(self, target_ms: float) -> float:
        return 1.0

    def __call__(self, ce: torch.Tensor, expected_ms: torch.Tensor) -> torch.Tensor:
        return ce + self.weight * torch.relu(expected_ms - self.target_ms)


@register_latency_loss("log")
class LogProduct(LatencyLoss):
    """ProxylessNAS ``mul#log``: CE * (log E[T] / log T_ref)^beta, with ``weight`` the exponent beta (0.6).

    Latencies are in ms; T_ref must exceed 1 ms, and E[T] is floored just above 1 ms so the log stays positive.
    """

    def __init__(self, target_ms: float, weight: float | None = None) -> None:
        super().__init__(target_ms, weight)
        if target_ms <= 1.0:
            raise ValueError(f"the log form needs a reference latency above 1 ms, got {target_ms}")

    def default_weight(self, target_ms: float) -> float:
        return 0.6

    def __call__(self, ce: torch.Tensor, expected_ms: torch.Tensor) -> torch.Tensor:
        ratio = torch.log(expected_ms.clamp(min=1.01)) / math.log(self.target_ms)
        return ce * ratio**self.weight
