"""One exported network for every edge test: a tiny real NASC search (HW-NAS-Bench latencies), cut in two."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from nas.config import SearchConfig
from nas.data import load_synthetic_data, subset
from nas.export import export_job
from nas.jobs import run_search
from nas.latency_client import LatencyClient
from tests.nas.conftest import hwnasbench_db  # noqa: F401  (the fixture, shared with the nas tests)
from tests.nas.test_nas_export import CHAIN, TINY


def _export(config: SearchConfig, latency_db: str, directory: Path) -> Path:
    """The network of a finished tiny search with ``config``, exported to ``directory``/export."""
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        from db.config import get_settings

        patch.setenv("SPLITNAS_DATA_DIR", str(directory / "data"))
        get_settings.cache_clear()
        with LatencyClient(db_url=latency_db, predictor="lookup") as client:
            job = run_search(config, db_url=f"sqlite:///{directory / 'jobs.db'}",
                             client=client, data=subset(load_synthetic_data(), 16),
                             weights=directory / "weights.pt")
        export_job(job, directory / "export")
    get_settings.cache_clear()
    return directory / "export"


@pytest.fixture(scope="session")
def export_dir(hwnasbench_db: str, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """A NASC answer cut in two (head on raspi4, tail on edgegpu, float32 link)."""
    return _export(SearchConfig(method="nasc", **TINY), hwnasbench_db, tmp_path_factory.mktemp("edge-export"))


@pytest.fixture(scope="session")
def chain_export_dir(hwnasbench_db: str, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """A gradient answer cut in three (ue -> sbs over float32, sbs -> cloud over int8)."""
    config = SearchConfig(method="gradient", space="fbnet-cifar100", topology=CHAIN, t_th=30, **TINY)
    return _export(config, hwnasbench_db, tmp_path_factory.mktemp("edge-chain"))


EdgeServer = Callable[..., tuple[str, int]]


@pytest.fixture
def edge_server() -> Iterator[EdgeServer]:
    """Starts ``python -m edge serve`` processes on free ports; returns each one's (host, port)."""
    processes: list[subprocess.Popen[str]] = []

    def start(directory: Path, *args: str) -> tuple[str, int]:
        process = subprocess.Popen([sys.executable, "-m", "edge", "serve", str(directory), "--port", "0", *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the socket is bound
        if not line:
            raise RuntimeError(f"splitnas-edge serve exited: {process.communicate()[1]}")
        host, port = line.rsplit("://", 1)[1].strip().rsplit(":", 1)
        return host, int(port)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
