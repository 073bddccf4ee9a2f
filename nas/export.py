"""``nas export``: a searched network cut at its split point(s) into parts, each as ONNX and TorchScript.

Part i is the ``nas.supernet.SplitNetwork``'s part i with its re-trained weights (eval mode, batch 1,
static shapes); the payload codecs are not inside the parts: the sender encodes a part's output and the
receiver decodes it (``spaces.codecs``, numpy on a server), exactly as ``run_exported`` does. The
manifest (``nas.manifest``) names every file and tensor, the devices, the links with their codecs and
payloads, and the predicted latency of every part and link: the job's, computed by the latency model its
search used. A 2-device split and a chain of more devices are exported; a mesh's branches are not.

ONNX goes through torch's TorchScript-based exporter (``dynamo=False``, opset 18) by default: on the
2-core reference machine (loaded) it exported a part in 1-3 s where the dynamo exporter took 10-16 s, and
torch is pinned to a version that has it; ``exporter="dynamo"`` uses the newer one (onnxscript).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from nas.manifest import MANIFEST_FILE, CodecSpec, Exporter, LinkSpec, Manifest, PartSpec, read_manifest, write_manifest
from nas.results import Job, SplitBreakdown, SplitResult, TopologyResult
from nas.searched import describe_network, load_searched_network
from nas.supernet import SplitNetwork
from spaces.codecs import Encoded, get_codec
from spaces.errors import UserError

Runtime = Literal["onnx", "torchscript"]
ONNX_OPSET = 18
INPUT_NAME, OUTPUT_NAME = "input", "output"


class ExportError(UserError, ValueError):
    """A job that cannot be exported (a mesh, an unfinished job); the message says why."""


@dataclass(frozen=True)
class Placement:
    """Where each part runs and what the job's latency model predicted for it and its link."""

    devices: list[str]
    part_ms: list[float]
    link_mbps: list[float]
    link_ms: list[float]
    total_ms: float


def split_placement(latency: SplitBreakdown, bandwidth_mbps: float) -> Placement:
    """The head and tail of a one-split latency breakdown (``SplitLatencyModel.breakdown``) over its link."""
    return Placement([latency.head_device, latency.tail_device], [latency.head_ms, latency.tail_ms],
                     [bandwidth_mbps], [latency.comm_ms], latency.total_ms)


def placement(job: Job) -> Placement:
    """The devices, bandwidths and predicted milliseconds of a job's parts and links, as its search computed them."""
    result = job.result
    if isinstance(result, SplitResult):
        return split_placement(result.latency, job.config.bandwidth_mbps)
    if isinstance(result, TopologyResult):
        if result.topology.kind != "chain":
            raise ExportError(f"job {job.uid} was searched on a {result.topology.kind} ({result.topology.stages}); "
                              "nas export cuts chains of devices only")
        names = [stage.devices[0] for stage in result.assignment]
        mbps = {(link.from_, link.to): link.bandwidth_mbps for link in result.topology.links}
        segments = result.latency.segments
        return Placement(names, [s.compute_ms for s in segments],
                         [mbps[(a, b)] for a, b in zip(names, names[1:], strict=False)],
                         [s.comm_ms for s in segments[:-1]], result.latency.total_ms)
    raise ExportError(f"job {job.uid} is {job.status}: only a completed search can be exported")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Torch's exporters print progress and deprecation notices meant for their developers."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def export_part(part: torch.nn.Module, example: torch.Tensor, directory: Path, index: int, *,
                exporter: Exporter = "legacy") -> tuple[str, str]:
    """Part ``index`` as ``part<index>.onnx`` and ``part<index>.pt`` (traced TorchScript) in ``directory``."""
    onnx_name, script_name = f"part{index}.onnx", f"part{index}.pt"
    with _quiet(), torch.no_grad():
        if exporter == "dynamo":
            torch.onnx.export(part, (example,), str(directory / onnx_name), dynamo=True, external_data=False,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=ONNX_OPSET)
        else:
            torch.onnx.export(part, (example,), str(directory / onnx_name), dynamo=False,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=ONNX_OPSET)
        torch.jit.trace(part, example).save(str(directory / script_name))
    return onnx_name, script_name


def export_job(job: Job, out: Path, *, exporter: Exporter = "legacy", verify: bool = True) -> Manifest:
    """Write the parts of ``job``'s network and ``manifest.json`` to ``out``.

    Everything is written to a hidden temporary directory inside ``out`` first and moved in at the end
    (the manifest last), so a failed export leaves the files already in ``out`` as they were. With
    ``verify`` the exported chain is run on a random input in both formats and its largest deviation
    from the torch network is recorded.
    """
    plan = placement(job)
    network, _ = load_searched_network(job)
    return export_network(network, plan, out, job=job.uid, method=job.method,
                          runtimes=[part_runtime(job, device) for device in plan.devices], exporter=exporter,
                          verify=verify)


def export_network(network: SplitNetwork, plan: Placement, out: Path, *, job: str, method: str, runtimes: list[str],
                   exporter: Exporter = "legacy", verify: bool = True) -> Manifest:
    """``export_job`` for any split network: its weights as they are, ``plan`` as its prediction, named ``job``.

    For networks no search found (a sampled architecture with fresh weights, for latency benches); the
    files and their atomic move are those of ``export_job``.
    """
    network.eval()
    meta = describe_network(network, job=job)
    arch = meta.arch
    if len(plan.devices) != len(network.parts):
        raise ExportError(f"job {job}: {len(plan.devices)} devices but {len(network.parts)} parts")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    example = torch.randn(meta.input_shape, generator=torch.Generator().manual_seed(0))
    parts, links = [], []
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out) as staging:
        work = Path(staging)
        x = example
        layers = [list(r) for r in arch.segments()]
        for i, part in enumerate(network.parts):
            with torch.no_grad():
                y = part(x)
            onnx_name, script_name = export_part(part, x, work, i, exporter=exporter)
            parts.append(PartSpec(
                index=i, device=plan.devices[i], layers=layers[i], onnx=onnx_name, torchscript=script_name,
                input_name=INPUT_NAME, input_shape=list(x.shape), output_name=OUTPUT_NAME, output_shape=list(y.shape),
                predicted_ms=plan.part_ms[i], runtime=runtimes[i],
            ))
            if i < len(network.codecs):
                codec = network.codecs[i]
                links.append(LinkSpec.model_validate({
                    "from": i, "to": i + 1, "bandwidth_mbps": plan.link_mbps[i],
                    "codec": {"name": codec.name, "bits": codec.bits}, "payload_shape": list(y.shape),
                    "payload_bytes": int(codec.payload_bytes(tuple(y.shape))), "predicted_ms": plan.link_ms[i],
                }))
            x = y
        first = network.codecs[0]
        manifest = Manifest(
            job=job, method=method, space=meta.space, architecture=list(arch.blocks), splits=list(arch.splits),
            input_shape=list(meta.input_shape), num_classes=meta.num_classes,
            codec=CodecSpec(name=first.name, bits=first.bits), parts=parts, links=links,
            predicted_total_ms=plan.total_ms,
            runtime=runtimes[0] if len(set(runtimes)) == 1 else "mixed",
            onnx_opset=ONNX_OPSET,
        )
        write_manifest(manifest, work)
        if verify:
            manifest = manifest.model_copy(update={"verification": verification(network, work, example)})
            write_manifest(manifest, work)
        for name in [p.onnx for p in parts] + [p.torchscript for p in parts] + [MANIFEST_FILE]:
            os.replace(work / name, out / name)
    return manifest


def part_runtime(job: Job, device: str) -> str:
    """The runtime of ``device``'s latency table in ``job``'s search (torch for jobs stored before runtimes)."""
    runtimes = job.result.runtimes if job.result is not None else {}
    return runtimes.get(device) or job.config.runtime or "torch"


def verification(network: SplitNetwork, directory: Path, example: torch.Tensor) -> dict[str, float]:
    """Largest |exported chain - torch network| on ``example``, with ONNX Runtime and with TorchScript."""
    with torch.no_grad():
        expected = network.eval()(example).numpy()
    return {f"{runtime}_max_abs_error": float(np.abs(run_exported(directory, example.numpy(), runtime=runtime)
                                                      - expected).max())
            for runtime in ("onnx", "torchscript")}


def run_exported(directory: Path | str, x: np.ndarray, *, runtime: Runtime = "onnx") -> np.ndarray:
    """Run an exported chain on one input as it is deployed: every part in turn, each payload encoded to
    the bytes its link carries and decoded on the next device."""
    manifest = read_manifest(directory)
    directory = Path(directory)
    run = _onnx_runner if runtime == "onnx" else _torchscript_runner
    for part in manifest.parts:
        x = run(directory, part)(np.ascontiguousarray(x, dtype=np.float32))
        if part.index < len(manifest.links):
            link = manifest.links[part.index]
            codec = get_codec(link.codec.name)
            wire = codec.encode(x).to_bytes()
            x = codec.decode(Encoded.from_bytes(codec.name, wire, link.payload_shape))
    return x


def _onnx_runner(directory: Path, part: PartSpec) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(directory / part.onnx), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run([part.output_name], {part.input_name: x})[0]


def _torchscript_runner(directory: Path, part: PartSpec) -> Any:
    with _quiet():
        module = torch.jit.load(str(directory / part.torchscript))

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()

    return run
