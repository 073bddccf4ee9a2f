"""Layer tables, candidate blocks, split points and payloads of the registered spaces (DESIGN.md section 2)."""

from __future__ import annotations

import math
import random

import pytest

import spaces
from spaces import Op, SearchSpace

FBNET_BLOCKS = ["k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip"]
BOTTLENECK_BLOCKS = ["k3_e1/2", "k3_e1/4", "k3_e1/8", "k5_e1/2", "k5_e1/4", "k5_e1/8"]
MBCONV_BLOCKS = [f"k{k}_e{e}{res}" for k in (3, 5, 7) for e in (3, 6) for res in ("", "_res")] + ["identity"]


def _expand(rows: list[tuple[range | int, int, int, int, int, int]]) -> list[tuple[int, int, int, int, int]]:
    """Rows of DESIGN.md's layer table, (layers, H in, H out, Cin, Cout, stride), one tuple per layer."""
    table = []
    for layers, h_in, h_out, cin, cout, stride in rows:
        for _ in layers if isinstance(layers, range) else [layers]:
            table.append((h_in, h_out, cin, cout, stride))
    return table


# DESIGN.md section 2.1, row by row.
FBNET_CIFAR100_TABLE = _expand([
    (0, 32, 32, 16, 16, 1),
    (1, 32, 32, 16, 24, 1),
    (range(2, 5), 32, 32, 24, 24, 1),
    (5, 32, 16, 24, 32, 2),
    (range(6, 9), 16, 16, 32, 32, 1),
    (9, 16, 8, 32, 64, 2),
    (range(10, 13), 8, 8, 64, 64, 1),
    (13, 8, 8, 64, 112, 1),
    (range(14, 17), 8, 8, 112, 112, 1),
    (17, 8, 4, 112, 184, 2),
    (range(18, 21), 4, 4, 184, 184, 1),
    (21, 4, 4, 184, 352, 1),
])
# HW-NAS-Bench's ImageNet variant: stem 224 stride 2, then H 112 -> 56 -> 28 -> 14 -> 14 -> 7 -> 7 by stage.
FBNET_IMAGENET_TABLE = _expand([
    (0, 112, 112, 16, 16, 1),
    (1, 112, 56, 16, 24, 2),
    (range(2, 5), 56, 56, 24, 24, 1),
    (5, 56, 28, 24, 32, 2),
    (range(6, 9), 28, 28, 32, 32, 1),
    (9, 28, 14, 32, 64, 2),
    (range(10, 13), 14, 14, 64, 64, 1),
    (13, 14, 14, 64, 112, 1),
    (range(14, 17), 14, 14, 112, 112, 1),
    (17, 14, 7, 112, 184, 2),
    (range(18, 21), 7, 7, 184, 184, 1),
    (21, 7, 7, 184, 352, 1),
])
# DESIGN.md section 2.3: stages [24, 40, 80, 96, 192, 320] x [4, 4, 4, 4, 4, 1], first strides [2, 2, 2, 1, 2, 1].
MBCONV_IMAGENET_TABLE = _expand([
    (0, 112, 56, 16, 24, 2),
    (range(1, 4), 56, 56, 24, 24, 1),
    (4, 56, 28, 24, 40, 2),
    (range(5, 8), 28, 28, 40, 40, 1),
    (8, 28, 14, 40, 80, 2),
    (range(9, 12), 14, 14, 80, 80, 1),
    (12, 14, 14, 80, 96, 1),
    (range(13, 16), 14, 14, 96, 96, 1),
    (16, 14, 7, 96, 192, 2),
    (range(17, 20), 7, 7, 192, 192, 1),
    (20, 7, 7, 192, 320, 1),
])
MBCONV_CIFAR100_TABLE = _expand([
    (0, 32, 32, 16, 24, 1),
    (range(1, 4), 32, 32, 24, 24, 1),
    (4, 32, 16, 24, 40, 2),
    (range(5, 8), 16, 16, 40, 40, 1),
    (8, 16, 8, 40, 80, 2),
    (range(9, 12), 8, 8, 80, 80, 1),
    (12, 8, 8, 80, 96, 1),
    (range(13, 16), 8, 8, 96, 96, 1),
    (16, 8, 4, 96, 192, 2),
    (range(17, 20), 4, 4, 192, 192, 1),
    (20, 4, 4, 192, 320, 1),
])
TABLES = {
    "fbnet-cifar100": FBNET_CIFAR100_TABLE,
    "fbnet-extended-cifar100": FBNET_CIFAR100_TABLE,
    "fbnet-imagenet": FBNET_IMAGENET_TABLE,
    "mbconv-cifar100": MBCONV_CIFAR100_TABLE,
    "mbconv-imagenet": MBCONV_IMAGENET_TABLE,
}
# (input size, stem channels, stem stride, head channels, classes)
MACRO = {
    "fbnet-cifar100": (32, 16, 1, 1504, 100),
    "fbnet-extended-cifar100": (32, 16, 1, 1504, 100),
    "fbnet-imagenet": (224, 16, 2, 1984, 1000),
    "mbconv-cifar100": (32, 32, 1, 1280, 100),
    "mbconv-imagenet": (224, 32, 2, 1280, 1000),
}


def _table(space: SearchSpace) -> list[tuple[int, int, int, int, int]]:
    return [(layer.h, math.ceil(layer.h / layer.stride), layer.cin, layer.cout, layer.stride) for layer in space.layers]


def test_every_registered_space_has_a_table_here() -> None:
    assert sorted(TABLES) == spaces.list_spaces()


@pytest.mark.parametrize("name", sorted(TABLES))
def test_layer_table(name: str) -> None:
    space = spaces.get_space(name)
    assert len(TABLES[name]) == (22 if space.family == "fbnet" else 21)
    assert _table(space) == TABLES[name]
    assert [layer.index for layer in space.layers] == list(range(len(space.layers)))


@pytest.mark.parametrize("name", sorted(MACRO))
def test_fixed_layers(name: str) -> None:
    space = spaces.get_space(name)
    input_size, stem_channels, stem_stride, head_channels, classes = MACRO[name]
    stem, head, pool, fc = space.fixed("stem").op, space.fixed("head").op, space.fixed("pool").op, space.fixed("fc").op
    assert (space.input_size, space.num_classes) == (input_size, classes)
    assert (stem.kind, stem.h, stem.cin, stem.cout, stem.kernel, stem.stride) == (
        "convnorm", input_size, 3, stem_channels, 3, stem_stride
    )
    last = space.layers[-1]
    h_last = math.ceil(last.h / last.stride)
    assert (head.kind, head.h, head.cin, head.cout, head.kernel) == ("convnorm", h_last, last.cout, head_channels, 1)
    assert (pool.kind, pool.h, pool.cin) == ("pool", h_last, head_channels)
    assert (fc.kind, fc.cin, fc.cout) == ("fc", head_channels, classes)
    assert [f.name for f in space.suffix] == ["head", "pool", "fc"]


def test_mbconv_prefix_has_the_fixed_first_block() -> None:
    for name, h in (("mbconv-imagenet", 112), ("mbconv-cifar100", 32)):
        space = spaces.get_space(name)
        first = space.fixed("first").op
        assert [f.name for f in space.prefix] == ["stem", "first"]
        assert (first.kind, first.h, first.cin, first.cout, first.kernel, first.expansion, first.residual) == (
            "mbconv", h, 32, 16, 3, 1, False
        )


@pytest.mark.parametrize("name", spaces.list_spaces())
def test_shapes_chain_from_input_to_classifier(name: str) -> None:
    """Each op consumes exactly what the op before it produces."""
    space = spaces.get_space(name)
    arch = spaces.sample_architecture(space, random.Random(name))
    ops = arch.ops
    assert ops[0].input_shape == (3, space.input_size, space.input_size)
    for before, after in zip(ops, ops[1:], strict=False):
        assert after.input_shape == before.output_shape, f"{before.key} -> {after.key}"
    assert ops[-1].output_shape == (space.num_classes,)


def test_fbnet_cifar100_blocks_splits_and_distinct_ops() -> None:
    space = spaces.get_space("fbnet-cifar100")
    assert all(list(layer.block_names) == FBNET_BLOCKS for layer in space.layers)
    assert list(space.split_points) == list(range(23))
    layer_ops = {layer.op(block).key for layer in space.layers for block in layer.blocks}
    assert len(layer_ops) == 108
    assert len(space.distinct_ops) == 108 + len(space.fixed_layers)


def test_fbnet_extended_adds_the_six_bottleneck_blocks() -> None:
    space = spaces.get_space("fbnet-extended-cifar100")
    assert all(list(layer.block_names) == FBNET_BLOCKS + BOTTLENECK_BLOCKS for layer in space.layers)
    for name in BOTTLENECK_BLOCKS:
        block = space.block(name)
        assert block.is_bottleneck and not block.residual
        assert not space.op(3, name).residual  # no shortcut even where the shapes would allow one


@pytest.mark.parametrize("name", ["mbconv-imagenet", "mbconv-cifar100"])
def test_mbconv_options_depend_on_whether_the_shortcut_is_possible(name: str) -> None:
    space = spaces.get_space(name)
    for layer in space.layers:
        if layer.stride == 1 and layer.cin == layer.cout:
            assert sorted(layer.block_names) == sorted(MBCONV_BLOCKS)
            assert len(layer.blocks) == 13
        else:
            assert sorted(layer.block_names) == sorted(b for b in MBCONV_BLOCKS if b.startswith("k") and "res" not in b)
            assert len(layer.blocks) == 6
    assert [len(layer.blocks) for layer in space.layers] == [6, 13, 13, 13] * 5 + [6]
    residual_op = space.op(1, "k5_e6_res")
    assert residual_op.residual and not space.op(1, "k5_e6").residual


def test_fbnet_blocks_use_the_residual_exactly_where_shapes_allow() -> None:
    space = spaces.get_space("fbnet-cifar100")
    for layer in space.layers:
        op = space.op(layer.index, "k3_e3")
        assert op.residual == (layer.stride == 1 and layer.cin == layer.cout)
        assert space.op(layer.index, "skip").is_identity == op.residual


@pytest.mark.parametrize("name", spaces.list_spaces())
def test_payload_of_every_split_point(name: str) -> None:
    space = spaces.get_space(name)
    rng = random.Random(7)
    for _ in range(3):
        arch = spaces.sample_architecture(space, rng)
        assert arch.payload(0) == math.prod(space.prefix[-1].op.output_shape)
        for layer, op in enumerate(arch.layer_ops):
            out = math.prod(op.output_shape)
            expected = op.mid * op.out_h**2 if op.is_bottleneck else out
            assert arch.payload(layer + 1) == expected


def test_bottleneck_payload_is_the_narrow_inner_tensor() -> None:
    space = spaces.get_space("fbnet-extended-cifar100")
    blocks = ["k3_e1"] * 22
    blocks[9] = "k5_e1/8"  # 32 -> 64 channels, 16 -> 8
    arch = spaces.Architecture(space, tuple(blocks))
    assert arch.payload(10) == 4 * 8 * 8  # 32 / 8 mid channels at 8x8, not 64 * 8 * 8
    assert arch.payload(11) == 64 * 8 * 8


def test_sampled_architectures_cover_the_candidates() -> None:
    space = spaces.get_space("fbnet-cifar100")
    rng = random.Random(0)
    seen = {name for _ in range(50) for name in spaces.sample_architecture(space, rng).blocks}
    assert seen == set(FBNET_BLOCKS)
    arch = spaces.sample_architecture(space, rng, splits=3)
    assert len(arch.splits) == 3 and list(arch.splits) == sorted(set(arch.splits))
    assert [len(r) for r in arch.segments()] == [
        b - a for a, b in zip([0, *arch.splits], [*arch.splits, 22], strict=True)
    ]


def _hwnasbench_key(op: Op) -> str:
    """The key HW-NAS-Bench's FBNet lookup tables use for ``op``."""
    hw = f"H{op.h}_W{op.h}"
    if op.kind == "conv":
        return (
            f"ConvBlock_{hw}_Cin{op.cin}_Cout{op.cout}_exp{op.expansion}_kernel{op.kernel}"
            f"_stride{op.stride}_group{op.groups}"
        )
    if op.kind == "skip":
        return f"Skip_{hw}_Cin{op.cin}_Cout{op.cout}_stride{op.stride}"
    if op.kind == "convnorm":
        return f"ConvNorm_{hw}_Cin{op.cin}_Cout{op.cout}_kernel{op.kernel}_stride{op.stride}_group{op.groups}"
    if op.kind == "pool":
        return f"AvgP_{hw}_Cin{op.cin}_Cout{op.cout}_kernel{op.h}_stride1"
    return f"FC_Cin{op.cin}_Cout{op.cout}"


def test_fbnet_spaces_match_the_hwnasbench_lookup_table_keys(hwnasbench_dir) -> None:
    import pickle

    with open(hwnasbench_dir / "hwnasbench_fbnet_lut.pickle", "rb") as f:
        table_keys = set(pickle.load(f)["fbnet"]["raspi4_latency"])
    ours: set[str] = set()
    for name in ("fbnet-cifar100", "fbnet-imagenet"):
        ours |= {_hwnasbench_key(op) for op in spaces.get_space(name).distinct_ops.values()}
    # The benchmark also holds a CIFAR-10 classifier, which no space here uses.
    assert ours == table_keys - {"FC_Cin1504_Cout10"}
