"""Schema fuzzing of a real uvicorn server (schemathesis) on SQLite and PostgreSQL: no 5xx, answers as documented.

Every operation of the service's OpenAPI schema gets its examples, schemathesis's coverage cases
(boundaries, missing and wrong-typed fields) and a few random cases, valid and invalid, sent with an
upload token to one server per backend; each answer must be no server error and have a documented
status code, content type, headers and body. The cases sent and the 5xx answered per backend are
recorded as test-suite properties (``--junitxml``), which ``bench/reliability.py`` reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from db.config import Settings
from pipeline.service import Service
from tests.utils.api_data import build_service_db, create_token
from tests.utils.databases import DatabaseBackend

MAX_EXAMPLES = 5  # random cases per operation and generation mode, beside its examples and coverage cases
MAX_BODY_BYTES = 1024  # small, so that the fuzzed bodies meet the size limit too
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
CONFIG = {
    "seed": 1,
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
    "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True}},
}

# The schema the service serves, built in process (no database is opened); the cases go to a real server.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi(), config=schemathesis.Config.from_dict(CONFIG))


@pytest.fixture(scope="module")
def fuzzed_db(database_backend: DatabaseBackend) -> Iterator[str]:
    """A database of each backend holding two fitted devices."""
    url = database_backend.create()
    build_service_db(url)
    yield url
    database_backend.drop(url)


@pytest.fixture(scope="module")
def service(fuzzed_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    limits = {"SPLITNAS_API_MAX_BATCH": "100", "SPLITNAS_API_MAX_BODY_BYTES": str(MAX_BODY_BYTES)}
    with Service(fuzzed_db, log=log, env=limits) as running:
        yield running


@pytest.fixture(scope="module")
def upload_token(fuzzed_db: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(fuzzed_db, 'fuzz')}"}


@pytest.fixture(scope="module")
def fuzz_counts(
    database_backend: DatabaseBackend, record_testsuite_property: Callable[[str, object], None]
) -> Iterator[Counter[str]]:
    """Cases sent, 5xx answered and answers by status on this backend, recorded as ``<backend>_cases``,
    ``<backend>_server_errors`` and ``<backend>_status_<code>``."""
    counts: Counter[str] = Counter(cases=0, server_errors=0)
    yield counts
    for name, value in counts.items():
        record_testsuite_property(f"{database_backend.name}_{name}", value)


@schema.parametrize()
def test_the_running_service_answers_every_request_as_its_schema_documents(
    case: schemathesis.Case, service: Service, upload_token: dict[str, str], fuzz_counts: Counter[str]
) -> None:
    response = case.call(base_url=service.url, headers=upload_token, timeout=60)
    fuzz_counts["cases"] += 1
    fuzz_counts["server_errors"] += response.status_code >= 500
    fuzz_counts[f"status_{response.status_code}"] += 1
    case.validate_response(response, checks=CHECKS)
