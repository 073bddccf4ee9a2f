"""Weight and architecture steps of the binary-gate search on a real supernet (tiny images, few steps)."""

from __future__ import annotations

import pytest
import torch

from nas.expected_latency import ExpectedLatency
from nas.gates import GatedSupernet
from nas.gradient import GradientSearch
from nas.latency_losses import create_latency_loss
from predictor.topology import completion_latency, topology_luts
from predictor.topology_file import parse_topology
from tests.utils.synthetic_luts import synthetic_lut
from tests.utils.topologies import CHAIN, MESH

torch.set_num_threads(1)
SPACE = "mbconv-cifar100"


@pytest.fixture(scope="module")
def parts() -> tuple:
    topology = parse_topology(CHAIN)
    seeds = {"pi": 0, "pc": 1, "gpu": 2}
    speeds = {"pi": 0.2, "pc": 1.0, "gpu": 5.0}
    luts = topology_luts(topology, lambda d: synthetic_lut(SPACE, d, seed=seeds[d], speed=speeds[d]))
    torch.manual_seed(0)
    supernet = GatedSupernet(SPACE, num_classes=4)
    return topology, luts, ExpectedLatency(supernet.space, topology, luts), supernet


def make_search(parts, loss: str, target: float, *, splits=(3, 10), weight=None, arch_lr=0.05) -> GradientSearch:
    _, _, expected, supernet = parts
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    return GradientSearch(supernet, expected, create_latency_loss(loss, target, weight), splits=splits,
                          weight_optimizer=optimizer, arch_lr=arch_lr, seed=0)


def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(4, 3, 8, 8, generator=generator), torch.randint(0, 4, (4,), generator=generator)


def test_a_weight_step_updates_only_the_sampled_path(parts) -> None:
    search = make_search(parts, "hinge", 10.0)
    supernet = search.supernet
    before = {k: v.clone() for k, v in supernet.state_dict().items() if "running" not in k and "num_batches" not in k}
    generator_state = search.params.generator.get_state()
    paths = search.params.sample_paths()
    search.params.generator.set_state(generator_state)  # the step draws the same paths
    search.weight_step(*batch(0))
    after = supernet.state_dict()
    for i, ops in enumerate(supernet.layers):
        for j, _ in enumerate(ops):
            prefix = f"layers.{i}.{j}."
            changed = any(not torch.equal(v, after[k]) for k, v in before.items() if k.startswith(prefix))
            has_weights = any(k.startswith(prefix) for k in before)
            assert changed == (has_weights and j == paths[i]), (i, j)
    assert all(a.grad is None for a in search.params.alphas)


def test_architecture_steps_cut_expected_latency_under_a_tight_constraint(parts) -> None:
    topology, luts, _, _ = parts
    search = make_search(parts, "hinge", 1.5, weight=1.0)
    start = search.expected_ms().item()
    for step in range(4):
        record = search.arch_step(*batch(step))
        assert record["expected_ms"] > 0 and record["loss"] > record["ce"]
    assert search.expected_ms().item() < start
    blocks, splits = search.answer()
    assert splits == (3, 10)
    arch = search.supernet.architecture(blocks).with_splits(*splits)
    assert completion_latency(arch, topology, luts).total_ms > 0


def test_the_squared_form_pulls_latency_up_towards_a_loose_constraint(parts) -> None:
    search = make_search(parts, "squared", 500.0, weight=1.0)
    start = search.expected_ms().item()
    assert start < 500
    for step in range(3):
        search.arch_step(*batch(step))
    assert search.expected_ms().item() > start


def test_searched_split_points_move_to_faster_assignments(parts) -> None:
    search = make_search(parts, "hinge", 1.0, splits=None, weight=1.0, arch_lr=0.2)
    uniform = search.expected_ms().item()
    for step in range(3):
        search.arch_step(*batch(step))
    assert search.params.split_logits.abs().sum() > 0
    assert search.expected_ms().item() < uniform
    splits = search.most_likely_splits()
    assert len(splits) == 2 and splits[0] < splits[1]
    top = search.split_distribution(3)
    assert [t["splits"] for t in top][0] == list(splits) and top[0]["p"] >= top[1]["p"]


def test_a_mesh_with_searched_split_points(parts) -> None:
    _, _, _, supernet = parts
    topology = parse_topology(MESH)
    seeds = {name: i for i, name in enumerate(sorted({d.device for d in topology.devices}))}
    luts = topology_luts(topology, lambda d: synthetic_lut(SPACE, d, seed=seeds[d]))
    expected = ExpectedLatency(supernet.space, topology, luts)
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.01)
    search = GradientSearch(supernet, expected, create_latency_loss("hinge", 1.0), splits=None,
                            weight_optimizer=optimizer, arch_lr=0.2, seed=1)
    assert len(expected.tuples) == 1540  # ue | root | branches | merge: 3 increasing split points of 22
    start = search.expected_ms().item()
    search.arch_step(*batch(0))
    assert search.expected_ms().item() < start
    blocks, splits = search.answer()
    arch = supernet.architecture(blocks).with_splits(*splits)
    assert completion_latency(arch, topology, luts).critical_branch in ("e1", "e2")
