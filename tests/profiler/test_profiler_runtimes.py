"""``profiler run --runtime``: ONNX exports that compute what torch computes, their cache, rows stored per runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from db import queries, session_scope
from profiler.cli import app
from profiler.runtimes import RUNTIMES, RuntimeSettings, create_runtime, onnx_export
from profiler.workloads import Workload, model_workload, op_workload
from spaces import Architecture, get_space

SPACE = get_space("fbnet-cifar100")
# Tiny budgets: these tests check what is stored, not how precisely (bench/runtimes.py does that).
FAST = ["--min-run-time", "0.003", "--max-run-time", "0.006", "--copies", "2", "--warmup", "1", "--no-progress",
        "--max-quiet-wait", "0", "--passes", "2"]
OPENVINO_MISSING = RUNTIMES["openvino"].missing()
needs_openvino = pytest.mark.skipif(
    OPENVINO_MISSING is not None,
    reason=f"OpenVINO is not installed (pip install 'splitnas[openvino]'): {OPENVINO_MISSING}",
)
ONNX_RUNTIMES = ["onnxruntime", pytest.param("openvino", marks=needs_openvino)]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for the module: what one test exported, the next finds."""
    return tmp_path_factory.mktemp("onnx-cache")


def torch_outputs(workload: Workload) -> list[np.ndarray]:
    with torch.inference_mode():
        return [module(x).numpy() for module, x in zip(workload.modules, workload.inputs, strict=True)]


def runtime_outputs(runtime: str, path: Path, workload: Workload) -> list[np.ndarray]:
    """What the runtime's own API computes from the exported file on the workload's inputs."""
    feeds = {name: x.numpy() for name, x in zip(onnx_export.input_names(workload), workload.inputs, strict=True)}
    if runtime == "onnxruntime":
        import onnxruntime

        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    import openvino

    # the file is checked, not the plugin's default precision (bf16 on CPUs with AMX, where 97 % of elements differ)
    compiled = openvino.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(feeds)
    return [result[output] for output in compiled.outputs]


@pytest.mark.parametrize("runtime", ONNX_RUNTIMES)
@pytest.mark.parametrize("what", ["op", "head", "model"])
def test_the_export_computes_what_torch_computes(runtime: str, what: str, cache_dir: Path) -> None:
    arch = Architecture.parse(",".join(["k3_e1_g2", "k5_e6", "skip"] * 7 + ["k3_e3"]) + "@9", SPACE)
    with torch.inference_mode():
        workload = {
            "op": lambda: op_workload(SPACE.op(5, "k3_e1_g2"), copies=3),  # channel shuffle, stride 2
            "head": lambda: model_workload(arch),
            "model": lambda: model_workload(arch.with_splits()),
        }[what]()
        path = create_runtime(runtime, RuntimeSettings(export_cache=cache_dir)).export(workload)
    expected, got = torch_outputs(workload), runtime_outputs(runtime, path, workload)
    assert len(got) == len(expected) == len(workload.inputs)
    for ours, theirs in zip(got, expected, strict=True):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * float(np.abs(theirs).max()))
    assert all(not m.training for m in workload.modules)  # exporting left the modules in eval mode


def test_an_export_is_cached_by_op_copies_and_torch_version(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    op = SPACE.op(21, "k3_e1")
    with torch.inference_mode():
        first = onnx_export.exported(op_workload(op, copies=2), cache_dir)
        stamp = first.stat().st_mtime_ns

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("exported again although the cache has it")

        monkeypatch.setattr(torch.onnx, "export", refuse)
        assert onnx_export.exported(op_workload(op, copies=2), cache_dir) == first  # a fresh build, the same key
        assert first.stat().st_mtime_ns == stamp
        monkeypatch.undo()
        assert onnx_export.exported(op_workload(op, copies=3), cache_dir) != first
        monkeypatch.setattr(torch, "__version__", "9.9.9")
        assert onnx_export.cache_path(op_workload(op, copies=2), cache_dir) != first
    assert not list(cache_dir.glob("*.tmp"))


@pytest.mark.parametrize("name", list(RUNTIMES))
def test_every_runtime_runs_a_workload_and_says_what_it_is(name: str, cache_dir: Path) -> None:
    """The contract of every registered runtime (one that is not installed here is skipped, saying why)."""
    if (missing := RUNTIMES[name].missing()) is not None:
        pytest.skip(f"runtime {name!r} is not installed here: {missing}")
    runtime = create_runtime(name, RuntimeSettings(export_cache=cache_dir))
    with torch.inference_mode():
        workload = op_workload(SPACE.op(20, "k3_e1"), copies=2)
        runtime.export(workload)
        run = runtime.prepare(workload)
        for _ in range(3):
            run()
    environment = runtime.environment()
    assert environment["runtime_version"] and json.loads(json.dumps(environment)) == environment
    assert runtime.name == name and runtime.extra in ("agent", "openvino")


def invoke(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("runtime", ONNX_RUNTIMES)
def test_a_profile_under_a_runtime_stores_its_rows_and_resumes_only_its_own(
    runtime: str, db_url: str, cache_dir: Path
) -> None:
    common = ["--device", "cpu-a", "--layers", "0", "--models", "1", "--db", db_url, "--onnx-cache", str(cache_dir)]
    summary = invoke("run", *common, "--runtime", runtime, "--json", *FAST)
    assert summary["runtime"] == runtime and summary["status"] == "completed"
    assert summary["measured"] == 1 + 9 + 3 + 2  # stem, layer 0's blocks, head conv, pool, FC, a model and its head
    with session_scope(db_url) as session:
        run = queries.get_run(session, uid=summary["run_uid"])
        rows = queries.list_measurements(session, run_uid=run.uid)
        assert run.runtime == runtime and run.environment["runtime"] == runtime
        assert run.environment["runtime_version"] and run.settings["runtime"] == runtime
        options = run.environment["runtime_options"]
        assert options["exporter"] == onnx_export.EXPORTER and options["torch"] == torch.__version__
        thread_option = "intra_op_num_threads" if runtime == "onnxruntime" else "inference_num_threads"
        assert options[thread_option] == 1
        torch_key = run.environment_key
    assert all(r.latency_ms > 0 and len(r.raw["pass_medians_ms"]) == 2 for r in rows)
    assert sorted(r.target for r in rows) == ["block"] * 9 + ["fixed"] * 4 + ["model"] * 2
    # The same device under torch is another environment: nothing of the runtime's run is skipped.
    again = invoke("run", *common, "--max-entries", "2", "--resume", "--json", *FAST)
    assert again["runtime"] == "torch" and again["already_measured"] == 0 and again["measured"] == 2
    assert again["environment_key"] != torch_key
    resumed = invoke("run", *common, "--runtime", runtime, "--resume", "--json", *FAST)
    assert resumed["status"] == "nothing to measure" and resumed["already_measured"] == 15


def test_the_graph_optimization_level_is_recorded(db_url: str, cache_dir: Path) -> None:
    summary = invoke("run", "--device", "cpu-b", "--layers", "21", "--max-entries", "2", "--runtime", "onnxruntime",
                     "--graph-optimization", "basic", "--onnx-cache", str(cache_dir), "--db", db_url, "--json", *FAST)
    with session_scope(db_url) as session:
        run = queries.get_run(session, uid=summary["run_uid"])
        assert run.environment["runtime_options"]["graph_optimization_level"] == "basic"
        assert run.settings["graph_optimization"] == "basic"


def test_mistakes_exit_2_with_one_line_and_store_nothing(
    db_url: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RUNTIMES["openvino"], "packages", ("onnx", "openvino_not_installed_here"))
    result = CliRunner().invoke(app, ["run", "--runtime", "openvino", "--db", db_url, *FAST])
    assert result.exit_code == 2
    assert result.stderr.startswith("runtime 'openvino' is not installed here: pip install 'splitnas[openvino]' (")
    assert result.stderr.count("\n") == 1
    for args, message in [
        (["--runtime", "tensorflow"], "unknown runtime 'tensorflow'; allowed: torch, onnxruntime, openvino"),
        (["--graph-optimization", "all"], "runtime 'torch' offers none (it applies to onnxruntime)"),
        (["--runtime", "onnxruntime", "--graph-optimization", "max"], "offers disable, basic, extended, all"),
        (["--runtime", "onnxruntime", "--trace-dir", "traces"], "--trace-dir needs --runtime torch"),
    ]:
        result = CliRunner().invoke(app, ["run", *args, "--db", db_url, "--onnx-cache", str(cache_dir), *FAST])
        text = " ".join(result.output.replace("│", " ").split())  # the error box wraps lines
        assert result.exit_code == 2 and message in text, (args, text)
    with session_scope(db_url) as session:
        assert queries.list_runs(session) == []
    with pytest.raises(ValueError, match="runtime 'onnxruntime' runs on cpu here, not on torch device 'cuda:1'"):
        create_runtime("onnxruntime", RuntimeSettings(device="cuda:1"))
