"""A workload as one ONNX model (static shapes, batch 1), exported once and cached on disk.

The model holds every module of the workload, ``y<i> = modules[i](x<i>)``: an op's ``copies``
independent instances (own weights, own input) are one graph, run by one call of the runtime as they
are by one call in torch, and a network is one graph with one input and one output.

Exporter: torch's TorchScript-based ``torch.onnx.export(..., dynamo=False)``. Measured on the 2-core
reference machine (loaded) for blocks of 8 copies: 0.2-2.5 s against 4.5-12.7 s with ``dynamo=True``
(onnxscript, ``torch.export``), about 1 s per block whichever way for one copy; a whole fbnet-cifar100
network takes 2-4 s. The dynamo exporter would make exporting a space's ops alone take longer than
profiling it under torch. The cache key holds the exporter and torch versions, so a new torch exports
again; a re-run or ``--resume`` exports nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from profiler.workloads import Workload

EXPORTER = "torchscript"  # torch.onnx.export(..., dynamo=False)
OPSET = 18


def exporter_facts() -> dict[str, object]:
    """What the export depends on, recorded in the run's environment and in the cache key."""
    return {"exporter": EXPORTER, "opset": OPSET, "torch": str(torch.__version__)}


class Parallel(nn.Module):
    """``modules[i]`` applied to the ``i``-th input: what a workload's call computes, as one module."""

    def __init__(self, modules: tuple[nn.Module, ...]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(modules)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(module(x) for module, x in zip(self.parts, inputs, strict=True))


def input_names(workload: Workload) -> list[str]:
    return [f"x{i}" for i in range(len(workload.inputs))]


def cache_path(workload: Workload, cache_dir: Path) -> Path:
    """The file of ``workload``'s export: named after its key, hashed with shapes and exporter facts."""
    facts = {"key": workload.key, "shapes": [list(x.shape) for x in workload.inputs], **exporter_facts()}
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", workload.key).strip("_")[:80]
    return cache_dir / f"{name}-{digest}.onnx"


def exported(workload: Workload, cache_dir: Path) -> Path:
    """The ONNX file of ``workload`` in ``cache_dir``, exported unless it is there (written atomically)."""
    path = cache_path(workload, cache_dir)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    model = Parallel(workload.modules).eval()
    names = input_names(workload)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".onnx.tmp", delete=False) as handle:
        temporary = Path(handle.name)
    try:
        # Modules built in inference mode: tracing runs them once more, outside it, without autograd.
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice, once per export
            torch.onnx.export(
                model, workload.inputs, str(temporary), dynamo=False, opset_version=OPSET,
                input_names=names, output_names=[f"y{i}" for i in range(len(names))],
                training=torch.onnx.TrainingMode.PRESERVE,  # EVAL would leave the modules in training mode
            )
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
