"""Deployment files, checked statically: Docker cannot run on the test machines.

The compose file is parsed with PyYAML; the Dockerfiles' COPY lines are checked against the packages
the service imports (so that the slim image has all of them, and none that needs torch).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"spaces", "db", "profiler", "predictor", "api", "nas"}


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def copied(dockerfile: str) -> set[str]:
    text = (REPO / dockerfile).read_text()
    return {m.group(1).rstrip("/") for m in re.finditer(r"^COPY (\S+) \./\1/?$", text, re.M)}


def imported_packages(package: str) -> set[str]:
    """First-party top-level packages that ``package`` imports, transitively (module level and in functions)."""
    seen, todo = set(), [package]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for path in (REPO / name).rglob("*.py"):
            if "migrations" in path.parts or (name, path.name) == ("spaces", "modules.py"):
                continue  # migrations run inside Alembic; spaces.modules is the torch part, never imported by api
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
                todo += [n.split(".")[0] for n in names if n.split(".")[0] in FIRST_PARTY]
    return seen


def test_compose_has_the_service_postgres_and_an_agent() -> None:
    services = compose()["services"]
    assert {"db", "api", "agent"} <= set(services)
    assert services["db"]["image"].startswith("postgres:")
    assert services["api"]["build"]["dockerfile"] == "Dockerfile"
    assert services["agent"]["build"]["dockerfile"] == "Dockerfile.agent"
    for service in services.values():
        if "build" in service:
            assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file()


def test_the_service_reaches_the_compose_database() -> None:
    services = compose()["services"]
    postgres, api = services["db"]["environment"], services["api"]["environment"]
    url = make_url(api["SPLITNAS_DATABASE_URL"])
    assert url.drivername == "postgresql+psycopg" and url.host == "db"
    assert (url.username, url.password, url.database) == (
        postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"])
    assert services["api"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["api"]["command"][:2] == ["splitnas-api", "serve"]
    port = api["SPLITNAS_API_PORT"]
    assert f"{port}:{port}" in services["api"]["ports"] and api["SPLITNAS_API_HOST"] == "0.0.0.0"


def test_the_agent_uploads_to_the_service_with_a_token() -> None:
    services = compose()["services"]
    command = services["agent"]["command"]
    assert command[:2] == ["profiler", "run"]
    server = command[command.index("--server") + 1]
    assert server == f"http://api:{services['api']['environment']['SPLITNAS_API_PORT']}"
    assert command[command.index("--token") + 1].startswith("${SPLITNAS_AGENT_TOKEN")
    assert "api" in services["agent"]["depends_on"]


def test_the_service_image_has_what_the_service_imports_and_no_torch() -> None:
    needed = imported_packages("api")
    assert needed == {"api", "predictor", "db", "spaces"}
    assert needed <= copied("Dockerfile")
    text = (REPO / "Dockerfile").read_text()
    assert text.startswith("# ") and "FROM python:3.11-slim" in text
    install = re.search(r'pip install "(\.\[[^\]]*\])"', text).group(1)
    assert "agent" not in install and "torch" not in text.split("RUN", 1)[1].split("import api.main")[0]


def test_the_agent_image_has_torch_and_the_profiler() -> None:
    text = (REPO / "Dockerfile.agent").read_text()
    assert "torch==" in text and '".[agent' in text
    assert imported_packages("profiler") <= copied("Dockerfile.agent")
    for path in copied("Dockerfile") | copied("Dockerfile.agent"):
        assert (REPO / path).exists(), path
