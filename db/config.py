"""Settings shared by every command and the service (pydantic-settings, prefix ``SPLITNAS_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_path
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Per-user data directory: ``~/.local/share/splitnas`` on Linux (platformdirs)."""
    return user_data_path("splitnas", appauthor=False)


class Settings(BaseSettings):
    """Configuration read from ``SPLITNAS_*`` environment variables; CLI flags override it."""

    model_config = SettingsConfigDict(env_prefix="SPLITNAS_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="where the default database lives")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: SQLite in data_dir")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_read_auth: bool = Field(default=False, description="require a bearer token on read endpoints too")
    api_max_batch: int = Field(default=10_000, description="most queries accepted in one batch request")
    api_max_body_bytes: int = Field(
        default=16 * 2**20, description="largest request body accepted, in bytes (413 past it, counted while reading)"
    )
    api_cache_ttl_s: float = Field(
        default=5.0, description="seconds the service serves a cached table before checking the database for new data"
    )

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'splitnas.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def database_url(override: str | None = None) -> str:
    """The database URL: an explicit ``--db`` value, else ``SPLITNAS_DATABASE_URL``, else the default."""
    return override or get_settings().resolved_database_url()
