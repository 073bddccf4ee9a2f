"""OpenVINO: the workload exported to ONNX, compiled for the CPU plugin and run by an infer request.

Compiled with ``INFERENCE_NUM_THREADS`` = the recorded thread count, one stream and the latency
hint (``PERFORMANCE_HINT: LATENCY``), as a device answering one request at a time runs it. The
plugin's inference precision (f32 on x86 without bf16/AMX, f16 by default on ARM) is recorded.
A synchronous ``infer`` with one thread runs in the calling thread (checked here: its thread and
process CPU times agree), so the thread clock measures it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from profiler.runtimes.base import OnnxRuntimeBase, register_runtime

if TYPE_CHECKING:
    from profiler.workloads import Workload

DEVICE = "CPU"


@register_runtime("openvino")
class OpenVino(OnnxRuntimeBase):
    packages = ("onnx", "openvino")  # onnx: torch's exporter writes through it
    extra = "openvino"

    @cached_property
    def core(self) -> Any:
        import openvino

        return openvino.Core()

    def version(self) -> str:
        import openvino

        return str(openvino.__version__)

    def config(self) -> dict[str, Any]:
        return {"INFERENCE_NUM_THREADS": self.settings.threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}

    def options(self) -> dict[str, Any]:
        precision = self.core.get_property(DEVICE, "INFERENCE_PRECISION_HINT")
        return {
            **{name.lower(): value for name, value in self.config().items()},
            "inference_precision": precision.get_type_name(), "device": DEVICE,
            "device_name": str(self.core.get_property(DEVICE, "FULL_DEVICE_NAME")), **self.export_options(),
        }

    def prepare(self, workload: Workload) -> Callable[[], object]:
        import openvino

        from profiler.runtimes.onnx_export import input_names

        # OpenVINO's own cache of compiled models: compiling from it takes a fifth of the time
        config = {**self.config(), "CACHE_DIR": str(self.cache_dir / "openvino")}
        request = self.core.compile_model(str(self.export(workload)), DEVICE, config).create_infer_request()
        for name, x in zip(input_names(workload), workload.inputs, strict=True):
            request.set_tensor(name, openvino.Tensor(x.numpy()))
        return request.infer
