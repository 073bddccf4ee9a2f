"""The three loss forms of the gradient method on numbers, their gradients, and the registry."""

from __future__ import annotations

import math

import pytest
import torch

from nas.latency_losses import LATENCY_LOSSES, create_latency_loss, register_latency_loss


def value_and_grad(name: str, ce: float, expected: float, target: float, weight: float | None = None):
    e = torch.tensor(expected, dtype=torch.float64, requires_grad=True)
    loss = create_latency_loss(name, target, weight)(torch.tensor(ce, dtype=torch.float64), e)
    loss.backward()
    return loss.item(), e.grad.item()


def test_squared_form_pulls_towards_the_constraint_from_both_sides() -> None:
    value, grad = value_and_grad("squared", 2.0, 30.0, 20.0, 0.01)
    assert value == pytest.approx(2.0 + 0.01 * 100) and grad == pytest.approx(0.01 * 2 * 10)
    _, grad = value_and_grad("squared", 2.0, 10.0, 20.0, 0.01)
    assert grad < 0  # below the constraint the penalty pushes E[T] up
    assert create_latency_loss("squared", 20.0).weight == pytest.approx(1 / 400)


def test_hinge_form_only_penalizes_excess_latency() -> None:
    assert value_and_grad("hinge", 2.0, 25.0, 20.0) == (pytest.approx(7.0), pytest.approx(1.0))
    assert value_and_grad("hinge", 2.0, 15.0, 20.0) == (pytest.approx(2.0), pytest.approx(0.0))


def test_log_form_is_proxylessnas_multiplicative_form() -> None:
    value, grad = value_and_grad("log", 2.0, 40.0, 20.0, 0.6)
    ratio = math.log(40) / math.log(20)
    assert value == pytest.approx(2.0 * ratio**0.6)
    assert grad == pytest.approx(2.0 * 0.6 * ratio**-0.4 / (40 * math.log(20)))
    assert value_and_grad("log", 2.0, 20.0, 20.0)[0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="reference latency above 1 ms"):
        create_latency_loss("log", 0.5)


def test_registry_and_argument_errors() -> None:
    assert set(LATENCY_LOSSES) == {"squared", "hinge", "log"}
    with pytest.raises(ValueError, match="unknown latency loss 'cubic'; allowed: hinge, log, squared"):
        create_latency_loss("cubic", 10.0)
    with pytest.raises(ValueError, match="already registered"):
        register_latency_loss("hinge")(LATENCY_LOSSES["hinge"])
    with pytest.raises(ValueError, match="positive number of ms"):
        create_latency_loss("hinge", -3.0)
    with pytest.raises(ValueError, match="non-negative"):
        create_latency_loss("hinge", 3.0, -1.0)
