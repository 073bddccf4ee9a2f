"""The supernet's sampled path is the stand-alone network of ``spaces``, split and with packet loss."""

from __future__ import annotations

import random

import pytest
import torch

from nas.supernet import SplitNetwork, Supernet, packet_loss
from spaces import Architecture, sample_architecture
from spaces.modules import build_network

torch.set_num_threads(1)


def randomize_batch_norm(module: torch.nn.Module) -> None:
    """Non-trivial running statistics and affine parameters, so that eval mode tests them too."""
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.2, 0.2)


@pytest.fixture(scope="module")
def supernets() -> dict[str, Supernet]:
    torch.manual_seed(0)
    return {name: Supernet(name) for name in ("fbnet-cifar100", "fbnet-extended-cifar100")}


@pytest.mark.parametrize("space", ["fbnet-cifar100", "fbnet-extended-cifar100"])
def test_sampled_path_equals_the_standalone_network(supernets: dict[str, Supernet], space: str) -> None:
    supernet = supernets[space]
    x = torch.randn(3, 3, 32, 32)
    for seed in range(2):
        arch = sample_architecture(space, random.Random(seed))
        blocks = supernet.indices(arch)
        network = build_network(arch)
        randomize_batch_norm(network)
        supernet.load_subnet(blocks, network.state_dict())
        network.eval()
        supernet.eval()
        with torch.no_grad():
            expected = network(x)
            for split in (0, 9, 22):
                assert torch.allclose(supernet(x, blocks, split), expected, atol=1e-5)
        # and the other way round: the path's weights make the stand-alone network
        copy = build_network(arch)
        copy.load_state_dict(supernet.subnet_state_dict(blocks), strict=True)
        copy.eval()
        with torch.no_grad():
            assert torch.allclose(copy(x), expected, atol=1e-5)


def test_packet_loss_inside_a_bottleneck_matches_the_split_network(supernets: dict[str, Supernet]) -> None:
    supernet = supernets["fbnet-extended-cifar100"]
    space = supernet.space
    blocks = list(sample_architecture(space, random.Random(5)).blocks)
    blocks[6] = "k5_e1/4"  # split after layer 6 falls inside this block, after its depthwise conv
    arch = Architecture(space, tuple(blocks), (7,))
    indices = supernet.indices(arch)
    split_network = SplitNetwork(arch)
    split_network.load_network_state(supernet.subnet_state_dict(indices))
    # training mode: batch statistics carry the effect of the loss through the untrained layers
    supernet.train()
    split_network.train()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        payload = supernet.head(x, indices, 7)
        assert payload.shape[1:] == (8, 16, 16)  # 32 input channels * 1/4, after the stride-2 layer 5
        assert payload.numel() // 4 == arch.payload(7)
        dropped = supernet(x, indices, 7, 0.3, generator=torch.Generator().manual_seed(1))
        deployed = split_network(x, 0.3, generator=torch.Generator().manual_seed(1))
        clean = supernet(x, indices, 7)
    assert torch.allclose(dropped, deployed, atol=1e-5)
    assert not torch.allclose(dropped, clean, atol=1e-3)


def test_packet_loss_zeroes_elements_at_the_rate() -> None:
    x = torch.ones(100_000)
    dropped = packet_loss(x, 0.2, generator=torch.Generator().manual_seed(0))
    assert (dropped == 0).float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert set(dropped.unique().tolist()) == {0.0, 1.0}  # zeros, not rescaled
    assert packet_loss(x, 0.2, scale=True).max().item() == pytest.approx(1.25)
    assert torch.equal(packet_loss(x, 0.0), x)


def test_classifier_follows_the_dataset_and_unsupported_spaces_are_refused() -> None:
    arch = sample_architecture("fbnet-cifar100", random.Random(0)).with_splits(20)
    assert SplitNetwork(arch, num_classes=10)(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="no supernet for space 'mbconv-cifar100'"):
        Supernet("mbconv-cifar100")


def test_the_payload_is_coded_as_the_link_sends_it_in_training_and_evaluation(supernets: dict[str, Supernet]) -> None:
    from spaces.codecs import get_codec

    arch = sample_architecture("fbnet-cifar100", random.Random(2)).with_splits(9)
    float_network, int8_network = SplitNetwork(arch), SplitNetwork(arch, codecs=["int8"])
    int8_network.load_state_dict(float_network.state_dict())
    x = torch.randn(4, 3, 32, 32)
    for network in (float_network, int8_network):
        network.eval()
    with torch.no_grad():
        payload = float_network.head(x)
        expected = float_network.tail(get_codec("int8").roundtrip(payload))
        assert torch.equal(int8_network(x), expected)
        assert not torch.equal(int8_network(x), float_network(x))
    # loss falls after decoding: a lost element is a zero at the tail, not the zero point
    generator = torch.Generator().manual_seed(0)
    lost = int8_network.tail(packet_loss(get_codec("int8").roundtrip(payload), 0.5, generator=generator))
    with torch.no_grad():
        assert torch.equal(int8_network(x, 0.5, generator=torch.Generator().manual_seed(0)), lost)
    # training: the gradient passes through the quantizer (straight-through)
    int8_network.train()
    int8_network(x).sum().backward()
    grads = [p.grad for p in int8_network.head.parameters()]
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads if g is not None)
    supernet = supernets["fbnet-cifar100"]
    blocks = supernet.indices(arch)
    supernet.eval()
    with torch.no_grad():
        coded = supernet(x, blocks, 9, codec="int8")
        by_hand = supernet.tail(get_codec("int8").roundtrip(supernet.head(x, blocks, 9)), blocks, 9)
    assert torch.equal(coded, by_hand)


def test_a_chain_network_codes_every_cut_with_its_own_codec() -> None:
    from spaces.codecs import get_codec

    arch = sample_architecture("fbnet-cifar100", random.Random(4)).with_splits(3, 12)
    network = SplitNetwork(arch, num_classes=10, codecs=["float16", "int8"]).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        first, second, third = network.parts
        expected = third(get_codec("int8").roundtrip(second(get_codec("float16").roundtrip(first(x)))))
        assert torch.equal(network(x), expected)
    with pytest.raises(ValueError, match="2 split points need 2 codecs"):
        SplitNetwork(arch, codecs=["int8"])
