"""The service on real SQLite files: in process (TestClient) and as a real uvicorn server on 127.0.0.1.

Tests that take the ``api`` fixture run twice, once against each. The uvicorn server is shared by the
whole session, so a test that writes uses a device of its own (``fresh_device``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from db.config import Settings
from tests.utils.api_data import build_service_db, copy_sqlite, create_token

BIN = Path(sys.executable).parent
MAX_BATCH = 100  # SPLITNAS_API_MAX_BATCH of every service under test


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Built once: synthetic raspi4 and edgegpu, measured and fitted (see tests.utils.api_data)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('api-template') / 'service.db'}"
    build_service_db(url)
    return url


@pytest.fixture
def service_db(template_db: str, tmp_path: Path) -> str:
    """A private copy of the template database."""
    return copy_sqlite(template_db, tmp_path / "service.db")


def make_client(db_url: str, **settings: object) -> TestClient:
    return TestClient(create_app(Settings(database_url=db_url, **{"api_max_batch": MAX_BATCH, **settings})))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``splitnas-api serve`` in a subprocess on 127.0.0.1, with its own database."""

    def __init__(self, db_url: str, log: Path, **env: str):
        self.db_url = db_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [str(BIN / "splitnas-api"), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--db", db_url,
             "--no-access-log", "--log-level", "warning"],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **env},
        )
        self._wait()

    def _wait(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2.0).status_code == 200:
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


@pytest.fixture(scope="session")
def server(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real uvicorn server for the session, on a copy of the template database."""
    directory = tmp_path_factory.mktemp("api-server")
    running = Server(copy_sqlite(template_db, directory / "service.db"), directory / "server.log",
                     SPLITNAS_API_MAX_BATCH=str(MAX_BATCH))
    yield running
    running.stop()


@dataclass
class Target:
    """A service under test: an HTTP client for it and the database it serves."""

    client: httpx.Client
    db_url: str
    kind: str

    def auth(self, device: str | None = None) -> dict[str, str]:
        """Headers with a new bearer token (scoped to ``device`` when given)."""
        return {"Authorization": f"Bearer {create_token(self.db_url, f'test-{uuid.uuid4().hex[:12]}', device)}"}


@pytest.fixture(params=["in-process", "uvicorn"])
def api(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The service in process (TestClient, fresh database) and as a real uvicorn server (shared database)."""
    if request.param == "in-process":
        db_url = request.getfixturevalue("service_db")
        with make_client(db_url) as client:  # runs the lifespan: migrations on start
            yield Target(client, db_url, "in-process")
    else:
        server: Server = request.getfixturevalue("server")
        with httpx.Client(base_url=server.url, timeout=60) as client:
            yield Target(client, server.db_url, "uvicorn")


@pytest.fixture
def fresh_device() -> str:
    """A device name no other test uses (the uvicorn server's database is shared)."""
    return f"dev-{uuid.uuid4().hex[:10]}"
