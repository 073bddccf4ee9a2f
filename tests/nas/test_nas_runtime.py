"""``nas search --runtime``: the search reads the latency tables of the runtime asked for.

Both devices hold generated tables (``factories.synthetic_ms``, not measurements) under two runtimes, the
"onnxruntime" ones faster: which tables answered shows in the result's latency.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from typer.testing import CliRunner

from db.engine import session_scope
from nas.cli import app
from nas.jobs import load_jobs
from nas.results import SplitResult, read_job
from predictor import Link, fit_predictors, load_lut, split_latency
from spaces import Architecture
from tests.utils.factories import block_records, fixed_records, ingest, synthetic_ms

SPACE = "fbnet-cifar100"
TABLES = {("raspi4", "torch"): 1.5, ("raspi4", "onnxruntime"): 3.0, ("edgegpu", "torch"): 20.0,
          ("edgegpu", "onnxruntime"): 40.0}
TINY_FLAGS = ["--method", "random", "--data", "synthetic", "--data-limit", "16", "--batch-size", "8",
              "--steps-per-epoch", "1", "--pretrain-epochs", "1", "--search-epochs", "1", "--retrain-epochs", "1",
              "--predictor", "lookup"]


def test_search_uses_the_tables_of_the_runtime_asked_for(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runtimes.db'}"
    for (device, runtime), gflops in TABLES.items():
        latency = partial(synthetic_ms, gflops=gflops)
        ingest(db, device, block_records(SPACE, latency) + fixed_records(SPACE, latency), runtime=runtime)
        with session_scope(db) as session:
            fit_predictors(session, device=device, space=SPACE, kinds=["lookup"], evaluate=False, runtime=runtime)
    runner = CliRunner()

    ambiguous = runner.invoke(app, ["search", "--db", db, *TINY_FLAGS])
    assert ambiguous.exit_code == 1 and "several runtimes (onnxruntime, torch)" in ambiguous.output
    assert load_jobs(db) == [], "the mistake is found before the job is stored"
    bad = runner.invoke(app, ["search", "--db", db, "--runtime", "ONNX", *TINY_FLAGS])
    assert bad.exit_code == 2 and "invalid runtime 'ONNX'" in bad.output

    output = tmp_path / "job.json"
    result = runner.invoke(app, ["search", "--db", db, "--runtime", "onnxruntime", "--output", str(output),
                                 *TINY_FLAGS])
    assert result.exit_code == 0, result.output
    job = read_job(json.loads(output.read_text()))
    assert job.status == "completed" and job.config.runtime == "onnxruntime"
    assert isinstance(job.result, SplitResult)
    arch = Architecture.parse(job.result.architecture, SPACE)
    with session_scope(db) as session:
        head, tail = (load_lut(session, device=d, space=SPACE, kind="lookup", runtime="onnxruntime")
                      for d in ("raspi4", "edgegpu"))
    expected = split_latency(arch, head, tail, Link(job.config.bandwidth_mbps, job.config.bits))
    assert job.result.latency.total_ms == expected.total_ms
    assert job.result.latency.head_ms == expected.segments[0].compute_ms
