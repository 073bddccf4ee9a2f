"""Latency sources for NAS tests: HW-NAS-Bench imported into SQLite, and the real service serving it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from tests.utils.hwnasbench_luts import hwnasbench_database
from tests.utils.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    torch.set_num_threads(1)  # the machine's cores are shared; tiny models gain nothing from threads


@pytest.fixture(scope="session")
def hwnasbench_db(hwnasbench_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """raspi4 and edgegpu from HW-NAS-Bench, imported and fitted (lookup) in a SQLite file."""
    url = f"sqlite:///{tmp_path_factory.mktemp('hwnasbench') / 'latency.db'}"
    hwnasbench_database(url, hwnasbench_dir)
    return url


@pytest.fixture(scope="session")
def service_url(hwnasbench_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real latency service (uvicorn, ``api.main:app``) on 127.0.0.1 over ``hwnasbench_db``."""
    pytest.importorskip("api.main", reason="the latency service (api.main:app) is not built yet")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("service") / "uvicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "SPLITNAS_DATABASE_URL": hwnasbench_db},
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not start:\n{log_path.read_text()}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
