"""``--resume`` never takes a measurement of one runtime for another's: the runtime is in the environment key."""

from __future__ import annotations

from db import queries, session_scope
from db.records import MeasurementBatch, MeasurementRecord, RunRecord
from profiler import environment
from profiler.runner import ProfileOptions, plan_run

SPACE = "fbnet-cifar100"


def test_resume_skips_what_the_same_runtime_measured_and_nothing_of_another(db_url: str) -> None:
    torch_env = environment.capture(threads=1)
    onnx_env = environment.capture(threads=1, runtime="onnxruntime")
    record = MeasurementRecord(target="block", key=f"{SPACE}/L0/k3_e1", space=SPACE, layer=0, block="k3_e1",
                               latency_ms=1.0)
    run = RunRecord(uid="torch-run", device="this-cpu", environment=torch_env,
                    environment_key=environment.environment_key(torch_env))
    with session_scope(db_url) as session:
        queries.ingest_batch(session, batch=MeasurementBatch(run=run, measurements=[record]))

    options = ProfileOptions(device="this-cpu", space=SPACE, layers=(0,), resume=True)
    torch_entries, torch_skipped = plan_run(options, environment.environment_key(torch_env), db_url)
    onnx_entries, onnx_skipped = plan_run(options, environment.environment_key(onnx_env), db_url)
    assert (torch_skipped, onnx_skipped) == (1, 0)
    assert record.key not in {e.key for e in torch_entries} and record.key in {e.key for e in onnx_entries}
