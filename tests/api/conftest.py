"""The service on real SQLite files: in process (TestClient) and as a real uvicorn server on 127.0.0.1.

Tests that take the ``api`` fixture run twice, once against each. The uvicorn server is shared by the
whole session, so a test that writes uses a device of its own (``fresh_device``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from db.config import Settings
from pipeline.service import Service
from tests.utils.api_data import build_service_db, copy_sqlite, create_token

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


@pytest.fixture(scope="session")
def server(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One real uvicorn server for the session, on a copy of the template database."""
    directory = tmp_path_factory.mktemp("api-server")
    with Service(copy_sqlite(template_db, directory / "service.db"), log=directory / "server.log",
                 env={"SPLITNAS_API_MAX_BATCH": str(MAX_BATCH)}) as running:
        yield running


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
        server: Service = request.getfixturevalue("server")
        with httpx.Client(base_url=server.url, timeout=60) as client:
            yield Target(client, server.db_url, "uvicorn")


@pytest.fixture
def fresh_device() -> str:
    """A device name no other test uses (the uvicorn server's database is shared)."""
    return f"dev-{uuid.uuid4().hex[:10]}"
