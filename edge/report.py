"""Timings of end-to-end requests: percentiles, the breakdown by phase, and the prediction beside them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from db.records import E2ERecord
from nas.manifest import Manifest
from predictor.latency import Link

PHASES = ("head", "encode", "transfer", "decode", "tail")


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, float), q))


def predicted_with_throughput(manifest: Manifest, throughput_mbps: float) -> float:
    """Section 3's sum with the first link at its measured throughput instead of the manifest's bandwidth."""
    first = manifest.links[0]
    link = Link(throughput_mbps, first.codec.bits, first.codec.name)
    measured = float(link.transfer_ms(math.prod(first.payload_shape))) + first.latency_ms
    return manifest.predicted_total_ms - first.predicted_ms + measured


def format_report(record: E2ERecord, *, predicted_at_measured_mbps: float) -> str:
    """A few lines a person reads: predicted vs measured p50/p90, then the median of each phase."""
    lines = [
        f"{record.job}: {record.requests} requests, {' -> '.join(record.devices)} over {record.transport}"
        f" (loss {record.loss:g}, codec {record.codec}, {record.payload_bytes} B payload), "
        f"link measured at {record.throughput_mbps:.2f} Mbit/s",
        f"  end to end   measured p50 {record.p50_ms:9.2f} ms   p90 {record.p90_ms:9.2f} ms",
        f"               predicted    {record.predicted_ms:9.2f} ms   (search's latency model; "
        f"{predicted_at_measured_mbps:.2f} ms at the measured throughput)",
        f"               error        {record.error_ms:+9.2f} ms ({record.error_pct:+.1f} %)",
        "  breakdown (p50 ms): " + ", ".join(f"{name} {ms:.2f}" for name, ms in record.breakdown.items()),
    ]
    lines += [f"  part {p.index} on {p.device}: compute p50 {p.p50_ms:.2f} ms, p90 {p.p90_ms:.2f} ms, "
              f"predicted {p.predicted_ms:.2f} ms" for p in record.parts]
    return "\n".join(lines)
