"""What an installation must offer: the service's packages import without torch, the console scripts run."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Installs an import hook that makes torch unimportable, as on a machine with the service's dependencies only.
BLOCK_TORCH = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"torch is not installed (blocked for this test): {name}")
            return None

    sys.meta_path.insert(0, BlockTorch())
    """
)

# Every module of these packages must import without torch (spaces.modules is the one torch part of spaces;
# db.migrations runs Alembic when imported).
IMPORT_ALL = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    TORCH_MODULES = {"spaces.modules"}
    failed = []
    for package_name in ("spaces", "db", "api", "predictor"):
        try:
            package = importlib.import_module(package_name)
        except ModuleNotFoundError as exc:
            if exc.name == package_name and package_name == "predictor":
                continue  # not written yet
            raise
        for info in pkgutil.walk_packages(package.__path__, package_name + "."):
            if info.name in TORCH_MODULES or info.name.startswith("db.migrations"):
                continue
            try:
                importlib.import_module(info.name)
            except ImportError as exc:
                failed.append(f"{info.name}: {exc}")
    assert not failed, "modules that need torch: " + "; ".join(failed)
    assert "torch" not in sys.modules
    """
)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_service_packages_import_without_torch() -> None:
    # pipeline.service starts the service for the tests of a machine without torch too
    result = _python(BLOCK_TORCH + "import spaces, db, api, db.queries, db.records, db.models, pipeline.service\n"
                     + IMPORT_ALL)
    assert result.returncode == 0, result.stderr


def test_the_torch_blocker_works() -> None:
    """The import test above can fail: the blocked environment refuses the one torch module of spaces."""
    result = _python(BLOCK_TORCH + "import spaces.modules\n")
    assert result.returncode != 0
    assert "torch is not installed (blocked for this test)" in result.stderr


def test_importing_the_service_packages_does_not_load_torch() -> None:
    code = "import sys, spaces, db, api, db.queries, db.records\nassert 'torch' not in sys.modules, 'torch loaded'\n"
    result = _python(code)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("script", "module"),
    [("profiler", "profiler.cli"), ("predictor", "predictor.cli"), ("nas", "nas.cli"), ("splitnas-api", "api.cli")],
)
def test_console_script_help(script: str, module: str) -> None:
    path = BIN / script
    assert path.is_file(), f"console script {script} is not installed (pip install -e .)"
    result = subprocess.run(
        [str(path), "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    shown = " ".join(result.stdout.split())
    assert f"Usage: {script} [OPTIONS] COMMAND [ARGS]..." in shown
    assert "--help" in shown
    summary = importlib.import_module(module).app.info.help
    assert summary and " ".join(summary.split()) in shown


@pytest.mark.parametrize("command", [[str(BIN / "splitnas-pipeline")], [sys.executable, "-m", "pipeline"]])
def test_pipeline_entry_points(command: list[str]) -> None:
    """The orchestrator has its own console script and module entry point; its search options are derived."""
    result = subprocess.run(
        [*command, "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    shown = " ".join(result.stdout.split())
    assert "Usage: splitnas-pipeline [OPTIONS]" in shown
    for option in ("--port", "--hwnasbench", "--search-t-th", "--search-pretrain-epochs", "--search-seed"):
        assert option in shown
    assert "--search-head-device" not in shown  # chosen by the pipeline itself
