"""MeasurementRecord / RunRecord / MeasurementBatch: the checks every upload and local write goes through."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from db.records import DEFAULT_RUNTIME, MeasurementBatch, MeasurementRecord, RunRecord, runtime_name


def block(**overrides: Any) -> dict[str, Any]:
    fields = {
        "target": "block", "key": "fbnet-cifar100/L7/k5_e6", "space": "fbnet-cifar100", "layer": 7,
        "block": "k5_e6", "latency_ms": 1.5,
    }
    return {**fields, **overrides}


def _error(fields: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        MeasurementRecord(**fields)
    return str(info.value)


def test_valid_records() -> None:
    assert MeasurementRecord(**block()).latency_ms == 1.5
    assert MeasurementRecord(**block(source="imported", latency_ms=0.0)).latency_ms == 0.0
    assert MeasurementRecord(target="fixed", key="mbconv-imagenet/first", space="mbconv-imagenet", latency_ms=2.0)
    assert MeasurementRecord(target="config", key="conv_h8_cin64_cout64_k3_s1_e6_g1_res", latency_ms=0.3)
    text = "k3_e1/2," * 21 + "skip@3"
    assert MeasurementRecord(
        target="model", key=f"fbnet-extended-cifar100/{text}", space="fbnet-extended-cifar100", latency_ms=9.0
    )


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"latency_ms": -0.5}, ["latency_ms", "non-negative", "-0.5"]),
        ({"latency_ms": 0.0}, ["latency_ms must be positive", "imported"]),
        ({"latency_ms": math.nan}, ["latency_ms must be a finite number", "nan"]),
        ({"latency_ms": math.inf}, ["latency_ms must be a finite number", "inf"]),
        ({"latency_ms": -math.inf}, ["latency_ms must be a finite number"]),
        ({"latency_ms": -1.0, "source": "imported"}, ["latency_ms", "non-negative"]),
        ({"iqr_ms": math.nan}, ["iqr_ms must be a finite number"]),
        ({"min_ms": -1.0}, ["min_ms", "non-negative"]),
        ({"energy_mj": math.inf}, ["energy_mj must be a finite number"]),
        ({"repeats": 0}, ["repeats", "greater than or equal to 1"]),
        ({"flops": -3}, ["flops", "greater than or equal to 0"]),
        ({"space": "fbnet-cifar10"}, ["unknown search space 'fbnet-cifar10'", "allowed: fbnet-cifar100"]),
        ({"space": None}, ["space is required for target 'block'"]),
        ({"layer": 22}, ["layer 22 is not in space 'fbnet-cifar100'", "0..21"]),
        ({"layer": None}, ["layer and block are required"]),
        ({"block": "k9_e9"}, ["block 'k9_e9' is not a candidate at layer 7", "allowed: k3_e1"]),
        ({"block": "k3_e1/2"}, ["block 'k3_e1/2' is not a candidate at layer 7"]),
        ({"block": "3x3conv"}, ["malformed block name '3x3conv'"]),
        ({"key": ""}, ["key", "at least 1 character"]),
        ({"target": "layer"}, ["target", "'block', 'fixed', 'config' or 'model'"]),
        ({"source": "guessed"}, ["source", "'measured' or 'imported'"]),
        ({"key": "k" * 513, "target": "config"}, ["key", "at most 512 characters"]),
        ({"op_key": "o" * 129}, ["op_key", "at most 128 characters"]),
        ({"target": "config", "space": None, "layer": 2**31}, ["layer", "less than or equal to 2147483647"]),
        ({"repeats": 2**31}, ["repeats", "less than or equal to 2147483647"]),
        ({"flops": 2**63}, ["flops", "less than or equal to 9223372036854775807"]),
        ({"target": "config", "key": "a\x00b"}, ["key", "text contains a NUL character"]),
        ({"op_key": "conv\udc80"}, ["op_key", "nicode"]),  # pydantic's own message or ours
        ({"raw": {"times": [1.0, math.nan]}}, ["raw", "value.times[1] is nan: JSON numbers must be finite"]),
        ({"config": {"macs": math.inf}}, ["config", "value.macs is inf"]),
        ({"config": {"note": "a\x00"}}, ["config", "value.note contains a NUL character"]),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, dict) else None,
)
def test_invalid_records_are_refused_naming_the_field(overrides: dict[str, Any], fragments: list[str]) -> None:
    message = _error(block(**overrides))
    for fragment in fragments:
        assert fragment in message


def test_fixed_and_model_records_name_the_bad_part() -> None:
    message = _error({"target": "fixed", "key": "fbnet-cifar100/first", "space": "fbnet-cifar100", "latency_ms": 1})
    assert "no fixed layer 'first'; allowed: stem, head, pool, fc" in message
    bad_arch = "fbnet-cifar100/" + ",".join(["k3_e1"] * 21)
    message = _error({"target": "model", "key": bad_arch, "space": "fbnet-cifar100", "latency_ms": 1})
    assert "21 blocks but space 'fbnet-cifar100' has 22 layers" in message


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"device": "my laptop!"}, "device"), ({"uid": ""}, "uid"), ({"status": "paused"}, "status"),
        ({"uid": "u" * 65}, "uid"), ({"uid": "r\x001"}, "uid"), ({"host": "h" * 256}, "host"),
        ({"host": "pi\ud800"}, "host"), ({"device_kind": "k" * 33}, "device_kind"),
        ({"environment_key": "e" * 65}, "environment_key"), ({"device_description": "a\x00"}, "device_description"),
        ({"environment": {"load": [0.5, math.nan]}}, "environment"), ({"settings": {"x": math.inf}}, "settings"),
        ({"device_facts": {"cpu": "\udfff"}}, "device_facts"),
        ({"started_at": "0001-01-01T00:00:00+05:00"}, "started_at"),
        ({"runtime": "ONNX Runtime"}, "runtime"), ({"runtime": ""}, "runtime"), ({"runtime": "r" * 33}, "runtime"),
        ({"runtime": "-torch"}, "runtime"),
    ],
)
def test_invalid_runs(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        RunRecord(**{"uid": "r1", "device": "pi4", **overrides})
    assert info.value.errors()[0]["loc"] == (field,)


def test_batch_survives_json_round_trip() -> None:
    batch = MeasurementBatch(
        run=RunRecord(uid="r1", device="raspi4", device_facts={"cores": 4}),
        measurements=[MeasurementRecord(**block(raw={"times": [1.4, 1.5]}, repeats=120, iqr_ms=0.01))],
    )
    assert MeasurementBatch.model_validate_json(batch.model_dump_json()) == batch


def test_batch_refuses_one_bad_record_with_its_position() -> None:
    with pytest.raises(ValidationError) as info:
        MeasurementBatch.model_validate(
            {"run": {"uid": "r1", "device": "pi4"}, "measurements": [block(), block(latency_ms=math.nan)]}
        )
    assert info.value.errors()[0]["loc"][:3] == ("measurements", 1, "latency_ms")


def test_run_times_are_kept_in_utc() -> None:
    run = RunRecord(uid="r1", device="pi4", started_at="2026-05-01T12:00:00+02:00", finished_at="2026-05-01T12:00:00")
    assert (run.started_at.isoformat(), run.finished_at.isoformat()) == (
        "2026-05-01T10:00:00+00:00", "2026-05-01T12:00:00+00:00"
    )


def test_a_lone_surrogate_in_json_text_is_refused_naming_the_field() -> None:
    """As the service parses it (json.loads keeps an unpaired UTF-16 escape as a lone surrogate)."""
    body = '{"run": {"uid": "r1", "device": "pi4", "host": "pi\\ud800"}, "measurements": []}'
    with pytest.raises(ValidationError) as info:
        MeasurementBatch.model_validate(json.loads(body))
    assert info.value.errors()[0]["loc"] == ("run", "host")


def test_a_run_names_its_runtime_torch_by_default() -> None:
    assert RunRecord(uid="r1", device="pi4").runtime == DEFAULT_RUNTIME == "torch"
    assert RunRecord(uid="r1", device="pi4", runtime="edgetpu-compiler").runtime == "edgetpu-compiler"
    assert runtime_name("tflite") == "tflite"
    with pytest.raises(ValueError, match="invalid runtime 'TensorRT': a runtime is 1 to 32 lower-case letters"):
        runtime_name("TensorRT")
