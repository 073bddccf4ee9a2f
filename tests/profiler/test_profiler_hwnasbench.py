"""Importing HW-NAS-Bench's FBNet tables: complete, equal to the source, summing like the benchmark."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from db import queries, session_scope
from profiler.cli import app
from profiler.hwnasbench import import_tables, load_tables
from spaces import get_space, sample_architecture

DEVICES = ("edgegpu", "raspi4", "pixel3", "eyeriss", "fpga")
# what produced each device's numbers, as the benchmark describes it (written out independently of the importer)
RUNTIMES = {"edgegpu": "tensorrt", "raspi4": "tflite", "pixel3": "tflite", "eyeriss": "simulated",
            "fpga": "simulated"}
ENERGY = ("edgegpu", "eyeriss", "fpga")

# The CIFAR-100 layer shapes of HW-NAS-Bench's FBNet space, written out independently of spaces/:
# (input size, Cin, Cout, stride) per layer.
CIFAR_LAYERS = (
    [(32, 16, 16, 1), (32, 16, 24, 1)] + [(32, 24, 24, 1)] * 3 + [(32, 24, 32, 2)] + [(16, 32, 32, 1)] * 3
    + [(16, 32, 64, 2)] + [(8, 64, 64, 1)] * 3 + [(8, 64, 112, 1)] + [(8, 112, 112, 1)] * 3
    + [(8, 112, 184, 2)] + [(4, 184, 184, 1)] * 3 + [(4, 184, 352, 1)]
)
BLOCK_PARAMS = {  # block -> (expansion, kernel, groups)
    "k3_e1": (1, 3, 1), "k3_e1_g2": (1, 3, 2), "k3_e3": (3, 3, 1), "k3_e6": (6, 3, 1),
    "k5_e1": (1, 5, 1), "k5_e1_g2": (1, 5, 2), "k5_e3": (3, 5, 1), "k5_e6": (6, 5, 1),
}


def source_key(layer: int, block: str) -> str:
    h, cin, cout, s = CIFAR_LAYERS[layer]
    if block == "skip":
        return f"Skip_H{h}_W{h}_Cin{cin}_Cout{cout}_stride{s}"
    e, k, g = BLOCK_PARAMS[block]
    return f"ConvBlock_H{h}_W{h}_Cin{cin}_Cout{cout}_exp{e}_kernel{k}_stride{s}_group{g}"


FIXED_KEYS = {
    "stem": "ConvNorm_H32_W32_Cin3_Cout16_kernel3_stride1_group1",
    "head": "ConvNorm_H4_W4_Cin352_Cout1504_kernel1_stride1_group1",
    "pool": "AvgP_H4_W4_Cin1504_Cout1504_kernel4_stride1",
    "fc": "FC_Cin1504_Cout100",
}


@pytest.fixture(scope="module")
def source(hwnasbench_dir: Path) -> dict[str, dict[str, float]]:
    with (hwnasbench_dir / "hwnasbench_fbnet_lut.pickle").open("rb") as handle:
        return pickle.load(handle)["fbnet"]


def test_import_is_complete_equal_to_the_source_and_idempotent(
    db_url: str, hwnasbench_dir: Path, source: dict[str, dict[str, float]]
) -> None:
    result = CliRunner().invoke(app, ["import-hwnasbench", str(hwnasbench_dir), "--db", db_url, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["not_understood"] == ["FC_Cin1504_Cout10"]
    assert report["missing"] == {} and report["unknown_metrics"] == []
    assert {d: c["rows"] for d, c in report["devices"].items()} == {d: 2 * (22 * 9 + 4) for d in DEVICES}

    with session_scope(db_url) as session:
        for device in DEVICES:
            (run,) = queries.list_runs(session, device=device)
            assert run.uid == f"hwnasbench-{device}" and run.status == "imported"
            assert run.runtime == RUNTIMES[device]
            rows = queries.latest_measurements(session, device=device, runtime=run.runtime, space="fbnet-cifar100")
            assert len([r for r in rows.values() if r.target == "block"]) == 22 * 9
            for layer in range(22):
                for block in (*BLOCK_PARAMS, "skip"):
                    row = rows[f"fbnet-cifar100/L{layer}/{block}"]
                    key = source_key(layer, block)
                    assert row.latency_ms == source[f"{device}_latency"][key], (device, layer, block)
                    assert row.source == "imported" and row.config["hwnasbench_key"] == key
                    if device in ENERGY:
                        assert row.energy_mj == source[f"{device}_energy"][key]
                    else:
                        assert row.energy_mj is None
            for name, key in FIXED_KEYS.items():
                assert rows[f"fbnet-cifar100/{name}"].latency_ms == source[f"{device}_latency"][key]
            imagenet = queries.latest_measurements(session, device=device, runtime=run.runtime, space="fbnet-imagenet")
            assert len(imagenet) == 22 * 9 + 4
            stem = imagenet["fbnet-imagenet/stem"]
            imagenet_stem = "ConvNorm_H224_W224_Cin3_Cout16_kernel3_stride2_group1"
            assert stem.latency_ms == source[f"{device}_latency"][imagenet_stem]
        device_row = queries.get_device(session, name="eyeriss")
        assert device_row.kind == "asic" and "simulator" in device_row.description
        assert queries.device_runtimes(session) == {device: [RUNTIMES[device]] for device in sorted(DEVICES)}
        assert queries.latest_measurements(session, device="raspi4") == {}  # nothing of it ran under torch

    again = CliRunner().invoke(app, ["import-hwnasbench", str(hwnasbench_dir), "--db", db_url])
    assert again.exit_code == 0 and "0 new" in again.output and "FC_Cin1504_Cout10" in again.output
    with session_scope(db_url) as session:
        assert len(queries.list_measurements(session, device="raspi4")) == 2 * (22 * 9 + 4)


def test_summing_an_architecture_reproduces_the_benchmark_rule(
    db_url: str, hwnasbench_dir: Path, source: dict[str, dict[str, float]]
) -> None:
    with session_scope(db_url) as session:
        import_tables(session, load_tables(hwnasbench_dir))
    space = get_space("fbnet-cifar100")
    rng = random.Random(7)
    with session_scope(db_url) as session:
        for device in DEVICES:
            rows = queries.latest_measurements(session, device=device, runtime=RUNTIMES[device], space="fbnet-cifar100")
            table = source[f"{device}_latency"]
            for _ in range(20):
                arch = sample_architecture(space, rng)
                stored = rows["fbnet-cifar100/stem"].latency_ms + sum(
                    rows[f"fbnet-cifar100/L{i}/{b}"].latency_ms for i, b in enumerate(arch.blocks)
                ) + sum(rows[f"fbnet-cifar100/{n}"].latency_ms for n in ("head", "pool", "fc"))
                direct = table[FIXED_KEYS["stem"]] + sum(
                    table[source_key(i, b)] for i, b in enumerate(arch.blocks)
                ) + sum(table[FIXED_KEYS[n]] for n in ("head", "pool", "fc"))
                assert stored == pytest.approx(direct, rel=1e-12), (device, arch.encode())


def test_npy_tables_and_pickle_file_give_the_same_import(hwnasbench_dir: Path) -> None:
    from_pickle = load_tables(hwnasbench_dir / "hwnasbench_fbnet_lut.pickle")
    assert load_tables(hwnasbench_dir) == from_pickle
    assert load_tables(hwnasbench_dir / "lut_npy") == from_pickle
    with pytest.raises(FileNotFoundError, match="lut_npy"):
        load_tables(hwnasbench_dir / "no-such-dir")


def test_keys_it_cannot_place_are_reported(db_url: str, hwnasbench_dir: Path) -> None:
    tables = load_tables(hwnasbench_dir)
    lacking = "ConvBlock_H8_W8_Cin64_Cout64_exp6_kernel5_stride1_group1"
    del tables["pixel3_latency"][lacking]
    tables["pixel3_latency"]["ConvBlock_H9_W9_Cin1_Cout1_exp1_kernel3_stride1_group1"] = 1.0
    tables["tpu_latency"] = {"FC_Cin1504_Cout100": 1.0}
    with session_scope(db_url) as session:
        report = import_tables(session, tables)
    assert report.missing == {"pixel3_latency": [lacking]}
    assert report.not_understood == ["ConvBlock_H9_W9_Cin1_Cout1_exp1_kernel3_stride1_group1", "FC_Cin1504_Cout10"]
    assert report.unknown_metrics == ["tpu_latency"]
    assert report.devices["pixel3"]["rows"] == 2 * (22 * 9 + 4) - 3  # layers 10, 11, 12 have that shape
