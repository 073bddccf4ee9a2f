"""ONNX Runtime: the workload exported to ONNX, run by an ``InferenceSession`` on the CPU.

The session runs on ``intra_op_num_threads`` = the recorded thread count and one inter-op thread
(sequential execution), at the graph optimization level asked for (default ``all``: constant folding,
Conv + BatchNorm + activation fusion, layout optimizations). With one thread the work runs in the
calling thread, so the thread clock measures it. Inputs and outputs are bound once (IO binding), so
a timed call is the session's run and nothing of the Python-side conversion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from profiler.runtimes.base import OnnxRuntimeBase, register_runtime

if TYPE_CHECKING:
    from profiler.workloads import Workload

# ``profiler run --graph-optimization`` -> onnxruntime.GraphOptimizationLevel member, lowest first
LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
          "all": "ORT_ENABLE_ALL"}
PROVIDER = "CPUExecutionProvider"


@dataclass(frozen=True)
class BoundSession:
    """A session whose inputs and outputs are bound, with the arrays the binding points at (kept alive)."""

    session: Any
    binding: Any
    arrays: tuple[Any, ...]

    def __call__(self) -> None:
        self.session.run_with_iobinding(self.binding)


@register_runtime("onnxruntime")
class OnnxRuntime(OnnxRuntimeBase):
    packages = ("onnx", "onnxruntime")  # onnx: torch's exporter writes through it
    graph_optimization_levels = tuple(LEVELS)

    def version(self) -> str:
        import onnxruntime

        return str(onnxruntime.__version__)

    def options(self) -> dict[str, Any]:
        return {
            "intra_op_num_threads": self.settings.threads, "inter_op_num_threads": 1,
            "graph_optimization_level": self.graph_optimization, "provider": PROVIDER, **self.export_options(),
        }

    def session_options(self) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.settings.threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        level = self.graph_optimization
        assert level is not None  # this runtime offers levels
        options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, LEVELS[level])
        options.log_severity_level = 3  # errors only: a session is created per entry and pass
        return options

    def prepare(self, workload: Workload) -> Callable[[], object]:
        import onnxruntime

        from profiler.runtimes.onnx_export import input_names

        session = onnxruntime.InferenceSession(str(self.export(workload)), self.session_options(), providers=[PROVIDER])
        binding = session.io_binding()
        arrays = tuple(x.numpy() for x in workload.inputs)
        for name, array in zip(input_names(workload), arrays, strict=True):
            binding.bind_cpu_input(name, array)
        for output in session.get_outputs():
            binding.bind_output(output.name)
        return BoundSession(session, binding, arrays)
