"""Topology files: parsing, validation errors that name the bad field, and chain / mesh completion latency."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from predictor.latency import Link
from predictor.topology import TopologyError, completion_latency, topology_luts
from predictor.topology_file import load_topology, parse_topology
from spaces import Architecture, get_space, sample_architecture
from tests.utils.synthetic_luts import synthetic_lut
from tests.utils.topologies import CHAIN, MESH, edited

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "topologies"

def test_examples_load_and_resolve_their_assignments() -> None:
    n = len(get_space("fbnet-cifar100").layers)
    chain = load_topology(EXAMPLES / "chain4.yaml")
    assert chain.kind == "chain" and chain.describe() == "ue -> sbs -> mbs -> cloud"
    assert chain.splits(n) == (10, 14, 18)
    assert chain.link("ue", "sbs") == Link(25, 32)
    assert chain.device("sbs").derived and "derived" in chain.device("sbs").label
    mesh = load_topology(EXAMPLES / "mesh.yaml")
    assert mesh.describe() == "ue -> sbs -> mbs -> {edge1 | edge2} -> cloud"
    assert mesh.splits(n) == (3, 9, 13, 19)
    assert mesh.stages[mesh.parallel_stage].shares == (0.6, 0.4)


def test_layer_ranges_resolve_to_split_points_with_empty_first_and_last_devices() -> None:
    n = 21
    data = edited(CHAIN, "assignment", {"layers": {"ue": [], "sbs": [0, 9], "cloud": [10, 20]}})
    assert parse_topology(data).splits(n) == (0, 10)
    data = edited(CHAIN, "assignment", {"layers": {"ue": [0, 4], "sbs": [5, 20], "cloud": None}})
    assert parse_topology(data).splits(n) == (5, 21)
    data = edited(MESH, "assignment", {"layers": {"ue": [0, 1], "root": [2, 4], "e1": [5, 7], "e2": [5, 7],
                                                  "merge": [8, 20]}})
    assert parse_topology(data).splits(n) == (2, 5, 8)


@pytest.mark.parametrize(
    ("base", "path", "value", "message"),
    [
        (CHAIN, "topology", "ring", "topology: must be 'chain' or 'mesh'"),
        (CHAIN, "colour", "red", "colour: unknown key"),
        (CHAIN, "devices.1.name", "ue", "devices[1].name: duplicate device name 'ue'"),
        (CHAIN, "devices.1.latency_factor", -1, "devices[1].latency_factor: expected a positive number"),
        (CHAIN, "devices.0.speed", 3, "devices[0].speed: unknown key"),
        (CHAIN, "links.0.to", "sbz", "links[0].to: unknown device 'sbz'"),
        (CHAIN, "links.1", ..., "links: missing link from 'sbs' to 'cloud'"),
        (CHAIN, "links.1.bits", 12, "links[1].bits: bits must be 8, 16 or 32"),
        (CHAIN, "links.0.bandwidth_mbps", 0, "links[0].bandwidth_mbps: bandwidth_mbps must be a finite"),
        (CHAIN, "links.0.bandwidth_mbps", "fast", "links[0].bandwidth_mbps: expected a number"),
        (CHAIN, "links.0.from", ..., "links[0].from: missing"),
        (CHAIN, "links.2", {"from": "ue", "to": "cloud", "bandwidth_mbps": 5},
         "links: link from 'ue' to 'cloud' is not used by the chain"),
        (CHAIN, "chain", ["ue", "cloud"], "devices: device 'sbs' is not part of the chain"),
        (CHAIN, "chain", ["ue", "ue", "cloud"], "device 'ue' appears more than once"),
        (CHAIN, "assignment.splits", [3], "assignment.splits: ue -> sbs -> cloud has 3 stages and needs 2"),
        (CHAIN, "assignment.splits", [9, 3], "assignment.splits: split points must be strictly increasing"),
        (CHAIN, "assignment", {"split": [1, 2]}, "assignment: expected exactly one of"),
        (CHAIN, "root", "ue", "root: only a mesh has a root"),
        (MESH, "merge", ..., "merge: missing"),
        (MESH, "branches", ["e1"], "branches: a mesh needs a list of at least two parallel devices"),
        (MESH, "branches.1.share", 0.5, "branches: shares must add up to 1, got 1.2"),
        (MESH, "branches.1.device", "e3", "branches[1].device: unknown device 'e3'"),
        (MESH, "links.2", ..., "links: missing link from 'root' to 'e2'"),
    ],
)
def test_invalid_topologies_name_the_bad_field(base: dict, path: str, value: object, message: str) -> None:
    with pytest.raises(TopologyError) as error:
        parse_topology(edited(base, path, value), source="t.yaml")
    assert str(error.value).startswith("t.yaml: ")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ({"ue": [0, 4], "sbs": [3, 9], "cloud": [10, 20]}, "assignment.layers.sbs: range [3, 9] overlaps ue's"),
        ({"ue": [0, 4], "sbs": [7, 9], "cloud": [10, 20]}, "layers 5..6 are assigned to no device (before sbs)"),
        ({"ue": [0, 4], "sbs": [5, 9], "cloud": [10, 19]}, "layers 20..20 are assigned to no device"),
        ({"ue": [0, 4], "sbs": [5, 9], "cloud": [10, 30]}, "assignment.layers.cloud: range [10, 30] is outside 0..20"),
        ({"ue": [0, 4], "sbs": [], "cloud": [5, 20]}, "assignment.layers.sbs: only the first and the last device"),
        ({"ue": [0, 4], "cloud": [5, 20]}, "no layer range for device 'sbs'"),
        ({"ue": [0, 4], "sbs": "5-9", "cloud": [10, 20]}, "assignment.layers.sbs: expected an inclusive layer range"),
    ],
)
def test_invalid_layer_ranges_name_the_device(layers: dict, message: str) -> None:
    topology = parse_topology(edited(CHAIN, "assignment", {"layers": layers}), source="t.yaml")
    with pytest.raises(TopologyError) as error:
        topology.splits(21)
    assert message in str(error.value)


def test_split_outside_the_space_and_branch_ranges_that_differ_are_refused() -> None:
    topology = parse_topology(edited(CHAIN, "assignment.splits", [3, 30]), source="t.yaml")
    with pytest.raises(TopologyError, match=r"assignment.splits\[1\]: split 30 is outside 0..21"):
        topology.splits(21)
    data = edited(MESH, "assignment", {"layers": {"ue": [0, 1], "root": [2, 4], "e1": [5, 7], "e2": [5, 8],
                                                  "merge": [8, 20]}})
    with pytest.raises(TopologyError, match="parallel branches run the same layers"):
        parse_topology(data).splits(21)
    with pytest.raises(TopologyError, match="assignment: missing"):
        parse_topology(edited(CHAIN, "assignment", ...)).splits(21)


def test_unreadable_and_malformed_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot read topology file"):
        load_topology(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices: [ue, \n")
    with pytest.raises(TopologyError, match="bad.yaml: not valid YAML"):
        load_topology(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(TopologyError, match="expected a mapping"):
        load_topology(listed)


# -- completion latency ---------------------------------------------------------------------------------


def luts_for(topology, space: str) -> dict:
    seeds = {name: i for i, name in enumerate(sorted({d.device for d in topology.devices}))}
    luts = topology_luts(topology, lambda device: synthetic_lut(space, device, seed=seeds[device], scale=1.1))
    for i, lut in enumerate(luts.values()):
        lut.call_ms = 0.2 + 0.1 * i  # what one call of a network part costs on the device
    return luts


def test_chain_latency_matches_a_hand_computation() -> None:
    space = get_space("mbconv-cifar100")
    topology = parse_topology(CHAIN)
    luts = luts_for(topology, space.name)
    arch = sample_architecture(space, random.Random(1)).with_splits(3, 10)
    result = completion_latency(arch, topology, luts)

    def on(device: str, layers: range) -> float:
        lut = luts[device]
        return lut.scale * sum(lut.layer_ms(i, arch.blocks[i]) for i in layers)

    ue, sbs, cloud = luts["ue"], luts["sbs"], luts["cloud"]
    payload_3 = space.op(2, arch.blocks[2]).payload
    hand = (
        ue.scale * ue.prefix_ms + on("ue", range(0, 3)) + payload_3 * 32 / 25e6 * 1e3
        + on("sbs", range(3, 10)) + space.op(9, arch.blocks[9]).payload * 16 / 200e6 * 1e3
        + on("cloud", range(10, 21)) + cloud.scale * cloud.suffix_ms + ue.call_ms + sbs.call_ms + cloud.call_ms
    )
    assert result.total_ms == pytest.approx(hand, rel=1e-12)
    assert [s.device for s in result.segments] == ["ue", "sbs", "cloud"]
    # the derived device is the source table times its factor
    assert sbs.table[4, 0] == pytest.approx(0.5 * synthetic_lut(space.name, "pc", seed=1).table[4, 0])
    assert sbs.meta["derived"] == "0.5 x pc"


def test_mesh_latency_matches_a_hand_computation_and_the_design_formula() -> None:
    space = get_space("fbnet-extended-cifar100")
    topology = parse_topology(MESH)
    luts = luts_for(topology, space.name)
    blocks = list(sample_architecture(space, random.Random(3)).blocks)
    blocks[8] = "k5_e1/2"  # the root's last layer is a bottleneck: split inside it, its back runs on the branches
    blocks[14] = "k3_e1/4"  # so is the branches' last layer: its back runs on the merge device
    blocks[3] = "k3_e6"
    arch = Architecture(space, tuple(blocks), (4, 9, 15))
    result = completion_latency(arch, topology, luts)

    def ms(device: str, layer: int) -> float:
        return luts[device].scale * luts[device].layer_ms(layer, arch.blocks[layer])

    def send(source: str, target: str, elements: float) -> float:
        return float(topology.link(source, target).transfer_ms(elements))

    front, front14 = space.op(8, "k5_e1/2").front_share, space.op(14, "k3_e1/4").front_share
    assert 0 < front < 1 and 0 < front14 < 1
    ue_ms = luts["ue"].scale * luts["ue"].prefix_ms + sum(ms("ue", i) for i in range(4)) + luts["ue"].call_ms
    root_ms = sum(ms("root", i) for i in range(4, 8)) + front * ms("root", 8) + luts["root"].call_ms
    root_out, branch_out = arch.payload(9), arch.payload(15)
    assert root_out == space.op(8, "k5_e1/2").payload  # the narrow tensor inside the bottleneck
    branch_ms, branch_send = {}, {}
    for name, share in (("e1", 0.7), ("e2", 0.3)):
        inner = (1 - front) * ms(name, 8) + sum(ms(name, i) for i in range(9, 14)) + front14 * ms(name, 14)
        branch_ms[name] = share * inner + luts[name].call_ms  # a branch's call is not shared
        branch_send[name] = send(name, "merge", share * branch_out)
    terms = {n: root_ms + send("root", n, root_out) + branch_ms[n] + branch_send[n] for n in branch_ms}
    merge_ms = (1 - front14) * ms("merge", 14) + sum(ms("merge", i) for i in range(15, 22)) + luts["merge"].call_ms
    merge_ms += luts["merge"].scale * luts["merge"].suffix_ms
    hand = ue_ms + send("ue", "root", arch.payload(4)) + max(terms.values()) + merge_ms
    assert result.total_ms == pytest.approx(hand, rel=1e-12)
    assert result.branch_ms == pytest.approx(terms)
    assert result.critical_branch == max(terms, key=terms.get)
    assert [s.device for s in result.segments] == ["ue", "root", result.critical_branch, "merge"]


def test_completion_latency_checks_splits_and_tables() -> None:
    space = get_space("mbconv-cifar100")
    topology = parse_topology(CHAIN)
    luts = luts_for(topology, space.name)
    arch = sample_architecture(space, random.Random(0))
    with pytest.raises(TopologyError, match="needs 2 split points, got 1"):
        completion_latency(arch.with_splits(4), topology, luts)
    with pytest.raises(TopologyError, match="no latency table for device 'cloud'"):
        completion_latency(arch.with_splits(4, 8), topology, {k: v for k, v in luts.items() if k != "cloud"})
