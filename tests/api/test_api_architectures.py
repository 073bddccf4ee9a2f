"""``/architectures/latency``: split, chain, mesh and batch forms against the predictor's arithmetic."""

from __future__ import annotations

import random

import pytest

from db.engine import session_scope
from predictor import Link, load_lut, split_latency
from predictor.topology import completion_latency, topology_luts
from predictor.topology_file import parse_topology
from spaces import Architecture, sample_architecture
from tests.api.conftest import MAX_BATCH, Target
from tests.utils.api_data import SPACE

ARCH = ("k3_e1,k3_e1,k5_e6,skip,k3_e3,k5_e6,k3_e1,k5_e3,skip,k3_e6,k5_e1,k3_e1_g2,k5_e6,k3_e3,skip,k5_e1_g2,"
        "k3_e6,k5_e6,k3_e1,skip,k5_e3,k3_e6")


def tables(api: Target, *devices: str) -> list:
    with session_scope(api.db_url) as session:
        return [load_lut(session, device=d, space=SPACE, kind="auto") for d in devices]


def post(api: Target, path: str, body: dict):
    return api.client.post(f"/architectures/latency{path}", json=body)


def test_split_latency_is_head_plus_link_plus_tail(api: Target) -> None:
    body = {"arch": ARCH + "@7", "head_device": "raspi4", "tail_device": "edgegpu", "bandwidth_mbps": 8, "bits": 32}
    response = post(api, "", body)
    assert response.status_code == 200
    result = response.json()
    head, tail = tables(api, "raspi4", "edgegpu")
    arch = Architecture.parse(ARCH + "@7", SPACE)
    expected = split_latency(arch, head, tail, Link(8, 32))
    assert result["total_ms"] == pytest.approx(expected.total_ms)
    assert result["total_ms"] == pytest.approx(result["head_ms"] + result["comm_ms"] + result["tail_ms"])
    assert result["payload_elements"] == arch.payload(7) == 32 * 16 * 16
    assert result["payload_bytes"] == result["payload_elements"] * 4
    assert result["comm_ms"] == pytest.approx(result["payload_elements"] * 32 / 8e6 * 1e3)
    assert [layer["device"] for layer in result["per_layer"]] == ["raspi4"] * 7 + ["edgegpu"] * 15
    assert [layer["block"] for layer in result["per_layer"]] == list(arch.blocks)
    assert result["predictors"] == {"head": "lookup", "tail": "lookup+flops-linear"}


def test_blocks_and_split_give_the_same_answer_as_the_string(api: Target) -> None:
    common = {"head_device": "raspi4", "tail_device": "edgegpu", "bandwidth_mbps": 25, "bits": 8}
    from_string = post(api, "", common | {"arch": ARCH + "@12"}).json()
    from_list = post(api, "", common | {"blocks": ARCH.split(","), "split": 12}).json()
    assert from_list == from_string


def test_quantized_payloads_shrink_the_link_time(api: Target) -> None:
    common = {"arch": ARCH + "@3", "head_device": "raspi4", "tail_device": "edgegpu", "bandwidth_mbps": 8}
    full, eight = (post(api, "", common | {"bits": bits}).json() for bits in (32, 8))
    # int8 sends a quarter of the bits, plus its scale and zero point (8 bytes)
    assert eight["comm_ms"] == pytest.approx(full["comm_ms"] / 4 + 8 * 8 / 8e6 * 1e3)
    assert eight["payload_bytes"] == full["payload_bytes"] / 4 + 8
    assert eight["head_ms"] == pytest.approx(full["head_ms"])


@pytest.mark.parametrize(
    ("change", "status", "loc", "says"),
    [
        ({"arch": ",".join(ARCH.split(",")[:21]) + "@7"}, 422, ["body", "arch"], "22 layers"),
        ({"arch": ARCH.replace("k3_e1_g2", "k3_e9") + "@7"}, 422, ["body", "arch"], "k3_e9"),
        ({"arch": ARCH}, 422, ["body", "arch"], "split point"),
        ({"arch": ARCH + "@23"}, 422, ["body", "arch"], "0..22"),
        ({"arch": ARCH + "@x"}, 422, ["body", "arch"], "integers"),
        ({"arch": ARCH + "@3,9"}, 422, ["body", "arch"], "expected 1 split point"),
        ({"arch": None, "blocks": ARCH.split(",")}, 422, ["body"], "'split' is required"),
        ({"blocks": ARCH.split(","), "split": 7}, 422, ["body"], "either 'arch'"),
        ({"arch": None}, 422, ["body"], "either 'arch'"),
        ({"space": "fbnet-huge"}, 422, ["body", "space"], "fbnet-cifar100"),
        ({"head_device": "jetson"}, 404, ["body", "head_device"], "known devices"),
        ({"tail_device": "cloud"}, 404, ["body", "tail_device"], "known devices"),
        ({"bandwidth_mbps": 0}, 422, ["body", "bandwidth_mbps"], "greater than or equal to 0.000001"),
        ({"bandwidth_mbps": -8}, 422, ["body", "bandwidth_mbps"], "greater than or equal to 0.000001"),
        ({"bandwidth_mbps": "fast"}, 422, ["body", "bandwidth_mbps"], "valid number"),
        ({"bits": 12}, 422, ["body", "bits"], "8, 16 or 32"),
        ({"predictor": "oracle"}, 422, ["body", "predictor"], "'auto'"),
    ],
)
def test_bad_split_request_names_the_field(api: Target, change: dict, status: int, loc: list, says: str) -> None:
    body = {"arch": ARCH + "@7", "head_device": "raspi4", "tail_device": "edgegpu"} | change
    response = post(api, "", {k: v for k, v in body.items() if v is not None})
    assert response.status_code == status, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == loc
    assert says in error["msg"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_bandwidth_is_refused(api: Target, value: str) -> None:
    text = f'{{"arch": "{ARCH}@7", "head_device": "raspi4", "tail_device": "edgegpu", "bandwidth_mbps": {value}}}'
    response = api.client.post("/architectures/latency", content=text, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "bandwidth_mbps"]


CHAIN_DOC = {
    "topology": "chain",
    "devices": [{"name": "ue", "device": "raspi4"}, {"name": "edge", "device": "edgegpu"},
                {"name": "far", "device": "raspi4", "latency_factor": 0.5}],
    "links": [{"from": "ue", "to": "edge", "bandwidth_mbps": 25},
              {"from": "edge", "to": "far", "bandwidth_mbps": 50, "bits": 16}],
}
MESH_DOC = {
    "topology": "mesh",
    "devices": [{"name": "ue", "device": "raspi4"}, {"name": "root", "device": "edgegpu"},
                {"name": "e1", "device": "edgegpu"}, {"name": "e2", "device": "raspi4"},
                {"name": "merge", "device": "edgegpu", "latency_factor": 0.8}],
    "links": [{"from": "ue", "to": "root", "bandwidth_mbps": 20}, {"from": "root", "to": "e1", "bandwidth_mbps": 50},
              {"from": "root", "to": "e2", "bandwidth_mbps": 40}, {"from": "e1", "to": "merge", "bandwidth_mbps": 100},
              {"from": "e2", "to": "merge", "bandwidth_mbps": 80, "bits": 8}],
    "chain": ["ue"], "root": "root", "merge": "merge",
    "branches": [{"device": "e1", "share": 0.7}, {"device": "e2", "share": 0.3}],
}


def predicted(api: Target, document: dict, arch: str):
    """The predictor module's completion latency of ``arch`` on ``document``, from the served database."""
    topology = parse_topology(document)
    with session_scope(api.db_url) as session:
        luts = topology_luts(topology, lambda device: load_lut(session, device=device, space=SPACE, kind="auto"))
    return completion_latency(Architecture.parse(arch, SPACE), topology, luts)


def test_chain_of_three_devices_is_the_predictor_module_answer(api: Target) -> None:
    response = post(api, "/multi", CHAIN_DOC | {"arch": ARCH + "@4,12"})
    assert response.status_code == 200, response.text
    result = response.json()
    expected = predicted(api, CHAIN_DOC, ARCH + "@4,12")
    assert result["total_ms"] == pytest.approx(expected.total_ms, rel=1e-12)
    assert result["topology"] == "chain" and result["arch"] == ARCH + "@4,12"
    assert [s["layers"] for s in result["segments"]] == [list(range(4)), list(range(4, 12)), list(range(12, 22))]
    assert [s["device"] for s in result["segments"]] == ["ue", "edge", "far"]
    assert result["segments"][1]["payload_bytes"] == result["segments"][1]["payload_elements"] * 2
    assert result["segments"][2]["comm_ms"] == 0 and result["branch_ms"] == {} and result["critical_branch"] is None
    assert result["payload_bytes"] == sum(s["payload_bytes"] for s in result["segments"])
    assert result["predictors"] == {"ue": "lookup", "edge": "lookup+flops-linear", "far": "lookup"}


def test_mesh_has_shared_branches_and_a_merge_device(api: Target) -> None:
    response = post(api, "/multi", MESH_DOC | {"arch": ARCH + "@4,9,15"})
    assert response.status_code == 200, response.text
    result = response.json()
    expected = predicted(api, MESH_DOC, ARCH + "@4,9,15")
    assert result["total_ms"] == pytest.approx(expected.total_ms, rel=1e-12)
    assert result["branch_ms"] == pytest.approx(dict(expected.branch_ms), rel=1e-12)
    assert result["critical_branch"] == max(result["branch_ms"], key=result["branch_ms"].get)
    ue, root, branch, merge = result["segments"]
    assert [ue["device"], root["device"], merge["device"]] == ["ue", "root", "merge"]
    assert branch["device"] == result["critical_branch"]
    term = root["compute_ms"] + root["comm_ms"] + branch["compute_ms"] + branch["comm_ms"]
    assert result["branch_ms"][branch["device"]] == pytest.approx(term)
    assert result["total_ms"] == pytest.approx(ue["compute_ms"] + ue["comm_ms"] + term + merge["compute_ms"])


def test_split_points_from_blocks_or_from_the_assignment_give_the_same_answer(api: Target) -> None:
    from_string = post(api, "/multi", MESH_DOC | {"arch": ARCH + "@4,9,15"}).json()
    from_blocks = post(api, "/multi", MESH_DOC | {"blocks": ARCH.split(","), "splits": [4, 9, 15]}).json()
    assigned = post(api, "/multi", MESH_DOC | {"arch": ARCH, "assignment": {"splits": [4, 9, 15]}}).json()
    assert from_string == from_blocks == assigned


@pytest.mark.parametrize(
    ("change", "status", "loc", "says"),
    [
        ({"links": CHAIN_DOC["links"][:1]}, 422, ["body", "links"], "missing link from 'edge' to 'far'"),
        ({"arch": ARCH + "@4"}, 422, ["body", "arch"], "expected 2 split point"),
        ({"arch": ARCH + "@12,4"}, 422, ["body", "arch"], "strictly increasing"),
        ({"arch": ARCH}, 422, ["body", "assignment"], "assignment: missing"),
        ({"devices": [*CHAIN_DOC["devices"][:2], {"name": "far", "device": "jetson"}]}, 404,
         ["body", "devices", 2, "device"], "known devices"),
        ({"chain": ["ue"], "devices": ["ue"], "links": []}, 422, ["body", "chain"], "at least two devices"),
        ({"topology": "ring"}, 422, ["body", "topology"], "'chain' or 'mesh'"),
        ({"links": [CHAIN_DOC["links"][0], {"from": "edge", "to": "far", "bandwidth_mbps": -1}]}, 422,
         ["body", "links", 1, "bandwidth_mbps"], "at least 1e-06"),
        ({"links": [CHAIN_DOC["links"][0], {"from": "edge", "to": "far", "bandwidth_mbps": 5, "bits": 12}]}, 422,
         ["body", "links", 1, "bits"], "8, 16 or 32"),
        ({"devices": [*CHAIN_DOC["devices"][:2], {"name": "far", "speed": 2}]}, 422, ["body", "devices", 2, "speed"],
         "unknown key"),
    ],
)
def test_bad_topology_request_names_the_field(api: Target, change: dict, status: int, loc: list, says: str) -> None:
    response = post(api, "/multi", CHAIN_DOC | {"arch": ARCH + "@4,12"} | change)
    assert response.status_code == status, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == loc
    assert says in error["msg"]


def test_bad_mesh_request_names_the_field(api: Target) -> None:
    shares = [{"device": "e1", "share": 0.7}, {"device": "e2", "share": 0.7}]
    response = post(api, "/multi", MESH_DOC | {"arch": ARCH + "@4,9,15", "branches": shares})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "branches"]
    assert "add up to 1" in response.json()["detail"][0]["msg"]
    response = post(api, "/multi", MESH_DOC | {"arch": ARCH + "@4,9,15", "merge": "cloud"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "merge"]


def test_batch_matches_the_single_form(api: Target) -> None:
    rng = random.Random(3)
    archs = [sample_architecture(SPACE, rng, splits=1).encode() for _ in range(40)]
    common = {"head_device": "raspi4", "tail_device": "edgegpu", "bandwidth_mbps": 8, "bits": 16}
    response = post(api, "/batch", common | {"archs": archs})
    assert response.status_code == 200
    batch = response.json()
    assert batch["count"] == len(archs)
    for i in (0, 17, 39):
        single = post(api, "", common | {"arch": archs[i]}).json()
        for key in ("total_ms", "head_ms", "comm_ms", "tail_ms", "payload_bytes"):
            assert batch[key][i] == pytest.approx(single[key])


def test_batch_reports_every_bad_architecture(api: Target) -> None:
    archs = [ARCH + "@7", ARCH, ARCH + "@7", ARCH.replace("skip", "k9_e9", 1) + "@2", " " + ARCH + " @5"]
    response = post(api, "/batch", {"archs": archs, "head_device": "raspi4", "tail_device": "edgegpu"})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert [e["loc"] for e in errors] == [["body", "archs", 1], ["body", "archs", 3]]
    assert "split point" in errors[0]["msg"] and "k9_e9" in errors[1]["msg"]


def test_batch_over_the_limit_is_refused(api: Target) -> None:
    body = {"archs": [ARCH + "@7"] * (MAX_BATCH + 1), "head_device": "raspi4", "tail_device": "edgegpu"}
    response = post(api, "/batch", body)
    assert response.status_code == 413
    assert response.json()["detail"][0]["loc"] == ["body", "archs"]


def test_batch_unknown_device_is_named(api: Target) -> None:
    response = post(api, "/batch", {"archs": [ARCH + "@7"], "head_device": "raspi4", "tail_device": "tpu"})
    assert response.status_code == 404
    assert response.json()["detail"][0]["loc"] == ["body", "tail_device"]
