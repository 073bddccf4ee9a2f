"""The OpenAPI schema documents every endpoint, its errors, and examples of its inputs."""

from __future__ import annotations

from tests.api.conftest import Target

ENDPOINTS = {
    ("get", "/latency"), ("post", "/latency/batch"), ("post", "/architectures/latency"),
    ("post", "/architectures/latency/multi"), ("post", "/architectures/latency/batch"), ("get", "/lut"),
    ("get", "/devices"), ("get", "/spaces"), ("get", "/spaces/{space}"), ("get", "/predictors"),
    ("post", "/predictors/fit"), ("get", "/predictors/fit/{job_id}"),
    ("post", "/measurements"), ("get", "/measurements"), ("get", "/healthz"),
    ("get", "/metrics"), ("post", "/e2e"), ("get", "/e2e"),
}


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def test_every_endpoint_is_documented_with_examples(api: Target) -> None:
    schema = api.client.get("/openapi.json").json()
    operations = {(method, path): op for path, item in schema["paths"].items() for method, op in item.items()}
    assert set(operations) == ENDPOINTS
    for (method, path), op in operations.items():
        assert op.get("description") or op.get("summary"), path
        assert {"200", "201", "202"} & set(op["responses"]), path
        for parameter in op.get("parameters", []):
            assert parameter.get("description") or parameter["in"] == "header", (path, parameter["name"])
        if method == "post":
            content = op["requestBody"]["content"]["application/json"]
            if content.get("examples"):
                continue
            for variant in content["schema"].get("oneOf", [content["schema"]]):
                model = _resolve(schema, variant)
                assert model.get("examples"), (path, model.get("title"))
    latency = {p["name"]: p for p in operations[("get", "/latency")]["parameters"]}
    assert {"block", "layer", "device", "space", "predictor", "runtime"} == set(latency)
    assert latency["block"]["example"] == "k5_e6" and latency["block"]["required"]
    assert "auto" in latency["predictor"]["schema"]["enum"]
    assert "422" in operations[("get", "/latency")]["responses"]
    assert {"401", "403", "413"} <= set(operations[("post", "/measurements")]["responses"])
    assert "304" in operations[("get", "/lut")]["responses"]
