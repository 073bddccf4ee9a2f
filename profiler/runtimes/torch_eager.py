"""PyTorch eager: the workload's modules called from Python, as they were built (splitnas's first runtime)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from db.records import DEFAULT_RUNTIME
from profiler.runtimes.base import Runtime, register_runtime

if TYPE_CHECKING:
    from profiler.workloads import Workload


@register_runtime(DEFAULT_RUNTIME)
class TorchEager(Runtime):
    packages = ("torch",)
    devices = ("cpu", "cuda")

    def version(self) -> str:
        import torch

        return str(torch.__version__)

    def options(self) -> dict[str, Any]:
        return {"threads": self.settings.threads, "device": self.settings.device}

    def prepare(self, workload: Workload) -> Callable[[], object]:
        return workload.run
