"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def hwnasbench_dir() -> Path:
    """The public HW-NAS-Bench data (``$HWNASBENCH`` or ``../shared/hwnasbench`` beside the repository)."""
    path = Path(os.environ.get("HWNASBENCH", REPO_ROOT.parent / "shared" / "hwnasbench"))
    if not (path / "hwnasbench_fbnet_lut.pickle").is_file():
        pytest.skip(f"HW-NAS-Bench data not found at {path} (set HWNASBENCH to its directory); CI always has it")
    return path


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite database file, also made the default for code that reads the settings."""
    url = f"sqlite:///{tmp_path / 'splitnas.db'}"
    monkeypatch.setenv("SPLITNAS_DATABASE_URL", url)
    from db.config import get_settings

    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
