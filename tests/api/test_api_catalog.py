"""``/devices``, ``/spaces``, ``/spaces/{space}``, ``/predictors``: what the service knows."""

from __future__ import annotations

from spaces import get_space, list_spaces
from tests.api.conftest import Target
from tests.utils.api_data import SPACE


def test_devices_list_measurements_and_predictors(api: Target) -> None:
    devices = {d["name"]: d for d in api.client.get("/devices").json()}
    assert {"raspi4", "edgegpu"} <= set(devices)
    raspi = devices["raspi4"]
    space = get_space(SPACE)
    assert raspi["measurements"][SPACE] == sum(len(layer.blocks) for layer in space.layers) + len(space.fixed_layers)
    assert {"fbnet-cifar100/lookup", "fbnet-cifar100/flops-linear"} <= set(raspi["predictors"])
    assert devices["edgegpu"]["measurements"][SPACE] == raspi["measurements"][SPACE] - 2


def test_spaces_list_every_registered_space(api: Target) -> None:
    spaces = api.client.get("/spaces").json()
    assert [s["name"] for s in spaces] == list_spaces()
    fbnet = next(s for s in spaces if s["name"] == SPACE)
    assert (fbnet["layers"], fbnet["split_points"], len(fbnet["blocks"])) == (22, 23, 9)


def test_space_detail_has_layers_blocks_and_split_points(api: Target) -> None:
    response = api.client.get(f"/spaces/{SPACE}")
    assert response.status_code == 200
    space = response.json()
    assert [layer["cout"] for layer in space["layer_table"]][:6] == [16, 24, 24, 24, 24, 32]
    assert "k5_e6" in space["layer_table"][7]["blocks"]
    assert [p["k"] for p in space["split_point_table"]] == list(range(23))
    assert space["split_point_table"][8]["payload_elements"] == 32 * 16 * 16  # after layer 7
    assert [f["name"] for f in space["prefix"]] and [f["name"] for f in space["suffix"]]


def test_unknown_space_is_404_listing_the_spaces(api: Target) -> None:
    response = api.client.get("/spaces/darts")
    assert response.status_code == 404
    (error,) = response.json()["detail"]
    assert error["loc"] == ["path", "space"] and SPACE in error["msg"]


def test_predictors_carry_validation_metrics(api: Target) -> None:
    response = api.client.get("/predictors", params={"device": "raspi4"})
    assert response.status_code == 200
    predictors = {p["kind"]: p for p in response.json()}
    assert set(predictors) == {"lookup", "flops-linear"}
    linear = predictors["flops-linear"]
    assert linear["device"] == "raspi4" and linear["space"] == SPACE and linear["version"] >= 1
    assert "pi_gflops" in linear["metrics"]["fit"] and linear["metrics"]["protocols"]
    assert linear["meta"]["libraries"]


def test_predictors_of_an_unknown_device_is_404(api: Target) -> None:
    response = api.client.get("/predictors", params={"device": "jetson"})
    assert response.status_code == 404
    assert response.json()["detail"][0]["loc"] == ["query", "device"]
    assert api.client.get("/predictors", params={"space": "nope"}).status_code == 422
