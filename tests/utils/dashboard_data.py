"""What the dashboard's tests add to the service's test database: an agent's run and finished search jobs.

The run carries what a profiler agent records (torch runtime, temperatures, a throttled flag, a noisy
entry, a busy-machine field); the jobs are stored as ``nas.jobs`` stores them, with their latency computed
from the database's own tables, so that the dashboard has every kind of data to show.
"""

from __future__ import annotations

import random
import uuid

from db import queries
from db.engine import session_scope
from db.records import MeasurementBatch, RunRecord
from predictor import load_lut
from predictor.latency import Link, architecture_latency, split_latency
from spaces import sample_architecture
from tests.utils.api_data import SPACE, device_records
from tests.utils.factories import ingest, model_records, sample_archs

AGENT = "local-cpu"
AGENT_ENVIRONMENT = {
    "host": "bench-host", "torch": "2.14.1", "torch_device": "cpu", "threads": 1,
    "thermal": {"temperature_c": 48.5}, "busy_load_1m": 1.75,
}


def agent_batch(device: str = AGENT, *, entries: int = 60, uid: str | None = None) -> MeasurementBatch:
    """Part of a space measured by an agent: ``entries`` block records, one noisy, one with a throttled CPU."""
    records = [r for r in device_records(device, gflops=4.0) if r.target == "block"][:entries]
    records[0] = records[0].model_copy(update={"noisy": True})
    records[1] = records[1].model_copy(update={"raw": {
        "thermal_before": {"temperature_c": 71.0, "throttled": {"value": "0x4", "throttled": True}},
        "thermal_after": {"temperature_c": 73.5, "throttled": {"value": "0x4", "throttled": True}},
    }})
    run = RunRecord(uid=uid or uuid.uuid4().hex, device=device, host="bench-host", environment=AGENT_ENVIRONMENT,
                    status="completed")
    return MeasurementBatch(run=run, measurements=records)


def add_models(db_url: str, device: str = "raspi4", *, n: int = 6) -> int:
    """``n`` whole architectures and their heads measured on ``device``, 15 % slower than its summed table."""
    with session_scope(db_url) as session:
        lut = load_lut(session, device=device, space=SPACE, kind="lookup")
    link = Link(1.0)

    def latency(arch):
        if arch.splits:
            return 1.15 * split_latency(arch, lut, lut, link).segments[0].compute_ms
        return 1.15 * architecture_latency(arch, lut)

    records = model_records(sample_archs(SPACE, n, seed=3, heads=True), latency)
    ingest(db_url, device, records)
    return len(records)


def add_jobs(db_url: str, *, head: str = "raspi4", tail: str = "edgegpu", bandwidth_mbps: float = 8.0) -> list[str]:
    """A finished nasc and hwnas job and a running one, on ``head`` and ``tail``; returns their uids."""
    rng = random.Random(0)
    uids = []
    with session_scope(db_url) as session:
        luts = {d: load_lut(session, device=d, space=SPACE) for d in (head, tail)}
        link = Link(bandwidth_mbps, 32)
        for method, accuracy, status in (("nasc", 0.91, "completed"), ("hwnas", 0.86, "completed"),
                                         ("nasc", None, "running")):
            arch = sample_architecture(SPACE, rng, splits=1)
            chain = split_latency(arch, luts[head], luts[tail], link)
            head_part, tail_part = chain.segments
            t_th = round(chain.total_ms * 1.2, 1)
            config = {"method": method, "space": SPACE, "head_device": head, "tail_device": tail,
                      "bandwidth_mbps": bandwidth_mbps, "bits": 32, "loss": 0.2, "t_th": t_th, "predictor": "auto",
                      "seed": len(uids)}
            uid = uuid.uuid4().hex
            uids.append(uid)
            queries.create_job(session, uid=uid, method=method, space=SPACE, config=config)
            epochs = 6 if status == "completed" else 3
            queries.append_job_history(session, uid=uid, records=[
                {"stage": "search", "epoch": e, "loss": 2.0 - 0.2 * e, "convergence": 0.3 + 0.1 * e,
                 "arch": arch.encode(), "latency_ms": chain.total_ms} for e in range(epochs)
            ])
            if status != "completed":
                continue
            payload = head_part.payload_elements
            queries.finish_job(session, uid=uid, status="completed", result={
                "architecture": arch.encode(), "split": arch.split,
                "latency": {"total_ms": chain.total_ms, "head_ms": head_part.compute_ms, "comm_ms": head_part.comm_ms,
                            "tail_ms": tail_part.compute_ms, "payload_elements": payload,
                            "payload_bytes": payload * 4, "head_device": head, "tail_device": tail},
                "payload_bytes": payload * 4, "meets_t_th": True, "latency_penalty_ms": 0.0, "loss_rate": 0.2,
                "accuracy_at_loss": accuracy, "accuracy_clean": accuracy + 0.02, "convergence": 0.8,
                "wall_time_s": 12.0, "latency_share": 0.001,
            })
    return uids

