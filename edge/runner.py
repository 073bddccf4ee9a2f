"""``splitnas-edge run``: the head on this device, the rest behind a server; every request timed by phase."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from db.records import E2ERecord, PartTiming
from edge.parts import load_part
from edge.report import PHASES, percentile, predicted_with_throughput
from edge.transports import Transport, TransportError, get_transport
from spaces.errors import UserError

WARMUP = 1  # requests run before timing: the first ONNX Runtime call and TCP's slow start cost more
PROBE_MIN_BYTES = 64 * 1024
RUNTIME = "onnxruntime"  # what runs every part here (the prediction's tables may be of other runtimes)


class RunError(UserError, RuntimeError):
    """A run that cannot start or that a server answered with an error; nothing of it is stored."""


@dataclass
class Request:
    """One timed request: the milliseconds of each phase, each part's compute, and what came back."""

    phases: dict[str, float]
    total_ms: float
    parts: list[dict[str, Any]]
    output: np.ndarray


@dataclass
class RunResult:
    record: E2ERecord
    requests: list[Request] = field(default_factory=list)
    predicted_at_measured_mbps: float = 0.0


def measure_throughput(link: Transport, nbytes: int, repeats: int = 3) -> float:
    """The link's throughput in Mbit/s: ``nbytes`` carried (less an empty round trip), the median of ``repeats``."""
    empty = float(np.median([link.probe(1) for _ in range(repeats)]))
    full = float(np.median([link.probe(nbytes) for _ in range(repeats)]))
    return nbytes * 8 / max(full - empty, 1e-6) / 1e6


def check_run_options(requests: int, loss: float) -> None:
    if requests < 1:
        raise RunError(f"--requests must be at least 1, got {requests}")
    if not 0 <= loss < 1:
        raise RunError(f"--loss is a probability of dropping a datagram, 0 <= p < 1; got {loss}")


def run(directory: Path | str, server: tuple[str, int], *, requests: int, transport: str = "tcp",
        loss: float = 0.0, seed: int = 0, inputs: np.ndarray | None = None) -> RunResult:
    """Run ``requests`` inferences of the export in ``directory``: the head here, the tail at ``server``."""
    check_run_options(requests, loss)
    head = load_part(directory, 0)
    manifest, link_spec = head.manifest, head.outgoing
    assert link_spec is not None
    codec = head.codec_out()
    rng = np.random.default_rng(seed)
    link = get_transport(transport)(server, loss=loss, seed=seed)
    try:
        throughput = measure_throughput(link, max(PROBE_MIN_BYTES, 4 * link_spec.payload_bytes))
        # the warm-up sends the first input too: timed request k answers inputs[k % len(inputs)]
        timed = [_request(head, codec, link, i, _input(inputs, max(i - WARMUP, 0), manifest.input_shape, rng))
                 for i in range(WARMUP + requests)][WARMUP:]
    except (OSError, TransportError) as exc:
        raise RunError(f"the run over {transport} to {server[0]}:{server[1]} failed: {exc}") from None
    finally:
        link.close()
    record = _record(manifest, timed, transport=transport, loss=loss, throughput=throughput,
                     payload_bytes=link_spec.payload_bytes)
    return RunResult(record, timed, predicted_with_throughput(manifest, throughput))


def answers_of(result: RunResult) -> np.ndarray:
    """The class each timed request's scores rank first, in order: answer k is for ``inputs[k % len(inputs)]``."""
    return np.array([int(np.argmax(r.output)) for r in result.requests], np.int64)


def load_inputs(path: Path | str) -> tuple[np.ndarray, np.ndarray | None]:
    """Images to send (``images``, N x C x H x W, normalized as the network was trained) and their ``labels``
    (optional) from an ``.npz`` file; RunError saying what it must hold otherwise."""
    try:
        with np.load(path) as data:
            images = np.asarray(data["images"], np.float32)
            labels = np.asarray(data["labels"], np.int64) if "labels" in data.files else None
    except (OSError, KeyError, ValueError) as exc:
        raise RunError(f"cannot read inputs from {path}: {exc} (give an .npz file with 'images' and optionally "
                       "'labels')") from None
    if images.ndim != 4 or len(images) == 0 or (labels is not None and labels.shape != (len(images),)):
        raise RunError(f"{path}: 'images' must be N x C x H x W (N >= 1) and 'labels' N class indices; got "
                       f"{images.shape} and {None if labels is None else labels.shape}")
    return images, labels


def _input(inputs: np.ndarray | None, i: int, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    if inputs is not None:
        return np.ascontiguousarray(inputs[i % len(inputs)][None], np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def _request(head: Any, codec: Any, link: Transport, request_id: int, x: np.ndarray) -> Request:
    start = time.perf_counter()
    y, head_ms = head.run(x)
    encoded = codec.encode(y)
    encode_ms = (time.perf_counter() - start) * 1e3 - head_ms
    sent = time.perf_counter()
    reply = link.request(request_id, encoded)
    round_trip_ms = (time.perf_counter() - sent) * 1e3
    total_ms = (time.perf_counter() - start) * 1e3
    if reply.error is not None or reply.output is None:
        raise RunError(f"the server refused request {request_id}: {reply.error}")
    first = reply.parts[0]
    server_ms = first["decode_ms"] + first["compute_ms"] + first.get("encode_ms", 0.0) + first.get("send_ms", 0.0)
    phases = {"head": head_ms, "encode": encode_ms, "transfer": max(round_trip_ms - server_ms, 0.0),
              "decode": sum(p["decode_ms"] for p in reply.parts),
              "tail": sum(p["compute_ms"] for p in reply.parts)}
    if len(reply.parts) > 1:  # a chain: the later links' time, beside the first link's
        phases["forward"] = max(first["send_ms"] - sum(p["decode_ms"] + p["compute_ms"] for p in reply.parts[1:]),
                                0.0)
    return Request(phases, total_ms, [{"index": 0, "compute_ms": head_ms}, *reply.parts], reply.output)


def _record(manifest: Any, timed: list[Request], *, transport: Any, loss: float, throughput: float,
            payload_bytes: int) -> E2ERecord:
    totals = [r.total_ms for r in timed]
    parts = [PartTiming(index=spec.index, device=spec.device,
                        p50_ms=max(percentile([r.parts[spec.index]["compute_ms"] for r in timed], 50), 1e-3),
                        p90_ms=max(percentile([r.parts[spec.index]["compute_ms"] for r in timed], 90), 1e-3),
                        predicted_ms=spec.predicted_ms) for spec in manifest.parts]
    names = [*PHASES, *(["forward"] if "forward" in timed[0].phases else [])]
    return E2ERecord(
        job=manifest.job, space=manifest.space, devices=[p.device for p in manifest.parts],
        runtime=RUNTIME,
        architecture=manifest.architecture, splits=manifest.splits, codec=manifest.links[0].codec.name,
        transport=transport, loss=loss, requests=len(timed), payload_bytes=payload_bytes,
        throughput_mbps=throughput, p50_ms=percentile(totals, 50), p90_ms=percentile(totals, 90),
        predicted_ms=manifest.predicted_total_ms, parts=parts,
        breakdown={name: percentile([r.phases[name] for r in timed], 50) for name in names},
        host=socket.gethostname(), load=list(os.getloadavg()),
    )
