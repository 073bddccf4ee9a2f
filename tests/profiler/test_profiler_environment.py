"""Environment capture, with fake sysfs trees standing in for a Raspberry Pi and a Jetson."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from profiler import environment
from profiler.environment import ThermalProbe


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def fake_raspberry_pi(tmp_path: Path) -> Path:
    root = tmp_path / "fake_pi_root"
    write(root, "proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\n"
          "Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n")
    write(root, "proc/device-tree/model", "Raspberry Pi 4 Model B Rev 1.4\x00")
    write(root, "proc/meminfo", "MemTotal:        3884328 kB\n")
    write(root, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "ondemand\n")
    write(root, "sys/class/thermal/thermal_zone0/type", "cpu-thermal\n")
    write(root, "sys/class/thermal/thermal_zone0/temp", "61835\n")
    write(root, environment.PI_THROTTLED_SYSFS, "50005\n")
    for index, size in enumerate(("48K", "32K", "1024K")):  # L1d, L1i, L2 (the Pi 4 has no L3)
        write(root, f"sys/devices/system/cpu/cpu0/cache/index{index}/size", f"{size}\n")
    return root


@pytest.fixture
def fake_jetson(tmp_path: Path) -> Path:
    root = tmp_path / "fake_jetson_root"
    write(root, "proc/cpuinfo", "processor\t: 0\nmodel name\t: ARMv8 Processor rev 3 (v8l)\n")
    write(root, "etc/nv_tegra_release", "# R32 (release), REVISION: 7.1\n")
    for index, (name, millidegrees) in enumerate([("CPU-therm", 45500), ("GPU-therm", 43000), ("CPU-therm", 47000)]):
        write(root, f"sys/class/thermal/thermal_zone{index}/type", name)
        write(root, f"sys/class/thermal/thermal_zone{index}/temp", str(millidegrees))
    return root


def test_fake_raspberry_pi_facts_and_thermal_state(fake_raspberry_pi: Path) -> None:
    probe = ThermalProbe(fake_raspberry_pi)
    env = environment.capture(threads=4, probe=probe)
    assert env["platform"] == "raspberrypi"
    assert env["cpu_model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert env["governor"] == "ondemand"
    assert env["memory_gb"] == pytest.approx(3.7, abs=0.01)
    assert env["threads"] == 4 and env["torch"]
    assert env["cache_bytes"] == 2**20 and env["caches"] == "warm"
    state = env["thermal"]
    assert state["temperature_c"] == pytest.approx(61.835)
    assert state["zones"] == {"cpu-thermal": pytest.approx(61.835)}
    flags = state["throttled"]
    assert flags["value"] == "0x50005"
    assert flags["under_voltage"] and flags["throttled"] and not flags["arm_frequency_capped"]
    assert flags["under_voltage_occurred"] and flags["throttled_occurred"]
    assert not flags["soft_temperature_limit_occurred"]
    facts = environment.device_facts(env)
    assert facts["platform"] == "raspberrypi" and facts["cpu_model"].startswith("Raspberry Pi 4")


def test_fake_jetson_reads_every_thermal_zone(fake_jetson: Path) -> None:
    assert environment.detect_platform(fake_jetson) == "jetson"
    state = ThermalProbe(fake_jetson).read()
    assert state["zones"] == {"CPU-therm": 45.5, "GPU-therm": 43.0, "CPU-therm.thermal_zone2": 47.0}
    assert state["temperature_c"] == 47.0
    assert "throttled" not in state


def test_fake_vcgencmd_is_used_when_sysfs_lacks_the_flags(tmp_path: Path) -> None:
    script = tmp_path / "fake_vcgencmd"
    script.write_text("#!/bin/sh\n[ \"$1\" = get_throttled ] && echo throttled=0x80008\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    flags = environment.throttled(tmp_path, vcgencmd=str(script))
    assert flags is not None and flags["soft_temperature_limit"] and flags["soft_temperature_limit_occurred"]
    assert environment.throttled(tmp_path, vcgencmd=None) is None
    assert environment.throttled(tmp_path, vcgencmd=str(tmp_path / "missing_vcgencmd")) is None


def test_machine_without_thermal_files_reports_nothing(tmp_path: Path) -> None:
    probe = ThermalProbe(tmp_path)
    assert probe.read() == {}
    assert probe.wait_below(10.0, sleep=lambda s: pytest.fail("must not wait without a thermometer")) == 0.0
    env = environment.capture(threads=1, probe=probe)
    assert env["governor"] is None and env["platform"] is None and env["thermal"] == {}


def test_wait_below_polls_until_the_fake_pi_cooled(fake_raspberry_pi: Path) -> None:
    temps = iter([58000, 54000, 49000])

    def fake_sleep(seconds: float) -> None:
        write(fake_raspberry_pi, "sys/class/thermal/thermal_zone0/temp", str(next(temps)))

    waited = ThermalProbe(fake_raspberry_pi).wait_below(50.0, poll=2.0, sleep=fake_sleep)
    assert waited == 6.0
    assert ThermalProbe(fake_raspberry_pi).temperature() == 49.0
    write(fake_raspberry_pi, "sys/class/thermal/thermal_zone0/temp", "90000")
    assert ThermalProbe(fake_raspberry_pi).wait_below(50.0, timeout=4.0, poll=2.0, sleep=lambda s: None) == 4.0


def test_environment_key_changes_with_what_the_timings_depend_on() -> None:
    one = environment.capture(threads=1)
    again = environment.capture(threads=1)
    two = environment.capture(threads=2)
    cold = environment.capture(threads=1, caches="cold")
    thread_clock = environment.capture(threads=1, clock="thread")  # --resume never mixes clocks
    assert environment.environment_key(one) == environment.environment_key(again)
    assert environment.environment_key(one) != environment.environment_key(two)
    assert environment.environment_key(one) != environment.environment_key(cold)
    assert environment.environment_key(one) != environment.environment_key(thread_clock)
    onnx = environment.capture(threads=1, runtime="onnxruntime")
    assert (one["runtime"], onnx["runtime"]) == ("torch", "onnxruntime")
    assert environment.environment_key(one) != environment.environment_key(onnx)
    # the runtime's version and options (ONNX Runtime's optimization level, ...) are part of the key too
    basic = {**onnx, "runtime_options": {"graph_optimization_level": "basic"}}
    assert environment.environment_key(basic) != environment.environment_key(onnx)
    assert environment.environment_key({**onnx, "runtime_version": "0.1"}) != environment.environment_key(onnx)
    assert environment.default_device_name("cpu") == "local-cpu"
    assert environment.default_device_name("cuda:0") == "local-cuda"


def test_cache_size_falls_back_where_sysfs_does_not_say(fake_jetson: Path) -> None:
    assert environment.cache_bytes("cpu", fake_jetson) == environment.FALLBACK_CACHE_BYTES
    write(fake_jetson, "sys/devices/system/cpu/cpu0/cache/index2/size", "2048K")
    write(fake_jetson, "sys/devices/system/cpu/cpu0/cache/index3/size", "not a size")
    assert environment.cache_bytes("cpu", fake_jetson) == 2 * 2**20
