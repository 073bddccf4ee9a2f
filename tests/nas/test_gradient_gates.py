"""Binary gates: the gate gradient against exact enumeration and finite differences, rescaling, sampling."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.gates import ArchitectureParameters, GatedSupernet, gate_gradient
from spaces import Op, sample_architecture
from spaces.modules import build_op

torch.set_num_threads(1)


def tiny_layer() -> nn.ModuleList:
    """Four candidate ops of one small MBConv layer (4 channels at 6x6): three MBConvs and the identity."""
    torch.manual_seed(0)
    ops = [
        Op("mbconv", 6, 4, 4, 1, 3, 3, residual=False, act="relu6"),
        Op("mbconv", 6, 4, 4, 1, 5, 6, residual=True, act="relu6"),
        Op("mbconv", 6, 4, 4, 1, 7, 3, residual=True, act="relu6"),
        Op("identity", 6, 4, 4, 1, act="relu6"),
    ]
    layer = nn.ModuleList(build_op(op) for op in ops)
    return layer.double().eval()


def mixed(layer: nn.ModuleList, x: torch.Tensor, path: list[int], gate: torch.Tensor) -> torch.Tensor:
    return sum(g * layer[j](x) for g, j in zip(gate, path, strict=True))


def gate_grads(arch: ArchitectureParameters, layer, x, path, gate, loss_fn) -> torch.Tensor:
    """alpha.grad after one backward of ``loss_fn`` through the gated pair (the search's own code path)."""
    arch.zero_grad()
    gate = gate.detach().clone().requires_grad_()
    loss_fn(mixed(layer, x, path, gate)).backward()
    arch.add_gate_gradients([tuple(path)], [gate])
    return arch.alphas[0].grad.clone()


@pytest.fixture
def setting() -> tuple:
    layer = tiny_layer()
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    head = torch.randn(4 * 36, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    arch = ArchitectureParameters([4], seed=0).double()
    with torch.no_grad():
        arch.alphas[0].copy_(torch.tensor([0.3, -0.5, 1.1, 0.2]))
    return layer, x, head, arch


@pytest.mark.parametrize("path", [[0, 1, 2, 3], [2, 0], [1, 3]])
def test_gate_gradient_of_a_linear_loss_equals_exact_enumeration(setting, path: list[int]) -> None:
    """For L linear in the output, the binary-gate gradient is exact: d/dalpha of sum_j p_j L(out_j)."""
    layer, x, head, arch = setting
    y = torch.tensor([0, 2])

    def linear_loss(out: torch.Tensor) -> torch.Tensor:
        return (out.flatten(1) @ head)[torch.arange(2), y].sum()

    alpha = arch.alphas[0].detach().clone().requires_grad_()
    p = torch.softmax(alpha[path], 0)
    enumerated = sum(p[i] * linear_loss(layer[j](x)) for i, j in enumerate(path))
    (exact,) = torch.autograd.grad(enumerated, alpha)
    for active in range(len(path)):  # whichever path the binary gate switched on
        gate = F.one_hot(torch.tensor(active), len(path)).double()
        assert torch.allclose(gate_grads(arch, layer, x, path, gate, linear_loss), exact, atol=1e-10)
    unsampled = [i for i in range(4) if i not in path]
    assert torch.all(exact[unsampled] == 0)


def test_gate_gradient_at_soft_gates_equals_finite_differences(setting) -> None:
    """For a nonlinear loss (cross-entropy), gates set to p give the gradient of L(sum_j p_j out_j)."""
    layer, x, head, arch = setting
    y = torch.tensor([1, 2])
    path = [0, 1, 2, 3]

    def ce(out: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out.flatten(1) @ head, y)

    def relaxed(alpha: torch.Tensor) -> float:
        with torch.no_grad():
            return ce(mixed(layer, x, path, torch.softmax(alpha, 0))).item()

    alpha = arch.alphas[0].detach().clone()
    grad = gate_grads(arch, layer, x, path, torch.softmax(alpha, 0), ce)
    eps = 1e-6
    for i in range(4):
        step = torch.zeros(4, dtype=torch.float64)
        step[i] = eps
        fd = (relaxed(alpha + step) - relaxed(alpha - step)) / (2 * eps)
        assert grad[i].item() == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_gate_gradient_formula_on_numbers() -> None:
    alpha = torch.tensor([0.0, 0.0])
    # p = (1/2, 1/2): dL/dalpha_0 = g0 p0 (1 - p0) - g1 p1 p0 = (g0 - g1) / 4
    assert torch.allclose(gate_gradient(alpha, torch.tensor([3.0, 1.0])), torch.tensor([0.5, -0.5]))


def test_rescaling_keeps_the_unsampled_probabilities(setting) -> None:
    layer, x, head, arch = setting
    y = torch.tensor([0, 1])
    optimizer = torch.optim.Adam(arch.parameters(), lr=0.3, betas=(0.0, 0.999))
    before = arch.probs()[0].detach().clone()
    pair = (2, 0)
    gate = torch.tensor([0.0, 1.0], dtype=torch.float64)
    snapshot = arch.snapshot([pair])
    grad = gate_grads(arch, layer, x, list(pair), gate, lambda o: F.cross_entropy(o.flatten(1) @ head, y))
    arch.alphas[0].grad = grad
    optimizer.step()
    arch.rescale_pairs([pair], snapshot)
    after = arch.probs()[0].detach()
    assert torch.allclose(after[[1, 3]], before[[1, 3]], atol=1e-12)
    assert after[[0, 2]].sum().item() == pytest.approx(before[[0, 2]].sum().item(), abs=1e-12)
    assert not torch.allclose(after[[0, 2]], before[[0, 2]])
    # the pair moved against its gradient: the op with the larger gradient lost probability
    moved = (after - before)[[2, 0]]
    assert torch.sign(moved[0]) == -torch.sign(grad[2])


def test_sampling_follows_the_probabilities() -> None:
    arch = ArchitectureParameters([3, 1, 4], seed=3)
    with torch.no_grad():
        arch.alphas[0].copy_(torch.tensor([2.0, 0.0, -1.0]))
    counts = torch.zeros(3)
    for _ in range(3000):
        counts[arch.sample_paths()[0]] += 1
    assert torch.allclose(counts / 3000, arch.probs()[0].detach(), atol=0.03)
    pairs = arch.sample_pairs()
    assert len(set(pairs[0])) == 2 and pairs[1] == (0,) and len(set(pairs[2])) == 2
    gates = arch.sample_gates(pairs)
    assert [g.detach().sum().item() for g in gates] == [1.0, 1.0, 1.0]
    assert arch.most_likely == [0, 0, 0] and 0 < arch.convergence <= 1


def test_gated_supernet_paths_are_the_architecture_and_gates_get_their_gradient() -> None:
    torch.manual_seed(0)
    supernet = GatedSupernet("mbconv-cifar100", num_classes=10).eval()
    arch = sample_architecture(supernet.space, random.Random(0))
    blocks = supernet.indices(arch)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        single = supernet.forward_paths(x, blocks)
        assert torch.allclose(single, supernet(x, blocks, len(blocks)), atol=1e-5)
    # a gated pair at layer 5 with the gate on its second op is the single path through that op
    other = (blocks[5] + 1) % supernet.categories[5]
    paths: list = list(blocks)
    paths[5] = (other, blocks[5])
    gate = torch.tensor([0.0, 1.0], requires_grad=True)
    gates = [None] * len(blocks)
    gates[5] = gate
    out = supernet.forward_paths(x, paths, gates)
    assert torch.allclose(out, single, atol=1e-5)
    # dL/dg_j = sum(out_j * dL/d out) at the layer's output
    features = {}
    handle = supernet.layers[6][blocks[6]].register_forward_hook(lambda m, i, o: features.setdefault("in", i[0]))
    out = supernet.forward_paths(x, paths, gates)
    handle.remove()
    loss = out.square().sum()
    mixed_out = features["in"]
    (d_mixed,) = torch.autograd.grad(loss, mixed_out, retain_graph=True)
    loss.backward()
    with torch.no_grad():
        h = x
        for module in supernet.prefix.values():
            h = module(h)
        for i in range(5):
            h = supernet.layers[i][blocks[i]](h)
        outs = [supernet.layers[5][j](h) for j in paths[5]]
    expected = torch.stack([(o * d_mixed).sum() for o in outs])
    assert torch.allclose(gate.grad, expected, rtol=1e-4, atol=1e-4)


def test_coded_cuts_of_the_gated_supernet_are_the_coded_split_network() -> None:
    """A gated path with codecs at fixed cuts (one inside a bottleneck block) is the deployed SplitNetwork."""
    from nas.supernet import SplitNetwork
    from spaces import Architecture
    from spaces.codecs import get_codec

    torch.manual_seed(0)
    # training mode: batch statistics carry the coding through the untrained layers
    supernet = GatedSupernet("fbnet-extended-cifar100", num_classes=10).train()
    blocks_named = list(sample_architecture(supernet.space, random.Random(1)).blocks)
    blocks_named[6] = "k5_e1/4"  # the cut after layer 6 falls inside this bottleneck block
    arch = Architecture(supernet.space, tuple(blocks_named), (7, 15))
    blocks = supernet.indices(arch)
    cuts = {7: get_codec("int8"), 15: get_codec("float16")}
    network = SplitNetwork(arch, 10, ["int8", "float16"])
    network.load_network_state(supernet.subnet_state_dict(blocks))
    network.train()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        coded = supernet.forward_paths(x, blocks, cuts=cuts)
        assert torch.allclose(coded, network(x), atol=1e-5)
        assert not torch.equal(coded, supernet.forward_paths(x, blocks))
        # a gated pair whose active candidate is the path's op gives the same coded output
        paths: list = list(blocks)
        paths[6] = ((blocks[6] + 1) % supernet.categories[6], blocks[6])
        gates = [None] * len(blocks)
        gates[6] = torch.tensor([0.0, 1.0])
        assert torch.allclose(supernet.forward_paths(x, paths, gates, cuts=cuts), coded, atol=1e-5)
