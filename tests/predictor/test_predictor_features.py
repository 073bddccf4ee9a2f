"""The additive cost terms under gbdt: consistent with the analytic costs, and fitted back when exact."""

from __future__ import annotations

import numpy as np
import pytest

from predictor.features import COST_TERMS, cost_matrix, cost_terms
from predictor.gbdt import fit_cost_model
from spaces import Op, get_space

MACS = ("conv1x1_mac", "grouped_conv1x1_mac", "depthwise_mac", "dense_mac")


@pytest.mark.parametrize("space", ["fbnet-cifar100", "fbnet-extended-cifar100"])
def test_cost_terms_split_every_op_macs_and_weights(space):
    s = get_space(space)
    ops = [*s.distinct_ops.values(), *(f.op for f in s.fixed_layers)]
    for op in ops:
        terms = cost_terms(op)
        assert sum(terms[name] for name in MACS) == op.macs
        assert terms["weight"] <= op.params  # convs' weights, without BN affine and biases
        assert terms["call"] == 1.0 and (terms["torch_op"] == 0) == op.is_identity


def test_grouped_block_counts_its_channel_shuffle():
    plain, grouped = Op("conv", 8, 32, 32, 1, 3, 2), Op("conv", 8, 32, 32, 1, 3, 2, groups=2)
    assert cost_terms(grouped)["torch_op"] == cost_terms(plain)["torch_op"] + 3
    assert cost_terms(grouped)["grouped_conv1x1_mac"] == cost_terms(plain)["conv1x1_mac"] / 2


def test_cost_model_recovers_the_coefficients_of_exactly_additive_latencies():
    ops = list(get_space("fbnet-cifar100").distinct_ops.values())
    costs = cost_matrix(ops)
    truth = np.array([0.004, 0.015, 2e-7, 1.5e-8, 2e-8, 2.5e-8, 1e-8, 7e-7, 4e-7])
    assert costs.shape == (len(ops), len(COST_TERMS))
    fitted = fit_cost_model(costs, costs @ truth, floor_ms=1e-3)
    np.testing.assert_allclose(costs @ fitted, costs @ truth, rtol=1e-3)
    assert (fitted >= 0).all()
