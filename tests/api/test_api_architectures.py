"""``/architectures/latency``: split, chain, mesh and batch forms against the predictor's arithmetic."""

from __future__ import annotations

import random

import pytest

from db.engine import session_scope
from predictor import Link, chain_latency, load_lut, split_latency
from spaces import Architecture, get_space, sample_architecture
from tests.api.conftest import MAX_BATCH, Target
from tests.utils.api_data import SPACE

ARCH = ("k3_e1,k3_e1,k5_e6,skip,k3_e3,k5_e6,k3_e1,k5_e3,skip,k3_e6,k5_e1,k3_e1_g2,k5_e6,k3_e3,skip,k5_e1_g2,"
        "k3_e6,k5_e6,k3_e1,skip,k5_e3,k3_e6")


def tables(api: Target, *devices: str) -> list:
    with session_scope(api.db_url) as session:
        return [load_lut(session, device=d, space=SPACE, kind="auto") for d in devices]


def post(api: Target, path: str, body: dict):  # noqa: ANN201
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
    assert eight["comm_ms"] == pytest.approx(full["comm_ms"] / 4)
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
        ({"bandwidth_mbps": 0}, 422, ["body", "bandwidth_mbps"], "greater than 0"),
        ({"bandwidth_mbps": -8}, 422, ["body", "bandwidth_mbps"], "greater than 0"),
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


def test_chain_of_three_devices(api: Target) -> None:
    body = {"topology": "chain", "arch": ARCH + "@4,12", "devices": ["raspi4", "edgegpu", "raspi4"],
            "links": [{"bandwidth_mbps": 25}, {"bandwidth_mbps": 50, "bits": 16}]}
    response = post(api, "/multi", body)
    assert response.status_code == 200
    result = response.json()
    raspi, edge = tables(api, "raspi4", "edgegpu")
    expected = chain_latency(Architecture.parse(ARCH + "@4,12", SPACE), [raspi, edge, raspi],
                             [Link(25, 32), Link(50, 16)])
    assert result["total_ms"] == pytest.approx(expected.total_ms)
    assert [s["layers"] for s in result["segments"]] == [list(range(4)), list(range(4, 12)), list(range(12, 22))]
    assert [s["device"] for s in result["segments"]] == ["raspi4", "edgegpu", "raspi4"]
    assert result["segments"][1]["payload_bytes"] == result["segments"][1]["payload_elements"] * 2
    assert result["segments"][2]["comm_ms"] == 0


def test_mesh_is_chain_then_the_slowest_root_to_branch_path(api: Target) -> None:
    body = {"topology": "mesh", "arch": ARCH + "@4,12", "devices": ["raspi4", "edgegpu"],
            "links": [{"bandwidth_mbps": 25}, {"bandwidth_mbps": 50}],
            "branches": [{"device": "raspi4", "bandwidth_mbps": 200}, {"device": "edgegpu", "bandwidth_mbps": 200}]}
    response = post(api, "/multi", body)
    assert response.status_code == 200
    result = response.json()
    chain = result["chain"][0]
    root = result["root"]
    paths = [root["compute_ms"] + root["comm_ms"] + b["compute_ms"] + b["comm_ms"] for b in result["branches"]]
    assert result["total_ms"] == pytest.approx(chain["compute_ms"] + chain["comm_ms"] + max(paths))
    assert [b["path_ms"] for b in result["branches"]] == pytest.approx(paths)
    assert result["critical_branch"] == "raspi4"  # the slow device runs the longer branch
    output = get_space(SPACE).suffix[-1].op.payload
    assert result["branches"][0]["comm_ms"] == pytest.approx(output * 32 / 200e6 * 1e3)


@pytest.mark.parametrize(
    ("change", "status", "loc", "says"),
    [
        ({"links": [{"bandwidth_mbps": 25}]}, 422, ["body", "links"], "3 devices need 2 links"),
        ({"arch": ARCH + "@4"}, 422, ["body", "arch"], "expected 2 split point"),
        ({"devices": ["raspi4", "jetson", "edgegpu"]}, 404, ["body", "devices", 1], "known devices"),
        ({"devices": ["raspi4"]}, 422, ["body", "chain", "devices"], "at least 2"),
        ({"topology": "ring"}, 422, ["body"], "'chain', 'mesh'"),
        ({"links": [{"bandwidth_mbps": 25}, {"bandwidth_mbps": -1}]}, 422,
         ["body", "chain", "links", 1, "bandwidth_mbps"], "greater than 0"),
    ],
)
def test_bad_chain_request_names_the_field(api: Target, change: dict, status: int, loc: list, says: str) -> None:
    body = {"topology": "chain", "arch": ARCH + "@4,12", "devices": ["raspi4", "edgegpu", "raspi4"],
            "links": [{"bandwidth_mbps": 25}, {"bandwidth_mbps": 50}]} | change
    response = post(api, "/multi", body)
    assert response.status_code == status
    error = response.json()["detail"][0]
    assert error["loc"] == loc
    assert says in error["msg"]


def test_bad_mesh_request_names_the_field(api: Target) -> None:
    body = {"topology": "mesh", "arch": ARCH + "@4,12", "devices": ["raspi4", "edgegpu"],
            "links": [{"bandwidth_mbps": 25}, {"bandwidth_mbps": 50}], "branches": [{"device": "fpga-x",
                                                                                     "bandwidth_mbps": 100}]}
    response = post(api, "/multi", body)
    assert response.status_code == 404
    assert response.json()["detail"][0]["loc"] == ["body", "branches", 0, "device"]
    response = post(api, "/multi", body | {"branches": []})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "mesh", "branches"]


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
