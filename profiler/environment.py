"""What the measurements depend on: host, CPU, OS, torch, threads, accelerator, governor, temperature.

Readers take the filesystem root (default ``/``) so that tests can point them at a fake sysfs tree.
Temperatures and throttling are read where the platform exposes them: thermal zones (every Linux
with them, Raspberry Pi and Jetson included) and the Raspberry Pi firmware's throttled flags (from
sysfs, or ``vcgencmd get_throttled`` when that exists); anything absent is simply left out.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from db.records import DEFAULT_RUNTIME
from profiler.load import LoadProbe

# Bits of the Raspberry Pi firmware's get_throttled value (documented by raspberrypi.com).
THROTTLED_FLAGS = {
    0: "under_voltage",
    1: "arm_frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
    16: "under_voltage_occurred",
    17: "arm_frequency_capped_occurred",
    18: "throttled_occurred",
    19: "soft_temperature_limit_occurred",
}
PI_THROTTLED_SYSFS = "sys/devices/platform/soc/soc:firmware/get_throttled"
FALLBACK_CACHE_BYTES = 32 * 2**20  # when the platform does not say how large its caches are


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def cpu_model(root: Path = Path("/")) -> str:
    """The CPU's name from /proc/cpuinfo (``model name`` on x86, ``Model``/``Hardware`` on ARM boards)."""
    text = _read(root / "proc/cpuinfo") or ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(name.strip().lower(), value.strip())
    for name in ("model name", "model", "hardware", "cpu model", "processor"):
        if name in fields:
            return fields[name]
    return platform.processor() or platform.machine()


def detect_platform(root: Path = Path("/")) -> str | None:
    """``raspberrypi``, ``jetson`` or None, from the device tree and L4T release files."""
    model = _read(root / "proc/device-tree/model") or ""
    if "Raspberry Pi" in model:
        return "raspberrypi"
    if "Jetson" in model or (root / "etc/nv_tegra_release").exists():
        return "jetson"
    return None


def governor(root: Path = Path("/")) -> str | None:
    """cpu0's frequency governor (``performance``, ``ondemand``, ...), None where cpufreq is absent."""
    return _read(root / "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def memory_gb(root: Path = Path("/")) -> float | None:
    match = re.search(r"MemTotal:\s+(\d+) kB", _read(root / "proc/meminfo") or "")
    return round(int(match[1]) / 2**20, 2) if match else None


def thermal_zones(root: Path = Path("/")) -> dict[str, float]:
    """Temperature in degrees Celsius of every thermal zone, keyed by its type (``cpu-thermal``, ...)."""
    zones: dict[str, float] = {}
    for zone in sorted((root / "sys/class/thermal").glob("thermal_zone*")):
        raw = _read(zone / "temp")
        if raw is None or not raw.lstrip("-").isdigit():
            continue
        name = _read(zone / "type") or zone.name
        if name in zones:
            name = f"{name}.{zone.name}"
        zones[name] = int(raw) / 1000
    return zones


def decode_throttled(value: int) -> dict[str, Any]:
    return {"value": hex(value), **{name: bool(value >> bit & 1) for bit, name in THROTTLED_FLAGS.items()}}


def throttled(root: Path = Path("/"), *, vcgencmd: str | None = None) -> dict[str, Any] | None:
    """The Raspberry Pi firmware's throttling flags, None where the platform does not report them."""
    raw = _read(root / PI_THROTTLED_SYSFS)
    if raw is None and vcgencmd:
        try:
            output = subprocess.run([vcgencmd, "get_throttled"], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        raw = output.stdout.strip().partition("=")[2] if output.returncode == 0 else None
    if not raw:
        return None
    try:
        return decode_throttled(int(raw, 16))
    except ValueError:
        return None


class ThermalProbe:
    """Reads temperature and throttling state of one machine (cheap enough to call around every entry)."""

    def __init__(self, root: Path = Path("/"), *, vcgencmd: str | None = None) -> None:
        self.root = root
        self.vcgencmd = vcgencmd

    @classmethod
    def local(cls) -> ThermalProbe:
        return cls(Path("/"), vcgencmd=shutil.which("vcgencmd"))

    def read(self) -> dict[str, Any]:
        """{'temperature_c': hottest zone, 'zones': {...}, 'throttled': {...}}; empty where nothing is exposed."""
        state: dict[str, Any] = {}
        zones = thermal_zones(self.root)
        if zones:
            state["temperature_c"] = max(zones.values())
            state["zones"] = zones
        flags = throttled(self.root, vcgencmd=self.vcgencmd)
        if flags is not None:
            state["throttled"] = flags
        return state

    def temperature(self) -> float | None:
        zones = thermal_zones(self.root)
        return max(zones.values()) if zones else None

    def wait_below(
        self, celsius: float, *, timeout: float = 600.0, poll: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> float:
        """Wait until the hottest zone is below ``celsius``; returns the seconds waited.

        Returns at once where no temperature is readable; gives up after ``timeout`` seconds.
        """
        waited = 0.0
        while waited < timeout:
            temperature = self.temperature()
            if temperature is None or temperature < celsius:
                break
            sleep(poll)
            waited += poll
        return waited


def cache_bytes(device: str = "cpu", root: Path = Path("/")) -> int:
    """Size of the largest cache of ``device``: the CUDA L2, or the CPU's last level from sysfs."""
    if device.startswith("cuda"):
        return int(torch.cuda.get_device_properties(torch.device(device)).L2_cache_size) or FALLBACK_CACHE_BYTES
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    sizes = []
    for path in (root / "sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        match = re.fullmatch(r"(\d+)([KMG]?)", (_read(path) or "").upper())
        if match:
            sizes.append(int(match[1]) * units.get(match[2], 1))
    return max(sizes, default=FALLBACK_CACHE_BYTES)


def cuda_device_name(device: str) -> str | None:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return None


def capture(
    *, threads: int, device: str = "cpu", caches: str = "warm", clock: str = "wall",
    probe: ThermalProbe | None = None, load: LoadProbe | None = None, runtime: str = DEFAULT_RUNTIME,
) -> dict[str, Any]:
    """Everything a measurement depends on, as a JSON-able dict (stored with the run).

    ``runtime`` is what runs the networks (torch, onnxruntime, ...); its version, where it is not torch,
    is added by the caller that loads it.

    ``probe`` says where the filesystem root is (default: this machine's, with ``vcgencmd`` if present);
    ``load`` reads the load at the start (default: from the same root).
    """
    probe = probe or ThermalProbe.local()
    root = probe.root
    load = load or LoadProbe(root)
    return {
        "host": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "platform": detect_platform(root),
        "cpu_model": cpu_model(root),
        "cpu_cores": os.cpu_count(),
        "memory_gb": memory_gb(root),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "runtime": runtime,
        "threads": threads,
        "torch_device": device,
        "cuda_device": cuda_device_name(device),
        "cache_bytes": cache_bytes(device, root),
        "caches": caches,
        "clock": clock,
        "governor": governor(root),
        "thermal": probe.read(),
        "load": load.read(),
    }


def environment_key(environment: dict[str, Any]) -> str:
    """A hash of what makes measurements comparable: host, CPU model, torch, threads, CUDA device, caches, clock,
    and the runtime with its version and options (``--resume`` never mixes runtimes, nor ONNX Runtime's
    optimization levels)."""
    names = ("host", "cpu_model", "torch", "threads", "cuda_device", "caches", "clock",
             "runtime", "runtime_version", "runtime_options")
    parts = {name: environment.get(name) for name in names}
    parts["runtime"] = parts["runtime"] or DEFAULT_RUNTIME
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def device_facts(environment: dict[str, Any]) -> dict[str, Any]:
    """The hardware facts a device is registered with."""
    names = ("host", "os", "machine", "platform", "cpu_model", "cpu_cores", "memory_gb", "cuda_device", "governor")
    return {name: environment[name] for name in names if environment.get(name) is not None}


def default_device_name(device: str = "cpu") -> str:
    """The device name used when ``--device`` is not given: ``local-cpu`` or ``local-cuda``."""
    return f"local-{'cuda' if device.startswith('cuda') else 'cpu'}"
