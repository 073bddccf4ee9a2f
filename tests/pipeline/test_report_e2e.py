"""The pipeline's report lists the stored end-to-end runs beside their predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from db import queries
from db.engine import session_scope
from pipeline.report import write_report
from predictor import fit_predictors
from tests.utils.factories import block_records, e2e_record, fixed_records, ingest, synthetic_ms

SPACE = "fbnet-cifar100"


def measured_device(db: str) -> None:
    ingest(db, "pi", block_records(SPACE, synthetic_ms) + fixed_records(SPACE, synthetic_ms))
    with session_scope(db) as session:
        fit_predictors(session, device="pi", space=SPACE, kinds=["lookup"])


def test_the_report_shows_end_to_end_runs_against_their_predictions(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'report.db'}"
    measured_device(db)
    with session_scope(db) as session:
        queries.add_e2e(session, record=e2e_record("pi", 52.0, 40.0))
        queries.add_e2e(session, record=e2e_record("pi", 41.0, 40.0))

    page = write_report(tmp_path, db, ["pi"], "pi", SPACE, []).read_text()
    assert "End-to-end runs" in page and "pi -&gt; server" in page and "+30.0" in page and "+2.5" in page
    assert "within &plusmn;10 % 50" in page
    runs = json.loads((tmp_path / "summary.json").read_text())["e2e"]
    assert [r["error_pct"] for r in runs] == pytest.approx([30.0, 2.5])


def test_a_report_without_end_to_end_runs_has_no_such_section(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'report.db'}"
    measured_device(db)
    assert "End-to-end runs" not in write_report(tmp_path, db, ["pi"], "pi", SPACE, []).read_text()
