"""``splitnas-api token create / list / revoke`` (``serve`` runs every uvicorn test server)."""

from __future__ import annotations

from typer.testing import CliRunner

from api.cli import app
from db import queries
from db.engine import session_scope

runner = CliRunner()


def test_token_lifecycle(db_url: str) -> None:
    created = runner.invoke(app, ["token", "create", "pi-agent", "--device", "raspi4", "--db", db_url])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    with session_scope(db_url) as session:
        row = queries.find_token(session, token=token)
        assert (row.name, row.device) == ("pi-agent", "raspi4")
    listed = runner.invoke(app, ["token", "list", "--db", db_url])
    assert "pi-agent" in listed.stdout and "raspi4" in listed.stdout and token not in listed.stdout
    assert runner.invoke(app, ["token", "revoke", "pi-agent", "--db", db_url]).exit_code == 0
    with session_scope(db_url) as session:
        assert queries.find_token(session, token=token) is None
    assert "revoked" in runner.invoke(app, ["token", "list", "--db", db_url]).stdout


def test_token_errors_say_what_to_do(db_url: str) -> None:
    assert runner.invoke(app, ["token", "create", "agent", "--db", db_url]).exit_code == 0
    again = runner.invoke(app, ["token", "create", "agent", "--db", db_url])
    assert again.exit_code == 1 and "exists already" in again.output
    bad = runner.invoke(app, ["token", "create", "my agent", "--db", db_url])
    assert bad.exit_code == 2 and "letters, digits" in bad.output
    missing = runner.invoke(app, ["token", "revoke", "nobody", "--db", db_url])
    assert missing.exit_code == 1 and "tokens: agent" in missing.output
