"""``nas search``'s summary of a job searched on a topology (the topology model itself is ``predictor.topology``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# nas/cli.py reads topology files through this module until it imports predictor.topology_file itself
from predictor.topology import TopologyError
from predictor.topology_file import read_topology

__all__ = ["TopologyError", "read_topology", "summary_rows"]


def summary_rows(config: Mapping[str, Any], result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Rows of ``nas search``'s summary table for a job searched on a topology."""
    latency, topology = result["latency"], result["topology"]
    met = "yes" if result["meets_t_th"] else "no"
    rows = [
        ("architecture", result["architecture"]),
        ("topology", f"{topology['name']} ({topology['kind']}): {topology['stages']}"),
        ("split points", f"{result['splits']}" + (" (searched)" if result.get("search_splits") else " (given)")),
    ]
    for segment in latency["segments"]:
        layers = segment["layers"]
        span = f"layers {layers[0]}..{layers[-1]}" if layers else "no searchable layer"
        sent = f"send {segment['comm_ms']:.2f} ms ({segment['payload_elements']} elements)"
        rows.append((f"  {segment['device']}", f"{span}: compute {segment['compute_ms']:.2f} ms, {sent}"))
    if latency.get("branch_ms"):
        branches = ", ".join(f"{name} {ms:.2f} ms" for name, ms in latency["branch_ms"].items())
        rows.append(("branches (root + branch)", f"{branches}; slowest: {latency['critical_branch']}"))
    if topology["derived_devices"]:
        rows.append(("derived devices", "; ".join(topology["derived_devices"])))
    rows += [
        ("completion latency", f"{latency['total_ms']:.2f} ms  (T {config['t_th']} ms, met: {met}; "
                               f"E[T] at the end of the search {result['expected_ms']:.2f} ms)"),
        ("bytes sent", f"{result['payload_bytes']} over all links"),
        ("accuracy", f"{result['accuracy_clean']:.4f} (lossless links)"),
        ("search wall time", f"{result['wall_time_s']:.1f} s, latency {100 * result['latency_share']:.3f} %"),
    ]
    return rows
