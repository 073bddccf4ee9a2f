"""What runs the networks while they are timed: PyTorch eager, ONNX Runtime, OpenVINO.

Adding a runtime is one file here holding one registered ``Runtime`` subclass, plus its import below
(the order is the order ``profiler run --help`` lists them in). Importing this package imports no
runtime's own package, torch included.
"""

from __future__ import annotations

# isort: off
from profiler.runtimes import torch_eager, onnx_runtime, openvino_runtime  # noqa: F401  (registers the runtimes)
# isort: on
from profiler.runtimes.base import (
    RUNTIMES,
    Runtime,
    RuntimeSettings,
    RuntimeUnavailable,
    create_runtime,
    register_runtime,
    runtime_names,
)

__all__ = [
    "RUNTIMES", "Runtime", "RuntimeSettings", "RuntimeUnavailable", "create_runtime", "register_runtime",
    "runtime_names",
]
