"""The manifest of an exported split network (``nas export``): its parts, links and predicted latencies.

Read without torch (an edge server runs the parts with ONNX Runtime): ``read_manifest(DIR)``. Part i runs
on device i; link i carries part i's output to part i + 1, coded with the link's codec
(``spaces.codecs``); the predicted milliseconds are the job's, from the latency model its search used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spaces.errors import UserError

# how nas export writes ONNX: torch's TorchScript-based exporter, or torch.export + onnxscript
Exporter = Literal["legacy", "dynamo"]
MANIFEST_FILE: Final = "manifest.json"
MANIFEST_VERSION: Final = 1


class ManifestError(UserError, ValueError):
    """A directory that holds no readable manifest of an exported network."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


class CodecSpec(_Strict):
    name: str
    bits: int


class PartSpec(_Strict):
    """One device's part of the network: its files, tensors and predicted compute time."""

    index: int
    device: str
    layers: list[int] = Field(description="searchable layers it runs (the first also runs the stem, the last "
                              "the classifier; a cut after a bottleneck block splits it)")
    onnx: str
    torchscript: str
    input_name: str
    input_shape: list[int]
    output_name: str
    output_shape: list[int]
    predicted_ms: float
    runtime: str = Field("torch", description="the runtime its device's latency table was measured under")


class LinkSpec(_Strict):
    """The link from part ``from`` to part ``to``: what it carries and its predicted transfer time."""

    from_: int = Field(alias="from")
    to: int
    bandwidth_mbps: float
    latency_ms: float = Field(0.0, description="fixed per-transfer delay of the latency model (DESIGN.md 3: none)")
    codec: CodecSpec
    payload_shape: list[int]
    payload_bytes: int
    predicted_ms: float


class Manifest(_Strict):
    """What ``nas export`` wrote: the job's answer cut into parts, each as ONNX and TorchScript."""

    schema_version: Literal[1] = MANIFEST_VERSION
    job: str
    method: str
    space: str
    architecture: list[str]
    splits: list[int]
    input_shape: list[int]
    num_classes: int
    codec: CodecSpec = Field(description="the codec of the first link (every link names its own)")
    parts: list[PartSpec]
    links: list[LinkSpec]
    predicted_total_ms: float
    runtime: str = Field(description="the runtime the latency tables were measured under (every part's, or "
                         "'mixed' when the parts' differ)")
    onnx_opset: int
    verification: dict[str, float] = Field(
        default_factory=dict, description="largest |exported chain - torch network| of a test input, per format"
    )


def write_manifest(manifest: Manifest, directory: Path) -> Path:
    path = Path(directory) / MANIFEST_FILE
    path.write_text(manifest.model_dump_json(indent=2, by_alias=True) + "\n")
    return path


def read_manifest(directory: Path | str) -> Manifest:
    """The manifest of an export directory (or of the manifest file itself)."""
    path = Path(directory)
    path = path / MANIFEST_FILE if path.is_dir() else path
    try:
        return Manifest.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ManifestError(f"{path} does not exist: export a network there with `nas export JOB --out DIR`") \
            from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        raise ManifestError(f"{path} is not a manifest of schema {MANIFEST_VERSION}: {problems}") from None
