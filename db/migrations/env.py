"""Alembic environment: migrates the connection handed in by db.migrate, or the configured URL (under its lock)."""

from __future__ import annotations

from alembic import context

from db.config import database_url
from db.engine import make_engine
from db.migrate import migration_lock
from db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = make_engine(url or database_url())
    try:
        with migration_lock(engine) as conn, conn.begin():
            _migrate(conn)
    finally:
        engine.dispose()


def _migrate(connection) -> None:  # noqa: ANN001
    render_as_batch = connection.dialect.name == "sqlite"
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=render_as_batch)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
