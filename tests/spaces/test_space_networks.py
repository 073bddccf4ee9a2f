"""Whole networks and networks cut at split points, built from architectures of every space."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import spaces
from spaces import Architecture
from spaces.modules import build_network, build_parts


def _randomize_batchnorm(network: nn.Module, seed: int) -> None:
    """Non-trivial running statistics and affine parameters, so that eval mode is not an identity BN."""
    generator = torch.Generator().manual_seed(seed)
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)


def _copy_weights(network: nn.Module, parts: list[nn.Sequential]) -> None:
    """Load the network's parameters and buffers into the parts, which hold the same modules in the same order."""
    source = list(network.state_dict().values())
    targets = [tensor for part in parts for tensor in part.state_dict().values()]
    assert [t.shape for t in targets] == [s.shape for s in source]
    with torch.no_grad():
        for target, value in zip(targets, source, strict=True):
            target.copy_(value)


def _run_parts(parts: list[nn.Sequential], x: torch.Tensor) -> list[torch.Tensor]:
    outputs = []
    for part in parts:
        x = part(x)
        outputs.append(x)
    return outputs


def _input(space: spaces.SearchSpace) -> torch.Tensor:
    return torch.randn(1, 3, space.input_size, space.input_size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", spaces.list_spaces())
def test_network_output_and_costs_match_the_architecture(name: str) -> None:
    space = spaces.get_space(name)
    arch = spaces.sample_architecture(space, random.Random(name))
    network = build_network(arch).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = network(_input(space))
    assert tuple(y.shape) == (1, space.num_classes)
    assert torch.isfinite(y).all()
    assert sum(p.numel() for p in network.parameters()) == arch.params
    assert counter.get_total_flops() == 2 * arch.macs


def _check_parts_compose(arch: Architecture, seed: int = 0) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    network = build_network(arch).eval()
    _randomize_batchnorm(network, seed)
    parts = build_parts(arch)
    assert len(parts) == len(arch.splits) + 1
    _copy_weights(network, parts)
    for part in parts:
        part.eval()
    x = _input(arch.space)
    with torch.no_grad():
        expected = network(x)
        outputs = _run_parts(parts, x)
    torch.testing.assert_close(outputs[-1], expected, rtol=1e-4, atol=1e-5)
    for k, sent in zip(arch.splits, outputs, strict=False):
        assert sent.numel() == arch.payload(k), f"split {k}: sent {tuple(sent.shape)}"
    return outputs


@pytest.mark.parametrize("name", spaces.list_spaces())
def test_parts_compose_to_the_whole_network(name: str) -> None:
    space = spaces.get_space(name)
    rng = random.Random(f"{name}-parts")
    _check_parts_compose(spaces.sample_architecture(space, rng, splits=2))
    n = len(space.layers)
    _check_parts_compose(spaces.sample_architecture(space, rng).with_splits(0, n))  # prefix alone; suffix alone


def test_split_after_a_bottleneck_block_sends_the_narrow_tensor() -> None:
    space = spaces.get_space("fbnet-extended-cifar100")
    blocks = list(spaces.sample_architecture(space, random.Random(3)).blocks)
    blocks[5], blocks[13] = "k3_e1/4", "k5_e1/8"  # 24 -> 32 channels, 32 -> 16; 64 -> 112 channels at 8
    arch = Architecture(space, tuple(blocks), (6, 14))
    head_out, middle_out, _ = _check_parts_compose(arch)
    assert tuple(head_out.shape) == (1, 24 // 4, 16, 16)
    assert tuple(middle_out.shape) == (1, 64 // 8, 8, 8)
    assert head_out.numel() == arch.payload(6) < math.prod(arch.layer_ops[5].output_shape)
    parts = build_parts(arch)
    assert list(parts[0].named_children())[-1][0] == "layer5_front"
    assert list(parts[1].named_children())[0][0] == "layer5_back"


def test_split_before_or_after_a_non_bottleneck_block_cuts_between_layers() -> None:
    space = spaces.get_space("fbnet-extended-cifar100")
    blocks = ["k3_e1/2"] * 22
    blocks[8] = "k3_e6"
    arch = Architecture(space, tuple(blocks), (8, 9))
    parts = build_parts(arch)
    assert [name for name, _ in parts[1].named_children()] == ["layer7_back", "layer8"]
    outputs = _check_parts_compose(arch)
    assert tuple(outputs[1].shape) == (1, 32, 16, 16)
