"""The runtime contract: what runs an entry's workload while it is timed, and the registry of runtimes.

A runtime is one file here holding one registered ``Runtime`` subclass, plus its import in
``profiler/runtimes/__init__.py``. Nothing heavy is imported at import time: a runtime's own package is
imported when it is created, so that one that is not installed can say which extra installs it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from platformdirs import user_cache_path

from spaces.registry import registrar

if TYPE_CHECKING:
    from profiler.workloads import Workload

RUNTIMES: dict[str, type[Runtime]] = {}
CACHE_ENV = "SPLITNAS_ONNX_CACHE"


def default_cache_dir() -> Path:
    """``$SPLITNAS_ONNX_CACHE``, else the per-user cache directory (``~/.cache/splitnas/onnx`` on Linux)."""
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else user_cache_path("splitnas", appauthor=False) / "onnx"


class RuntimeUnavailable(ValueError):
    """The runtime asked for is not installed here (the message names the extra that installs it)."""


@dataclass(frozen=True)
class RuntimeSettings:
    """How a runtime runs what it times: CPU threads, torch device, its optimization level, export cache."""

    threads: int = 1
    device: str = "cpu"
    graph_optimization: str | None = None  # default: the runtime's last (highest) level
    export_cache: Path | None = None  # default: default_cache_dir()


class Runtime:
    """Base class: ``prepare`` turns a workload into the call that is timed (``profiler.timing.measure``)."""

    name: ClassVar[str] = ""
    packages: ClassVar[tuple[str, ...]] = ()  # what it imports
    extra: ClassVar[str] = "agent"  # the pip extra that installs them
    devices: ClassVar[tuple[str, ...]] = ("cpu",)  # the torch device types it runs on
    graph_optimization_levels: ClassVar[tuple[str, ...]] = ()  # levels it offers, lowest first
    exports: ClassVar[bool] = False  # whether ``export`` does work worth a progress bar

    def __init__(self, settings: RuntimeSettings) -> None:
        if (missing := self.missing()) is not None:
            raise RuntimeUnavailable(
                f"runtime {self.name!r} is not installed here: pip install 'splitnas[{self.extra}]' ({missing})"
            )
        device_type = settings.device.partition(":")[0]
        if device_type not in self.devices:
            raise ValueError(
                f"runtime {self.name!r} runs on {', '.join(self.devices)} here, not on torch device {settings.device!r}"
            )
        level = settings.graph_optimization
        if level is not None and level not in self.graph_optimization_levels:
            offered = ", ".join(self.graph_optimization_levels)
            raise ValueError(
                f"graph optimization level {level!r}: runtime {self.name!r} offers "
                + (offered if offered else "none (it applies to onnxruntime)")
            )
        self.settings = settings

    @classmethod
    def missing(cls) -> str | None:
        """Why the runtime cannot be used here (an import error's text), None when it can."""
        for package in cls.packages:
            try:
                importlib.import_module(package)
            except ImportError as exc:
                return str(exc)
        return None

    # -- to implement -------------------------------------------------------------------------------
    def version(self) -> str:
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """The runtime's settings that change latencies (threads, optimization level, ...), JSON-able."""
        raise NotImplementedError

    def prepare(self, workload: Workload) -> Callable[[], object]:
        """The call that performs ``workload.executions`` executions of the workload under this runtime."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------------------
    @property
    def cache_dir(self) -> Path:
        """Where conversions of workloads are cached (ONNX exports, compiled models)."""
        return self.settings.export_cache or default_cache_dir()

    @property
    def graph_optimization(self) -> str | None:
        """The optimization level in force (the setting, or the highest level offered)."""
        levels = self.graph_optimization_levels
        return self.settings.graph_optimization or (levels[-1] if levels else None)

    def export(self, workload: Workload) -> object:
        """Work done once per workload ahead of its timing passes (the ONNX export); nothing by default."""
        return None

    def environment(self) -> dict[str, Any]:
        """What the run's environment records of the runtime."""
        return {"runtime_version": self.version(), "runtime_options": self.options()}


class OnnxRuntimeBase(Runtime):
    """A runtime that runs an ONNX export of the workload (``profiler.runtimes.onnx_export``, cached on disk)."""

    exports = True

    def export(self, workload: Workload) -> Path:
        """The workload's ONNX file, exported unless the cache has it."""
        from profiler.runtimes.onnx_export import exported

        return exported(workload, self.cache_dir)

    def export_options(self) -> dict[str, Any]:
        from profiler.runtimes.onnx_export import exporter_facts

        return exporter_facts()


register_runtime = registrar(RUNTIMES, "runtime", attribute="name")


def runtime_names() -> list[str]:
    return list(RUNTIMES)


def create_runtime(name: str, settings: RuntimeSettings | None = None) -> Runtime:
    """The runtime ``name`` with ``settings``; ValueError naming the allowed ones, RuntimeUnavailable."""
    if name not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r}; allowed: {', '.join(RUNTIMES)}")
    return RUNTIMES[name](settings or RuntimeSettings())
