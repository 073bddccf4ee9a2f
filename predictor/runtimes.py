"""Which runtime's measurements and predictors answer for a device: the one asked for, or its only one.

Every path that reads a device's data (fit, eval, predict, the service's tables, the search's latency
client) resolves the runtime here, so each one answers the same question the same way.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from db import queries
from db.records import DEFAULT_RUNTIME, runtime_name
from predictor.errors import AmbiguousRuntimeError, UnknownRuntimeError


def resolve_runtime(session: Session, *, device: str, runtime: str | None = None) -> str:
    """``runtime`` (checked), else the device's only runtime; torch for a device without any data yet.

    Raises AmbiguousRuntimeError, listing them, when ``runtime`` is None and the device has several, and
    UnknownRuntimeError when the device has data but none of ``runtime``.
    """
    known = queries.device_runtimes(session, device=device).get(device, [])
    if runtime is not None:
        runtime_name(runtime)
        if known and runtime not in known:
            raise UnknownRuntimeError(
                f"device {device!r} has no measurements or predictors of runtime {runtime!r}; "
                f"its runtimes: {', '.join(known)}"
            )
        return runtime
    if len(known) > 1:
        raise AmbiguousRuntimeError(
            f"device {device!r} was measured under several runtimes ({', '.join(known)}): choose one with "
            f"runtime (--runtime on the command line)"
        )
    return known[0] if known else DEFAULT_RUNTIME


def runtime_flag(runtime: str) -> str:
    """`` --runtime R`` for commands a message suggests; nothing for torch, every command's default."""
    return "" if runtime == DEFAULT_RUNTIME else f" --runtime {runtime}"


def device_label(device: str, runtime: str) -> str:
    """``'pi'`` under torch, ``'pi' (onnxruntime)`` under another runtime: how messages name a device's data."""
    return repr(device) if runtime == DEFAULT_RUNTIME else f"{device!r} ({runtime})"
