"""Latency sources for NAS tests: HW-NAS-Bench imported into SQLite, and the real service serving it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from nas.data import ImageData, load_synthetic_data, subset
from nas.latency_client import LatencyClient
from pipeline.service import Service
from tests.utils.hwnasbench_luts import hwnasbench_database


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
    with Service(hwnasbench_db, log=tmp_path_factory.mktemp("service") / "uvicorn.log") as service:
        yield service.url


@pytest.fixture(scope="module")
def tiny_data() -> ImageData:
    """32 synthetic images per split: what tiny searches train and score on."""
    return subset(load_synthetic_data(), 32)


@pytest.fixture
def client(hwnasbench_db: str) -> Iterator[LatencyClient]:
    """A latency client on ``hwnasbench_db``'s lookup tables."""
    with LatencyClient(db_url=hwnasbench_db, predictor="lookup") as latency_client:
        yield latency_client


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Job files and the searched networks' weights go to a temporary data directory, not the user's."""
    from db.config import get_settings

    monkeypatch.setenv("SPLITNAS_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
