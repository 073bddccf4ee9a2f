"""Architecture, split, chain and mesh latency (DESIGN.md section 3) against hand computations."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import pytest

from predictor.correction import Wait
from predictor.latency import (
    DeviceLUT,
    Layout,
    Link,
    PartTerms,
    Stage,
    architecture_latency,
    batch_architecture_latency,
    batch_split_latency,
    chain_latency,
    completion_terms,
    split_latency,
)
from spaces import Architecture, InvalidArchitectureError, get_space, sample_architecture

FIXED = {"stem": 0.5, "head": 0.7, "pool": 0.05, "fc": 0.02}


def make_lut(space: str, device: str, value: Callable[[int, int], float], *, scale: float = 1.0,
             fixed: dict[str, float] | None = None) -> DeviceLUT:
    """A table with ``value(layer, column)`` at every candidate entry, NaN elsewhere."""
    s = get_space(space)
    blocks = tuple(b.name for b in s.blocks)
    table = np.full((len(s.layers), len(blocks)), np.nan)
    for layer in s.layers:
        for b in layer.blocks:
            table[layer.index, blocks.index(b.name)] = value(layer.index, blocks.index(b.name))
    return DeviceLUT(device, space, blocks, table, dict(fixed or FIXED), scale=scale)


def uniform(space: str = "fbnet-cifar100", block: str = "k3_e1") -> Architecture:
    return Architecture.parse(",".join([block] * len(get_space(space).layers)), space)


def test_single_device_latency_is_the_scaled_sum_of_prefix_blocks_and_suffix():
    lut = make_lut("fbnet-cifar100", "pi", lambda layer, b: 0.1 * (layer + 1) + 0.01 * b, scale=1.2)
    # k3_e1 is column 0: 0.1 * (1 + ... + 22) = 25.3 ms of blocks, 1.27 ms of fixed layers
    assert architecture_latency(uniform(), lut) == pytest.approx(1.2 * (25.3 + 1.27))


def test_split_latency_matches_head_plus_payload_bits_over_rate_plus_tail():
    head = make_lut("fbnet-cifar100", "pi", lambda layer, b: 0.1 * (layer + 1))
    halved = {k: v / 2 for k, v in FIXED.items()}
    tail = make_lut("fbnet-cifar100", "gpu", lambda layer, b: 0.05 * (layer + 1), fixed=halved)
    arch = uniform().with_splits(5)
    result = split_latency(arch, head, tail, Link(bandwidth_mbps=8, bits=32))
    head_ms = 0.5 + 0.1 * (1 + 2 + 3 + 4 + 5)  # stem + layers 0..4 on the head device
    payload = 24 * 32 * 32  # layer 4 outputs 24 channels at 32x32
    comm_ms = 32 * payload / 8e6 * 1e3  # q * n_h / r, 98.304 ms
    tail_ms = 0.05 * sum(range(6, 23)) + (0.7 + 0.05 + 0.02) / 2
    assert [s.payload_elements for s in result.segments] == [payload, 0]
    assert result.segments[0].compute_ms == pytest.approx(head_ms)
    assert result.segments[0].comm_ms == pytest.approx(98.304)
    assert result.segments[1].compute_ms == pytest.approx(tail_ms)
    assert result.total_ms == pytest.approx(head_ms + comm_ms + tail_ms)
    assert result.segments[0].layers == tuple(range(5)) and result.segments[1].layers == tuple(range(5, 22))


def test_split_after_the_stem_sends_the_stem_output_and_quantized_payload_costs_less():
    lut = make_lut("fbnet-cifar100", "pi", lambda layer, b: 1.0)
    full = split_latency(uniform().with_splits(0), lut, lut, Link(8, 32))
    quantized = split_latency(uniform().with_splits(0), lut, lut, Link(8, 8))
    assert full.segments[0].payload_elements == 16 * 32 * 32
    assert full.segments[0].compute_ms == pytest.approx(0.5)
    # int8 sends a quarter of the bits, plus its scale and zero point (8 bytes)
    assert quantized.comm_ms == pytest.approx(full.comm_ms / 4 + 8 * 8 / 8e6 * 1e3)


def test_chain_latency_follows_the_multi_split_formula():
    """T = sum over devices m of (sum over its layers n of tau[n, m] + eps[d(m), m]), eps of the last = 0."""
    space = get_space("fbnet-cifar100")
    luts = [make_lut(space.name, f"d{m}", lambda layer, b, m=m: (m + 1) * 0.01 * (layer + 1 + b),
                     scale=1 + 0.1 * m) for m in range(3)]
    links = [Link(25, 32), Link(50, 16)]
    arch = sample_architecture(space, random.Random(3)).with_splits(4, 12)
    columns = luts[0].indices(arch)
    tau = np.array([[lut.scale * lut.table[n, columns[n]] for lut in luts] for n in range(22)])
    segments = [range(0, 4), range(4, 12), range(12, 22)]
    expected = luts[0].scale * 0.5 + luts[2].scale * (0.7 + 0.05 + 0.02)
    for m, layers in enumerate(segments):
        expected += sum(tau[n, m] for n in layers)
        if m < 2:
            last = space.op(layers[-1], arch.blocks[layers[-1]])
            expected += links[m].bits * np.prod(last.output_shape) / (links[m].bandwidth_mbps * 1e6) * 1e3
    result = chain_latency(arch, luts, links)
    assert result.total_ms == pytest.approx(expected)
    assert [s.device for s in result.segments] == ["d0", "d1", "d2"]
    assert result.segments[-1].comm_ms == 0.0
    assert sum(result.per_layer_ms) == pytest.approx(sum(tau[n, m] for m, r in enumerate(segments) for n in r))


def test_chain_refuses_a_wrong_number_of_devices_or_links():
    lut = make_lut("fbnet-cifar100", "pi", lambda layer, b: 1.0)
    with pytest.raises(ValueError, match="2 split points need 3 devices and 2 links"):
        chain_latency(uniform().with_splits(3, 9), [lut, lut], [Link(8)])
    with pytest.raises(InvalidArchitectureError, match="exactly one split point"):
        split_latency(uniform().with_splits(3, 9), lut, lut, Link(8))


def mesh_terms(xp_array: Callable) -> tuple:
    """Hand-sized terms of a mesh ue -> root -> {b1 (share 0.75) | b2 (0.25)} -> merge over 4 layers."""
    layout = Layout(
        (Stage(("ue",)), Stage(("root",)), Stage(("b1", "b2"), (0.75, 0.25), parallel=True), Stage(("merge",))),
        {("ue", "root"): Link(8), ("root", "b1"): Link(16), ("root", "b2"): Link(32, 8), ("b1", "merge"): Link(8),
         ("b2", "merge"): Link(8)},
        {"ue": 0, "root": 1, "b1": 2, "b2": 3, "merge": 4},
    )
    u = xp_array([[[1.0, 2.0, 3.0, 4.0], [0.5, 1.0, 1.5, 2.0], [0.2, 0.4, 0.6, 0.8], [0.3, 0.3, 0.3, 0.3],
                   [0.1, 0.1, 0.1, 0.1]]])
    ub = xp_array([[[0.0, 0.0, 0.0, 0.0]] * 2 + [[0.0, 0.0, 0.2, 0.0]] * 3])  # layer 2 is a bottleneck
    v = xp_array([[1000.0, 2000.0, 3000.0, 500.0, 10.0]])
    # (prefix, suffix, call, wait after the link: fixed, share) of each device
    fixed = [PartTerms(0.5, 0.0, 0.01, Wait(0.001, 0.1)), PartTerms(0.0, 0.0, 0.02, Wait(0.002)),
             PartTerms(0.0, 0.0, 0.03, Wait(0.003)), PartTerms(0.0, 0.0, 0.04, Wait(0.004, 0.2)),
             PartTerms(0.0, 0.7, 0.05, Wait(0.005, 0.5))]
    return u, ub, v, layout, fixed


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_mesh_is_chain_then_the_slowest_branch_then_the_merge_device(namespace: str):
    if namespace == "torch":
        torch = pytest.importorskip("torch")
        u, ub, v, layout, fixed = mesh_terms(lambda x: torch.tensor(x, dtype=torch.float64))
        bounds = torch.tensor([[0, 1, 2, 3, 4]])
    else:
        u, ub, v, layout, fixed = mesh_terms(lambda x: np.array(x, dtype=float))
        bounds = np.array([[0, 1, 2, 3, 4]])
    terms = completion_terms(u, ub, v, bounds, layout, fixed)

    def ms(bits: int, mbps: float, elements: float) -> float:
        header = 8 if bits == 8 else 0  # int8's scale and zero point
        return (elements * bits + 8 * header) / (mbps * 1e6) * 1e3

    ue = 0.5 + 1.0 + 0.01  # the first part: its input was made on the device, no wait
    root = 1.0 + 0.02 + 0.002
    # branches run layer 2 less its back part (0.2: the split after it falls inside the bottleneck)
    b1 = 0.75 * (0.6 - 0.2) + 0.03 + 0.003
    b2 = 1.2 * (0.25 * (0.3 - 0.2) + 0.04) + 0.004
    branch = {"b1": root + ms(32, 16, 3000) + b1 + ms(32, 8, 0.75 * 500),
              "b2": root + ms(8, 32, 3000) + b2 + ms(32, 8, 0.25 * 500)}
    merge = 1.5 * (0.2 + 0.1 + 0.7 + 0.05) + 0.005  # the bottleneck's back part, layer 3, suffix, call; wait
    hand = ue + ms(32, 8, 2000) + max(branch.values()) + merge
    assert float(terms.total[0]) == pytest.approx(hand, rel=1e-12)
    assert {k: float(x[0]) for k, x in terms.branches.items()} == pytest.approx(branch, rel=1e-12)
    assert float(terms.compute["merge"][0]) == pytest.approx(merge, rel=1e-12)


def test_front_share_of_a_bottleneck_block_by_hand():
    op = get_space("fbnet-extended-cifar100").op(6, "k3_e1/4")  # 16x16, 32 -> 32 channels, mid 8
    expand = 32 * 8 * 256 + 5 * 8 * 256
    depthwise = 8 * 9 * 256 + 5 * 8 * 256
    project = 8 * 32 * 256 + 5 * 32 * 256
    assert op.flops == expand + depthwise + project == 210944
    assert op.front_share == pytest.approx((expand + depthwise) / 210944)
    assert get_space("fbnet-extended-cifar100").op(6, "k3_e6").front_share == 1.0


def test_split_after_a_bottleneck_block_falls_inside_it():
    space = "fbnet-extended-cifar100"
    head = make_lut(space, "pi", lambda layer, b: 1.0 + layer)
    tail = make_lut(space, "gpu", lambda layer, b: 0.1 * (1.0 + layer))
    blocks = ["k3_e3"] * 22
    blocks[6] = "k3_e1/4"
    arch = Architecture.parse(",".join(blocks), space).with_splits(7)
    f = arch.layer_ops[6].front_share
    result = split_latency(arch, head, tail, Link(8))
    assert result.segments[0].payload_elements == 8 * 16 * 16  # the narrow mid tensor, not 32 x 16 x 16
    assert result.segments[0].compute_ms == pytest.approx(0.5 + sum(1.0 + n for n in range(6)) + f * 7.0)
    tail_ms = (1 - f) * 0.7 + sum(0.1 * (1.0 + n) for n in range(7, 22)) + 0.77
    assert result.segments[1].compute_ms == pytest.approx(tail_ms)
    assert result.per_layer_ms[6] == pytest.approx(f * 7.0 + (1 - f) * 0.7)


@pytest.mark.parametrize("space", ["fbnet-cifar100", "fbnet-extended-cifar100"])
def test_batch_split_latency_equals_the_loop(space):
    rng = random.Random(0)
    head = make_lut(space, "pi", lambda layer, b: 0.3 + 0.07 * layer + 0.05 * b, scale=1.1)
    tail = make_lut(space, "gpu", lambda layer, b: 0.02 + 0.01 * layer * b, scale=0.9)
    head.call_ms, tail.call_ms = 0.2, 0.03  # what one call of a network part costs besides its ops
    link = Link(8, 16)
    archs = [sample_architecture(space, rng, splits=1) for _ in range(300)]
    indices = np.stack([head.indices(a) for a in archs])
    batch = batch_split_latency(indices, np.array([a.split for a in archs]), head, tail, link)
    loop = [split_latency(a, head, tail, link) for a in archs]
    assert batch["total_ms"] == pytest.approx([r.total_ms for r in loop])
    assert batch["head_ms"] == pytest.approx([r.segments[0].compute_ms for r in loop])
    assert batch["comm_ms"] == pytest.approx([r.segments[0].comm_ms for r in loop])
    assert batch["tail_ms"] == pytest.approx([r.segments[1].compute_ms for r in loop])
    assert batch["payload_elements"].tolist() == [r.segments[0].payload_elements for r in loop]
    whole = [a.with_splits() for a in archs]
    assert batch_architecture_latency(indices, head) == pytest.approx([architecture_latency(a, head) for a in whole])


def test_a_part_fed_by_a_link_pays_the_wait_for_its_input_and_the_head_and_a_whole_network_none():
    space = "fbnet-cifar100"
    head = make_lut(space, "pi", lambda layer, b: 0.3 + 0.07 * layer + 0.05 * b, scale=1.1)
    tail = make_lut(space, "gpu", lambda layer, b: 0.02 + 0.01 * layer * b, scale=0.9)
    arch = sample_architecture(space, random.Random(4), splits=1)
    before = split_latency(arch, head, tail, Link(8))
    whole = architecture_latency(arch.with_splits(), head)
    head.wait_ms, tail.wait_ms, tail.wait_share = 0.5, 0.25, 0.4
    after = split_latency(arch, head, tail, Link(8))
    assert after.segments[0].compute_ms == before.segments[0].compute_ms  # its input was made on the device
    assert after.segments[1].compute_ms == pytest.approx(1.4 * before.segments[1].compute_ms + 0.25)
    assert after.total_ms == pytest.approx(before.total_ms + 0.25 + 0.4 * before.segments[1].compute_ms)
    assert architecture_latency(arch.with_splits(), head) == whole  # called back to back, it never waits
    batch = batch_split_latency(head.indices(arch)[None], np.array([arch.split]), head, tail, Link(8))
    assert batch["total_ms"][0] == pytest.approx(after.total_ms)


def test_lut_json_round_trip_keeps_nan_entries_and_flags():
    lut = make_lut("fbnet-extended-cifar100", "pi", lambda layer, b: 0.1 * b, scale=1.05)
    lut.measured[3, 2] = True
    lut.iqr[3, 2] = 0.004
    back = DeviceLUT.from_dict(lut.to_dict())
    assert np.array_equal(np.isnan(back.table), np.isnan(lut.table))
    assert np.nanmax(np.abs(back.table - lut.table)) == 0
    assert back.measured[3, 2] and back.measured.sum() == 1 and back.iqr[3, 2] == 0.004
    assert (back.scale, back.blocks, back.fixed) == (1.05, lut.blocks, lut.fixed)


def test_link_and_table_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="bandwidth_mbps must be a finite number of at least 1e-06"):
        Link(0)
    with pytest.raises(ValueError, match="1 bit/s"):
        Link(5e-324)  # the transfer time would be infinite
    with pytest.raises(ValueError, match="bits must be 8, 16 or 32"):
        Link(8, 12)
    lut = make_lut("fbnet-cifar100", "pi", lambda layer, b: 1.0)
    with pytest.raises(InvalidArchitectureError, match="not in the 'pi' table"):
        lut.column("k7_e6")
    with pytest.raises(ValueError, match="lacks fixed layers"):
        DeviceLUT("pi", "fbnet-cifar100", lut.blocks, lut.table, {"stem": 1.0})
