"""Operator-level traces of a workload with ``torch.profiler``, in the layout TensorBoard's plugin reads.

torch-tb-profiler shows every subdirectory of its log directory as one run; each holds
``<worker>.<timestamp>.pt.trace.json`` files written by ``tensorboard_trace_handler``.
"""

from __future__ import annotations

import re
from pathlib import Path

from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

from profiler.workloads import Workload


def trace_name(key: str) -> str:
    """A directory name for the entry ``key`` (``fbnet-cifar100/L7/k5_e6`` -> ``fbnet-cifar100_L7_k5_e6``)."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", key).strip("_")[:150]


def record_trace(workload: Workload, directory: Path, *, device: str = "cpu", steps: int = 3) -> list[Path]:
    """Profile ``steps`` calls of the workload (after one warm-up call) into ``directory``; returns the files."""
    activities = [ProfilerActivity.CPU]
    if device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    directory.mkdir(parents=True, exist_ok=True)
    with profile(
        activities=activities,
        schedule=schedule(wait=0, warmup=1, active=steps, repeat=1),
        on_trace_ready=tensorboard_trace_handler(str(directory), worker_name="profiler"),
        record_shapes=True,
    ) as prof:
        for _ in range(1 + steps):
            workload.run()
            prof.step()
    return sorted(directory.glob("*.pt.trace.json"))
