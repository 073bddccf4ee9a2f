"""Bad space, layer, block and architecture names raise errors that name the bad part and what is allowed."""

from __future__ import annotations

import random

import numpy as np
import pytest

import spaces
from spaces import (
    Architecture,
    InvalidArchitectureError,
    InvalidBlockError,
    InvalidLayerError,
    SpaceError,
    UnknownSpaceError,
)

FBNET = spaces.get_space("fbnet-cifar100")
MBCONV = spaces.get_space("mbconv-imagenet")
VALID = ["k3_e1"] * 22
FBNET_BLOCKS = ["k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip"]


def _text(blocks: list[str], splits: str = "") -> str:
    return ",".join(blocks) + splits


def _with(layer: int, block: str) -> list[str]:
    blocks = list(VALID)
    blocks[layer] = block
    return blocks


@pytest.mark.parametrize(
    ("space", "text", "error", "fragments"),
    [
        pytest.param(FBNET, _text(VALID[:21]), InvalidArchitectureError, ["21 blocks", "22 layers"],
                     id="too-few-blocks"),
        pytest.param(FBNET, _text(VALID + ["skip"]), InvalidArchitectureError, ["23 blocks", "22 layers"],
                     id="too-many-blocks"),
        pytest.param(FBNET, _text(_with(4, "k7_e6")), InvalidArchitectureError,
                     ["layer 4", "'k7_e6'", "allowed: " + ", ".join(FBNET_BLOCKS)],
                     id="unknown-block"),
        pytest.param(FBNET, _text(_with(2, "k3-e1")), InvalidArchitectureError,
                     ["layer 2", "malformed block name 'k3-e1'", "k<kernel>_e<expansion>"], id="malformed-block"),
        pytest.param(FBNET, _text(_with(0, "")), InvalidArchitectureError, ["layer 0", "malformed block name ''"],
                     id="empty-block"),
        pytest.param(FBNET, _text(_with(3, "k3_e1/2")), InvalidArchitectureError,
                     ["layer 3", "'k3_e1/2'", "allowed: k3_e1,"], id="bottleneck-outside-extended-space"),
        pytest.param(FBNET, _text(_with(1, "k3_e1/0")), InvalidArchitectureError,
                     ["layer 1", "malformed block name 'k3_e1/0'"], id="zero-denominator"),
        pytest.param(FBNET, _text(_with(1, "k3_e0")), InvalidArchitectureError,
                     ["layer 1", "'k3_e0'", "expansion must be positive"], id="zero-expansion"),
        pytest.param(MBCONV, _text(["k3_e3_res"] + ["k3_e3"] * 20), InvalidArchitectureError,
                     ["layer 0", "'k3_e3_res'", "at layer 0 of space 'mbconv-imagenet'",
                      "allowed: k3_e3, k3_e6, k5_e3, k5_e6, k7_e3, k7_e6"], id="shortcut-impossible"),
        pytest.param(MBCONV, _text(["identity"] + ["k3_e3"] * 20), InvalidArchitectureError,
                     ["layer 0", "'identity'", "allowed: k3_e3,"], id="identity-where-shapes-change"),
        pytest.param(FBNET, _text(VALID, "@23"), InvalidArchitectureError, ["split point 23", "allowed 0..22"],
                     id="split-out-of-range"),
        pytest.param(FBNET, _text(VALID, "@-1"), InvalidArchitectureError, ["split point -1", "allowed 0..22"],
                     id="negative-split"),
        pytest.param(FBNET, _text(VALID, "@7.5"), InvalidArchitectureError, ["'7.5'", "must be integers"],
                     id="non-integer-split"),
        pytest.param(FBNET, _text(VALID, "@x"), InvalidArchitectureError, ["'x'", "must be integers"],
                     id="non-numeric-split"),
        pytest.param(FBNET, _text(VALID, "@"), InvalidArchitectureError, ["must be integers"], id="empty-split"),
        pytest.param(FBNET, _text(VALID, "@12,4"), InvalidArchitectureError, ["strictly increasing", "[12, 4]"],
                     id="decreasing-splits"),
        pytest.param(FBNET, _text(VALID, "@4,4"), InvalidArchitectureError, ["strictly increasing", "[4, 4]"],
                     id="repeated-splits"),
        pytest.param(FBNET, "", InvalidArchitectureError, ["empty"], id="empty-string"),
        pytest.param("fbnet-cifar10", _text(VALID), UnknownSpaceError,
                     ["'fbnet-cifar10'", "allowed: fbnet-cifar100, fbnet-extended-cifar100, fbnet-imagenet"],
                     id="unknown-space"),
    ],
)
def test_invalid_architecture_strings(space, text: str, error: type[SpaceError], fragments: list[str]) -> None:
    with pytest.raises(error) as info:
        Architecture.parse(text, space)
    assert isinstance(info.value, SpaceError) and isinstance(info.value, ValueError)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize("index", [22, -1, 100, "3", 2.0, None])
def test_layer_out_of_range(index: object) -> None:
    with pytest.raises(InvalidLayerError, match=r"not in space 'fbnet-cifar100': allowed layers are 0\.\.21"):
        FBNET.layer(index)  # type: ignore[arg-type]
    with pytest.raises(InvalidLayerError):
        FBNET.op(index, "k3_e1")  # type: ignore[arg-type]


def test_numpy_integers_are_valid_indices_and_split_points() -> None:
    assert FBNET.layer(np.int64(5)) is FBNET.layers[5]
    arch = Architecture(FBNET, tuple(VALID), (np.int64(3), np.int32(9)))
    assert arch.splits == (3, 9) and all(type(k) is int for k in arch.splits)
    assert Architecture.parse(arch.encode(), FBNET) == arch


def test_float_split_points_are_refused() -> None:
    arch = Architecture(FBNET, tuple(VALID))
    with pytest.raises(InvalidArchitectureError, match=r"split points must be integers, got \[3\.0\]"):
        arch.with_splits(3.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "layer", "fragments"),
    [
        ("k7_e6", None, ["'k7_e6'", "in space 'fbnet-cifar100'", "allowed: k3_e1,"]),
        ("k7_e6", 3, ["'k7_e6'", "at layer 3 of space 'fbnet-cifar100'", "skip"]),
        ("conv3x3", 3, ["malformed block name 'conv3x3'", "'k5_e6', 'k3_e1_g2', 'k3_e1/4'"]),
        ("identity", 3, ["'identity'", "allowed: k3_e1,"]),
        (None, 3, ["malformed block name None"]),
    ],
)
def test_invalid_block_names(name: str, layer: int | None, fragments: list[str]) -> None:
    with pytest.raises(InvalidBlockError) as info:
        FBNET.block(name, layer)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unknown_space_and_fixed_layer() -> None:
    with pytest.raises(UnknownSpaceError, match="unknown search space 'nope'; allowed: fbnet-cifar100, "):
        spaces.get_space("nope")
    with pytest.raises(InvalidLayerError, match="no fixed layer 'first'; allowed: stem, head, pool, fc"):
        FBNET.fixed("first")


def test_single_split_and_payload_errors() -> None:
    arch = Architecture(FBNET, tuple(VALID), (4, 12))
    with pytest.raises(InvalidArchitectureError, match=r"exactly one split point, got \[4, 12\]"):
        _ = arch.split
    with pytest.raises(InvalidArchitectureError, match=r"split point 23 .* allowed 0\.\.22"):
        arch.payload(23)


@pytest.mark.parametrize("name", spaces.list_spaces())
def test_encode_parse_round_trip(name: str) -> None:
    space = spaces.get_space(name)
    rng = random.Random(name)
    for splits in (0, 1, 2, 3):
        arch = spaces.sample_architecture(space, rng, splits=splits)
        text = arch.encode()
        assert Architecture.parse(text, name) == arch
        assert Architecture.parse(text, space).encode() == text
        assert str(arch) == text
        assert text.count(",") == len(space.layers) - 1 + max(len(arch.splits) - 1, 0)


def test_parse_tolerates_spaces_around_names() -> None:
    arch = Architecture.parse(" " + ", ".join(VALID) + "@ 4, 12 ", FBNET)
    assert arch.blocks == tuple(VALID) and arch.splits == (4, 12)
