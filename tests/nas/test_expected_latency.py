"""E[T] of a topology: one-hot distributions give the completion latency, and mixed ones the exhaustive expectation."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch

from nas.expected_latency import ExpectedLatency, split_tuple_probs, split_tuples
from predictor.topology import completion_latency, topology_luts
from predictor.topology_file import parse_topology
from spaces import Architecture, get_space, sample_architecture
from tests.utils.synthetic_luts import synthetic_lut
from tests.utils.topologies import CHAIN, MESH, edited

torch.set_num_threads(1)


def setup(space_name: str, data: dict) -> tuple:
    space = get_space(space_name)
    topology = parse_topology(data)
    seeds = {name: i for i, name in enumerate(sorted({d.device for d in topology.devices}))}
    luts = topology_luts(topology, lambda device: synthetic_lut(space_name, device, seed=seeds[device], scale=1.05))
    for i, lut in enumerate(luts.values()):
        lut.call_ms = 0.1 * (i + 1)  # once per part a device runs: a branch pays all of it, whatever its share
        lut.wait_ms, lut.wait_share = 0.05 * (i + 1), 0.1 * i  # so is the wait after a link: the same formula
    return space, topology, luts, ExpectedLatency(space, topology, luts)


def one_hot(space, arch: Architecture) -> list[torch.Tensor]:
    probs = []
    for layer, name in zip(space.layers, arch.blocks, strict=True):
        p = torch.zeros(len(layer.blocks), dtype=torch.float64)
        p[layer.block_names.index(name)] = 1.0
        probs.append(p)
    return probs


@pytest.mark.parametrize(
    ("space_name", "data", "splits"),
    [
        ("mbconv-cifar100", CHAIN, [(3, 10), (0, 21), (1, 2)]),
        ("fbnet-extended-cifar100", CHAIN, [(5, 9), (0, 22), (12, 13)]),
        ("fbnet-extended-cifar100", MESH, [(4, 9, 15), (0, 1, 22), (2, 3, 4)]),
    ],
)
def test_one_hot_distributions_give_the_completion_latency(space_name: str, data: dict, splits: list) -> None:
    space, topology, luts, expected = setup(space_name, data)
    for seed, ks in itertools.product(range(4), splits):
        arch = sample_architecture(space, random.Random(seed)).with_splits(*ks)
        if seed == 3 and space.family == "fbnet":  # bottleneck blocks right before every split point
            blocks = list(arch.blocks)
            for k in ks:
                if k > 0:
                    blocks[k - 1] = "k5_e1/8"
            arch = Architecture(space, tuple(blocks), ks)
        value = expected(one_hot(space, arch), splits=ks)
        assert value.item() == pytest.approx(completion_latency(arch, topology, luts).total_ms, rel=1e-12)


def support_distribution(space, rng: random.Random, mixed: dict[int, list[str]]) -> tuple[list, list[list]]:
    """Per-layer probabilities: random over ``mixed[layer]`` blocks, one fixed block elsewhere."""
    base = sample_architecture(space, rng)
    probs, support = [], []
    for layer, name in zip(space.layers, base.blocks, strict=True):
        names = mixed.get(layer.index, [name])
        weights = [rng.uniform(0.2, 1.0) for _ in names]
        p = torch.zeros(len(layer.blocks), dtype=torch.float64)
        for n, w in zip(names, weights, strict=True):
            p[layer.block_names.index(n)] = w / sum(weights)
        probs.append(p)
        support.append([(n, p[layer.block_names.index(n)].item()) for n in names])
    return probs, support


def exhaustive(space, topology, luts, support, split_weights: dict[tuple[int, ...], float]) -> float:
    total = 0.0
    for choice in itertools.product(*support):
        p_arch = math.prod(p for _, p in choice)
        blocks = tuple(n for n, _ in choice)
        for ks, p_split in split_weights.items():
            arch = Architecture(space, blocks, ks)
            total += p_arch * p_split * completion_latency(arch, topology, luts).total_ms
    return total


def test_expectation_at_fixed_splits_equals_the_exhaustive_expectation() -> None:
    space, topology, luts, expected = setup("fbnet-extended-cifar100", CHAIN)
    # layers 4 and 8 end the first two devices (split inside bottlenecks with some probability)
    mixed = {4: ["k3_e1/2", "k5_e6", "skip"], 8: ["k5_e1/4", "k3_e3"], 15: ["k3_e1", "k5_e1/8", "k5_e3"]}
    probs, support = support_distribution(space, random.Random(0), mixed)
    value = expected(probs, splits=(5, 9))
    assert value.item() == pytest.approx(exhaustive(space, topology, luts, support, {(5, 9): 1.0}), rel=1e-12)


def test_expectation_over_searched_splits_equals_the_exhaustive_expectation() -> None:
    space, topology, luts, expected = setup("mbconv-cifar100", CHAIN)
    mixed = {0: ["k3_e3", "k7_e6"], 2: ["k5_e3", "identity", "k3_e6_res"], 9: ["k5_e6", "k7_e3_res"]}
    probs, support = support_distribution(space, random.Random(1), mixed)
    n = len(space.layers)
    # each split point's categorical puts mass on a few positions; the product is renormalized over
    # strictly increasing pairs, so (3, 3) and (10, 3) get no mass
    allowed = [{0: 0.2, 3: 0.5, 10: 0.3}, {3: 0.1, 10: 0.6, n: 0.3}]
    logits = torch.full((2, n + 1), -math.inf, dtype=torch.float64)
    for j, masses in enumerate(allowed):
        for k, q in masses.items():
            logits[j, k] = math.log(q)
    raw = {ks: allowed[0][ks[0]] * allowed[1][ks[1]] for ks in itertools.product(allowed[0], allowed[1])
           if ks[0] < ks[1]}
    weights = {ks: w / sum(raw.values()) for ks, w in raw.items()}
    value = expected(probs, split_logits=logits)
    assert value.item() == pytest.approx(exhaustive(space, topology, luts, support, weights), rel=1e-12)


def test_mesh_expectation_is_the_max_of_branch_expectations() -> None:
    mixed = {10: ["k3_e1", "k5_e6", "skip"], 12: ["k3_e3", "k5_e1_g2"]}
    # identical branch devices and links: every architecture has the same slowest branch, so exact
    same = edited(edited(MESH, "devices.3", {"name": "e2", "device": "e1"}), "links.2.bandwidth_mbps", 50)
    same = edited(edited(same, "links.4.bandwidth_mbps", 100), "branches", ["e1", "e2"])
    space, topology, luts, expected = setup("fbnet-cifar100", same)
    probs, support = support_distribution(space, random.Random(2), mixed)
    value = expected(probs, splits=(4, 9, 15))
    assert value.item() == pytest.approx(exhaustive(space, topology, luts, support, {(4, 9, 15): 1.0}), rel=1e-12)
    # different branches: a lower bound of the exhaustive expectation (Jensen)
    space, topology, luts, expected = setup("fbnet-cifar100", MESH)
    value = expected(probs, splits=(4, 9, 15))
    assert value.item() <= exhaustive(space, topology, luts, support, {(4, 9, 15): 1.0}) + 1e-9


def test_gradients_flow_to_op_and_split_logits() -> None:
    space, topology, luts, expected = setup("mbconv-cifar100", CHAIN)
    alphas = [torch.randn(len(layer.blocks), dtype=torch.float64, requires_grad=True) for layer in space.layers]
    split_logits = torch.randn(2, len(space.layers) + 1, dtype=torch.float64, requires_grad=True)

    def value(split_logits: torch.Tensor, a0: torch.Tensor) -> torch.Tensor:
        probs = [torch.softmax(a, 0) for a in [a0, *alphas[1:]]]
        return expected(probs, split_logits=split_logits)

    assert torch.autograd.gradcheck(value, (split_logits, alphas[0]))


def test_split_tuples_and_their_distribution() -> None:
    tuples = split_tuples(5, 2)
    assert len(tuples) == math.comb(6, 2) and bool((tuples[:, 0] < tuples[:, 1]).all())
    uniform = split_tuple_probs(torch.zeros(2, 6), tuples)
    assert torch.allclose(uniform, torch.full((15,), 1 / 15))
    with pytest.raises(ValueError, match="too many to enumerate"):
        split_tuples(60, 6)


def test_inputs_are_checked() -> None:
    space, topology, luts, expected = setup("mbconv-cifar100", CHAIN)
    probs = one_hot(space, sample_architecture(space, random.Random(0)))
    with pytest.raises(ValueError, match="either fixed splits or split_logits"):
        expected(probs)
    with pytest.raises(ValueError, match="expected 21 per-layer distributions"):
        expected(probs[:-1], splits=(2, 5))
    with pytest.raises(ValueError, match=r"split_logits must have shape \(2, 22\)"):
        expected(probs, split_logits=torch.zeros(3, 22))
    holey = dict(luts)
    holey["ue"].table[4, 0] = math.nan
    with pytest.raises(ValueError, match="latency table of 'ue' has no value for block 'k3_e3' at layer 4"):
        ExpectedLatency(space, topology, holey)
