"""One latency model: the service, the ``predictor predict`` CLI and the search's E[T] agree with a hand computation.

The service runs for real (uvicorn on 127.0.0.1) and the CLI as a subprocess, both on one SQLite file of
synthetic devices (tests.utils.api_data); E[T] is evaluated at the one-hot distribution of the architecture.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
import yaml

from db.engine import session_scope
from nas.expected_latency import ExpectedLatency
from pipeline.service import Service
from predictor import load_lut
from predictor.latency import DeviceLUT, Link, batch_split_latency, split_latency
from predictor.topology import topology_luts
from predictor.topology_file import parse_topology
from spaces import Architecture, get_space, sample_architecture
from tests.utils.api_data import SPACE, build_service_db
from tests.utils.synthetic_luts import synthetic_lut

BIN = Path(sys.executable).parent
ARCH = ("k3_e1,k3_e1,k5_e6,skip,k3_e3,k5_e6,k3_e1,k5_e3,skip,k3_e6,k5_e1,k3_e1_g2,k5_e6,k3_e3,skip,k5_e1_g2,"
        "k3_e6,k5_e6,k3_e1,skip,k5_e3,k3_e6")
CHAIN = {
    "topology": "chain",
    "devices": [{"name": "ue", "device": "raspi4"}, {"name": "edge", "device": "edgegpu"},
                {"name": "far", "device": "raspi4", "latency_factor": 0.5}],
    "links": [{"from": "ue", "to": "edge", "bandwidth_mbps": 25},
              {"from": "edge", "to": "far", "bandwidth_mbps": 50, "bits": 16}],
}
MESH = {
    "topology": "mesh",
    "devices": [{"name": "ue", "device": "raspi4"}, {"name": "root", "device": "edgegpu"},
                {"name": "e1", "device": "edgegpu"}, {"name": "e2", "device": "raspi4", "latency_factor": 0.25},
                {"name": "merge", "device": "edgegpu", "latency_factor": 0.8}],
    "links": [{"from": "ue", "to": "root", "bandwidth_mbps": 20},
              {"from": "root", "to": "e1", "bandwidth_mbps": 50, "bits": 16},
              {"from": "root", "to": "e2", "bandwidth_mbps": 40},
              {"from": "e1", "to": "merge", "bandwidth_mbps": 100},
              {"from": "e2", "to": "merge", "bandwidth_mbps": 80, "bits": 8}],
    "chain": ["ue"], "root": "root", "merge": "merge",
    "branches": [{"device": "e1", "share": 0.65}, {"device": "e2", "share": 0.35}],
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp("one-model")
    db_url = f"sqlite:///{directory / 'service.db'}"
    build_service_db(db_url)
    server = Service(db_url, log=directory / "server.log")
    yield server
    server.stop()


def tables(db_url: str) -> dict[str, DeviceLUT]:
    with session_scope(db_url) as session:
        return {d: load_lut(session, device=d, space=SPACE, kind="auto") for d in ("raspi4", "edgegpu")}


def send_ms(link: dict, elements: float) -> float:
    bits = link.get("bits", 32)
    header = 8 if bits == 8 else 0  # int8's scale and zero point
    return (elements * bits + 8 * header) / (link["bandwidth_mbps"] * 1e6) * 1e3


def by_hand(document: dict, arch: Architecture, base: dict[str, DeviceLUT]) -> float:
    """DESIGN.md section 3 (the mesh with branch shares and the merge device, README), term by term."""
    spec = {d["name"]: d for d in document["devices"]}
    link = {(x["from"], x["to"]): x for x in document["links"]}

    def part(name: str, layers: range, *, first: bool = False, last: bool = False, share: float = 1.0) -> float:
        lut, factor = base[spec[name]["device"]], spec[name].get("latency_factor", 1.0)
        ms = share * sum(factor * lut.scale * lut.layer_ms(i, arch.blocks[i]) for i in layers)
        ms += lut.call_ms  # once per network part a device runs, whatever its share
        ms += factor * lut.scale * lut.prefix_ms if first else 0.0
        ms += factor * lut.scale * lut.suffix_ms if last else 0.0
        return ms if first else (1 + lut.wait_share) * ms + lut.wait_ms  # a part fed by a link waited for it

    n = len(arch.blocks)
    if document["topology"] == "chain":
        names = [d["name"] for d in document["devices"]]
        bounds = [0, *arch.splits, n]
        total = 0.0
        for m, name in enumerate(names):
            total += part(name, range(bounds[m], bounds[m + 1]), first=m == 0, last=m == len(names) - 1)
            if m < len(names) - 1:
                total += send_ms(link[(name, names[m + 1])], arch.payload(bounds[m + 1]))
        return total
    k1, k2, k3 = arch.splits
    root = part("root", range(k1, k2))
    branches = [
        root + send_ms(link[("root", b["device"])], arch.payload(k2))
        + part(b["device"], range(k2, k3), share=b["share"]) + send_ms(link[(b["device"], "merge")],
                                                                       b["share"] * arch.payload(k3))
        for b in document["branches"]
    ]
    return (part("ue", range(0, k1), first=True) + send_ms(link[("ue", "root")], arch.payload(k1)) + max(branches)
            + part("merge", range(k3, n), last=True))


def one_hot(arch: Architecture) -> list[torch.Tensor]:
    probs = []
    for layer, name in zip(arch.space.layers, arch.blocks, strict=True):
        p = torch.zeros(len(layer.blocks), dtype=torch.float64)
        p[layer.block_names.index(name)] = 1.0
        probs.append(p)
    return probs


@pytest.mark.parametrize(("document", "splits"), [(CHAIN, (4, 12)), (MESH, (4, 9, 15))], ids=["chain", "mesh"])
def test_service_cli_and_expected_latency_give_the_hand_computed_completion_latency(
    served: Service, tmp_path: Path, document: dict, splits: tuple[int, ...]
) -> None:
    arch = Architecture.parse(ARCH, SPACE).with_splits(*splits)
    base = tables(served.db_url)
    hand = by_hand(document, arch, base)

    response = httpx.post(f"{served.url}/architectures/latency/multi", json=document | {"arch": arch.encode()},
                          timeout=60)
    assert response.status_code == 200, response.text
    service = response.json()

    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(document))
    run = subprocess.run(
        [str(BIN / "predictor"), "predict", "--db", served.db_url, "--topology", str(path), "--arch", arch.encode(),
         "--space", SPACE, "--json"], capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    cli = json.loads(run.stdout)

    topology = parse_topology(document)
    luts = topology_luts(topology, base.__getitem__)
    expected = ExpectedLatency(get_space(SPACE), topology, luts)(one_hot(arch), splits=splits).item()

    for value in (service["total_ms"], cli["total_ms"], expected):
        assert value == pytest.approx(hand, rel=1e-9)
    for ours, theirs in zip(cli["segments"], service["segments"], strict=True):
        assert (ours["device"], ours["layers"], ours["payload_elements"], ours["payload_bytes"]) == (
            theirs["device"], theirs["layers"], theirs["payload_elements"], theirs["payload_bytes"])
        assert (ours["compute_ms"], ours["comm_ms"]) == pytest.approx((theirs["compute_ms"], theirs["comm_ms"]))
    assert cli["branch_ms"] == pytest.approx(service["branch_ms"], rel=1e-9)
    assert cli["critical_branch"] == service["critical_branch"]
    assert cli["payload_bytes"] == service["payload_bytes"]
    if document is MESH:
        assert service["critical_branch"] in ("e1", "e2") and set(service["branch_ms"]) == {"e1", "e2"}


def test_the_cli_refuses_an_unknown_kind_without_suggesting_a_failing_command(served: Service) -> None:
    run = subprocess.run([str(BIN / "predictor"), "predict", "--db", served.db_url, "-d", "raspi4", "--arch", ARCH,
                          "--kind", "nosuch"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert "unknown predictor kind 'nosuch'" in run.stderr + run.stdout
    assert "predictor fit" not in run.stderr + run.stdout


@pytest.mark.parametrize("space_name", ["fbnet-extended-cifar100", "fbnet-cifar100", "mbconv-cifar100"])
def test_vectorized_split_latency_equals_the_scalar_one(space_name: str) -> None:
    space = get_space(space_name)
    head, tail = synthetic_lut(space_name, "pi", seed=1, scale=1.1), synthetic_lut(space_name, "gpu", seed=2)
    head.call_ms, tail.call_ms = 0.4, 0.05
    rng = random.Random(5)
    archs = [sample_architecture(space, rng, splits=1) for _ in range(300)]
    bottlenecks = [b.name for b in space.blocks if "/" in b.name]
    for i in range(0, len(archs), 3):  # a bottleneck block right before the split: the split falls inside it
        arch = archs[i]
        if bottlenecks and arch.split > 0 and any(b in space.layer(arch.split - 1).block_names for b in bottlenecks):
            blocks = list(arch.blocks)
            blocks[arch.split - 1] = next(b for b in bottlenecks if b in space.layer(arch.split - 1).block_names)
            archs[i] = Architecture(space, tuple(blocks), arch.splits)
    if bottlenecks:
        assert sum(0 < a.layer_ops[a.split - 1].front_share < 1 for a in archs if a.split) > 50
    link = Link(8, 16)
    columns = np.array([head.indices(a) for a in archs])
    batch = batch_split_latency(columns, np.array([a.split for a in archs]), head, tail, link)
    for i, arch in enumerate(archs):
        scalar = split_latency(arch, head, tail, link)
        head_part, tail_part = scalar.segments
        assert batch["total_ms"][i] == pytest.approx(scalar.total_ms, rel=1e-12)
        assert batch["head_ms"][i] == pytest.approx(head_part.compute_ms, rel=1e-12)
        assert batch["tail_ms"][i] == pytest.approx(tail_part.compute_ms, rel=1e-12)
        assert batch["comm_ms"][i] == pytest.approx(head_part.comm_ms, rel=1e-12)
        assert batch["payload_elements"][i] == head_part.payload_elements == arch.payload(arch.split)
