"""One part of an exported network as an ONNX Runtime session, with the codec of the link it feeds."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.manifest import LinkSpec, Manifest, PartSpec, read_manifest
from spaces.codecs import Codec, get_codec
from spaces.errors import UserError


class PartError(UserError, ValueError):
    """A part index that the export does not have, or a part that cannot be loaded."""


@dataclass
class LoadedPart:
    """A part ready to run: ``run(x)`` returns its output and the milliseconds it took."""

    manifest: Manifest
    spec: PartSpec
    session: Any

    @property
    def incoming(self) -> LinkSpec | None:
        """The link that carries this part's input (None for the head)."""
        return self.manifest.links[self.spec.index - 1] if self.spec.index > 0 else None

    @property
    def outgoing(self) -> LinkSpec | None:
        """The link that carries this part's output (None for the tail)."""
        return self.manifest.links[self.spec.index] if self.spec.index < len(self.manifest.links) else None

    def codec_in(self) -> Codec:
        assert self.incoming is not None
        return get_codec(self.incoming.codec.name)

    def codec_out(self) -> Codec:
        assert self.outgoing is not None
        return get_codec(self.outgoing.codec.name)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        out = self.session.run([self.spec.output_name], {self.spec.input_name: np.ascontiguousarray(x, np.float32)})
        return out[0], (time.perf_counter() - start) * 1e3


def load_part(directory: Path | str, index: int, *, threads: int = 1) -> LoadedPart:
    """Part ``index`` of the export in ``directory`` under ONNX Runtime's CPU provider."""
    import onnxruntime

    manifest = read_manifest(directory)
    if not 0 <= index < len(manifest.parts):
        raise PartError(f"{directory} has parts 0 to {len(manifest.parts) - 1} (0 is the head), not {index}")
    spec = manifest.parts[index]
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    path = Path(directory) / spec.onnx
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime raises its own exception types
        raise PartError(f"cannot load part {index} from {path}: {exc}") from None
    return LoadedPart(manifest, spec, session)
