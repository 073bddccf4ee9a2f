"""Import HW-NAS-Bench's FBNet lookup tables as measurements of five devices.

Format (``../shared/hwnasbench/README.md``): ``{"fbnet": {metric: {op_key: value}}}`` in a pickle,
or one ``lut_npy/<device>/<kind>_lookup_table.npy`` per metric. The op keys name an operator by its
input shape; this module computes, for every layer and fixed layer of the fbnet spaces, the key the
benchmark uses for it and looks it up, so every (layer, block) lands by shape. Keys that no
registered space produces are reported as not understood.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from db import queries
from db.records import MeasurementBatch, MeasurementRecord, RunRecord, Target
from spaces import Op, SearchSpace, get_space

PICKLE_NAME = "hwnasbench_fbnet_lut.pickle"
SPACES = ("fbnet-cifar100", "fbnet-imagenet")


@dataclass(frozen=True)
class BenchDevice:
    name: str
    kind: str
    description: str
    runtime: str  # what produced the device's numbers: the imported run (and its predictors) carry it


# The runtimes are those of the benchmark's own description (../shared/hwnasbench/README.md, Li et al. 2021):
DEVICES = (
    # compiled with TensorRT on the board
    BenchDevice("edgegpu", "gpu", "NVIDIA Jetson TX2 (TensorRT); HW-NAS-Bench measurements", "tensorrt"),
    # TFLite models run by the TFLite interpreter on the board's CPU
    BenchDevice("raspi4", "cpu", "Raspberry Pi 4 (TFLite); HW-NAS-Bench measurements", "tflite"),
    # TFLite models run on the phone's CPU
    BenchDevice("pixel3", "mobile", "Google Pixel 3 (TFLite); HW-NAS-Bench measurements", "tflite"),
    # no chip ran anything: estimates of an accelerator simulator (the README: "simulator estimates")
    BenchDevice("eyeriss", "asic", "Eyeriss ASIC; HW-NAS-Bench simulator estimates", "simulated"),
    # the same for the FPGA: a model of a synthesized design, not a board's timings
    BenchDevice("fpga", "fpga", "FPGA; HW-NAS-Bench simulator estimates", "simulated"),
)

Tables = dict[str, dict[str, float]]


def benchmark_key(op: Op) -> str:
    """HW-NAS-Bench's key for ``op`` (its kind's ``benchmark_key``)."""
    key = op.op_kind.benchmark_key(op)
    if key is None:
        raise ValueError(f"HW-NAS-Bench has no key for op kind {op.kind!r}")
    return key


@dataclass(frozen=True)
class Slot:
    """One row the import writes per device: a (layer, block) or fixed layer of a space, and its key."""

    space: str
    target: Target
    key: str
    op: Op
    layer: int | None = None
    block: str | None = None

    @property
    def source_key(self) -> str:
        return benchmark_key(self.op)


def space_slots(space: SearchSpace) -> list[Slot]:
    slots = [Slot(space.name, "fixed", f"{space.name}/{f.name}", f.op) for f in space.fixed_layers]
    for layer in space.layers:
        slots += [
            Slot(space.name, "block", f"{space.name}/L{layer.index}/{b.name}", layer.op(b), layer.index, b.name)
            for b in layer.blocks
        ]
    return slots


def load_tables(path: Path) -> Tables:
    """The metric tables from the pickle file, its directory, or the ``lut_npy`` directory."""
    path = Path(path)
    if path.is_dir() and (path / PICKLE_NAME).is_file():
        path = path / PICKLE_NAME
    elif path.is_dir() and (path / "lut_npy").is_dir():
        path = path / "lut_npy"
    if path.is_file():
        with path.open("rb") as handle:
            data = pickle.load(handle)  # a file the user points the importer at: trusted like code
        tables = data.get("fbnet") if isinstance(data, dict) else None
        if not isinstance(tables, dict):
            raise ValueError(f"{path}: expected a pickle of {{'fbnet': {{metric: {{op_key: value}}}}}}")
        return {metric: {str(k): float(v) for k, v in table.items()} for metric, table in tables.items()}
    if path.is_dir():
        tables = {}
        for file in sorted(path.glob("*/*_lookup_table.npy")):
            metric = f"{file.parent.name}_{file.name.removesuffix('_lookup_table.npy')}"
            table = np.load(file, allow_pickle=True).item()
            tables[metric] = {str(k): float(v) for k, v in table.items()}
        if tables:
            return tables
    raise FileNotFoundError(
        f"no HW-NAS-Bench tables at {path}: give {PICKLE_NAME}, its directory, or the lut_npy directory"
    )


@dataclass
class ImportReport:
    """What an import stored, and what it could not place."""

    devices: dict[str, dict[str, int]] = field(default_factory=dict)  # device -> {"rows": n, "inserted": m}
    metrics: list[str] = field(default_factory=list)
    not_understood: list[str] = field(default_factory=list)  # table keys no registered space produces
    unknown_metrics: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)  # metric -> keys the spaces need but it lacks

    def as_dict(self) -> dict[str, Any]:
        return {
            "devices": self.devices, "metrics": self.metrics, "not_understood": self.not_understood,
            "unknown_metrics": self.unknown_metrics, "missing": self.missing,
        }


def device_records(slots: Iterable[Slot], tables: Tables, device: str) -> tuple[list[MeasurementRecord], list[str]]:
    """One imported record per slot that ``device``'s latency table holds; and the keys it lacks."""
    latency = tables[f"{device}_latency"]
    energy = tables.get(f"{device}_energy", {})
    records, missing = [], []
    for slot in slots:
        source = slot.source_key
        if source not in latency:
            missing.append(source)
            continue
        records.append(
            MeasurementRecord(
                target=slot.target, key=slot.key, space=slot.space, layer=slot.layer, block=slot.block,
                op_key=slot.op.key, config={"hwnasbench_key": source}, latency_ms=latency[source],
                energy_mj=energy.get(source), flops=slot.op.flops, source="imported",
                raw={"source": "HW-NAS-Bench", "metric": f"{device}_latency"},
            )
        )
    return records, sorted(set(missing))


def import_tables(session: Session, tables: Tables, *, source: str = "") -> ImportReport:
    """Store every device's tables as one imported run (``hwnasbench-<device>``); idempotent."""
    report = ImportReport(metrics=sorted(tables))
    slots = [slot for name in SPACES for slot in space_slots(get_space(name))]
    known_keys = {slot.source_key for slot in slots}
    known_metrics = {f"{d.name}_{kind}" for d in DEVICES for kind in ("latency", "energy")}
    report.unknown_metrics = sorted(set(tables) - known_metrics)
    report.not_understood = sorted({k for m in tables if m in known_metrics for k in tables[m]} - known_keys)
    for device in DEVICES:
        if f"{device.name}_latency" not in tables:
            continue
        records, missing = device_records(slots, tables, device.name)
        if missing:
            report.missing[f"{device.name}_latency"] = missing
        run = RunRecord(
            uid=f"hwnasbench-{device.name}", device=device.name, device_kind=device.kind, runtime=device.runtime,
            device_description=device.description, device_facts={"source": "HW-NAS-Bench (Li et al., ICLR 2021)"},
            host="", environment={"source": "HW-NAS-Bench", "path": source},
            settings={"metrics": [m for m in tables if m.startswith(f"{device.name}_")]}, status="imported",
        )
        inserted, _ = queries.ingest_batch(session, batch=MeasurementBatch(run=run, measurements=records))
        report.devices[device.name] = {"rows": len(records), "inserted": inserted}
    for metric, table in tables.items():
        if metric.endswith("_energy") and metric in known_metrics:
            lacking = sorted(known_keys - set(table))
            if lacking:
                report.missing[metric] = lacking
    return report
