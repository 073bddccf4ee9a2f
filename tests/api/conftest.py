"""The service on real SQLite files: in process (TestClient) and as a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from db.config import Settings
from tests.utils.api_data import build_service_db, copy_sqlite, create_token

BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Built once: synthetic raspi4 and edgegpu, measured and fitted (see tests.utils.api_data)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('api-template') / 'service.db'}"
    build_service_db(url)
    return url


@pytest.fixture
def service_db(template_db: str, tmp_path: Path) -> str:
    """A private copy of the template database, for a test that writes."""
    return copy_sqlite(template_db, tmp_path / "service.db")


def make_client(db_url: str, **settings: object) -> TestClient:
    return TestClient(create_app(Settings(database_url=db_url, **settings)))


@pytest.fixture
def client(service_db: str) -> Iterator[TestClient]:
    with make_client(service_db) as test_client:  # runs the lifespan: migrations on start
        yield test_client


@pytest.fixture
def admin_token(service_db: str) -> str:
    """A token that may write for every device."""
    return create_token(service_db, "admin")


@pytest.fixture
def raspi_token(service_db: str) -> str:
    """A token scoped to raspi4."""
    return create_token(service_db, "raspi4-agent", device="raspi4")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A ``splitnas-api serve`` subprocess on 127.0.0.1 with its own database."""

    def __init__(self, db_url: str, log: Path, **env: str):
        self.db_url = db_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [str(BIN / "splitnas-api"), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--db", db_url,
             "--no-access-log", "--log-level", "warning"],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **env},
        )
        self.log = log
        self._wait()

    def _wait(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer /healthz within {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture(scope="module")
def server(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real uvicorn server (one per test module) on a copy of the template database."""
    directory = tmp_path_factory.mktemp("api-server")
    running = Server(copy_sqlite(template_db, directory / "service.db"), directory / "server.log")
    yield running
    running.stop()
