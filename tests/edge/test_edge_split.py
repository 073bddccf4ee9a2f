"""A real split inference: the tail in a ``splitnas-edge serve`` process, the head here, over TCP and UDP."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from edge.framing import UDP_FRAME_HEADERS, Assembly, datagrams, payload_mbps
from edge.runner import RunError, run
from edge.transports import TCP
from nas.export import run_exported
from nas.manifest import read_manifest
from pipeline.service import Service
from spaces.codecs import Encoded, get_codec
from tests.edge.conftest import EdgeServer
from tests.utils.api_data import create_token


def images(n: int = 3) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 3, 32, 32)).astype(np.float32)


def edge_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The real service (uvicorn) on a new SQLite file: it creates the schema on start."""
    directory = tmp_path_factory.mktemp("edge-service")
    with Service(f"sqlite:///{directory / 'service.db'}", log=directory / "uvicorn.log") as running:
        yield running


def test_tcp_split_inference_answers_as_the_local_chain_and_uploads_its_timing(
    export_dir: Path, edge_server: EdgeServer, service: Service
) -> None:
    server = edge_server(export_dir, "--part", "1")
    inputs = images()
    result = run(export_dir, server, requests=3, inputs=inputs)
    for x, request in zip(inputs, result.requests, strict=True):
        assert np.abs(request.output - run_exported(export_dir, x[None])).max() <= 1e-5
        assert set(request.phases) == {"head", "encode", "transfer", "decode", "tail"}
        assert request.parts[1]["lost_elements"] == 0

    token = create_token(service.db_url, f"edge-{uuid.uuid4().hex[:8]}")  # type: ignore[arg-type]
    done = edge_cli("run", str(export_dir), "--server", f"{server[0]}:{server[1]}", "--requests", "4",
                    "--upload", service.url, "--token", token, "--json")
    assert done.returncode == 0, done.stderr
    assert "predicted" in done.stderr and "uploaded as e2e run" in done.stderr
    record = json.loads(done.stdout)
    manifest = read_manifest(export_dir)
    assert (record["transport"], record["loss"], record["requests"]) == ("tcp", 0.0, 4)
    assert record["devices"] == [p.device for p in manifest.parts] and record["splits"] == manifest.splits
    assert record["predicted_ms"] == manifest.predicted_total_ms and record["runtime"] == "onnxruntime"
    assert record["throughput_mbps"] > 0 and record["p90_ms"] >= record["p50_ms"] > 0
    stored = httpx.get(f"{service.url}/e2e", params={"job": manifest.job}).json()
    assert len(stored) == 1
    assert stored[0]["error_ms"] == pytest.approx(record["p50_ms"] - record["predicted_ms"])
    assert stored[0]["architecture"] == manifest.architecture


def test_a_three_device_chain_forwards_each_payload_with_its_links_codec(
    chain_export_dir: Path, edge_server: EdgeServer
) -> None:
    cloud = edge_server(chain_export_dir, "--part", "2")
    sbs = edge_server(chain_export_dir, "--part", "1", "--forward", f"{cloud[0]}:{cloud[1]}")
    inputs = images(2)
    result = run(chain_export_dir, sbs, requests=2, inputs=inputs)
    for x, request in zip(inputs, result.requests, strict=True):
        # the int8 link may round an element the other way (float noise between processes): one step of it
        assert np.abs(request.output - run_exported(chain_export_dir, x[None])).max() <= 1e-3
        assert [p["index"] for p in request.parts] == [0, 1, 2] and "forward" in request.phases
    assert [p.device for p in result.record.parts] == ["ue", "sbs", "cloud"]
    assert result.record.splits == [5, 13] and "forward" in result.record.breakdown


def test_udp_decodes_what_arrived_with_lost_datagrams_as_zeros(export_dir: Path, edge_server: EdgeServer) -> None:
    server = edge_server(export_dir, "--part", "1", "--transport", "udp")
    inputs = images(2)
    lossless = run(export_dir, server, requests=2, transport="udp", inputs=inputs)
    for x, request in zip(inputs, lossless.requests, strict=True):
        assert np.abs(request.output - run_exported(export_dir, x[None])).max() <= 1e-5
    lossy = run(export_dir, server, requests=2, transport="udp", loss=0.5, seed=3, inputs=inputs)
    for clean, dropped in zip(lossless.requests, lossy.requests, strict=True):
        tail = dropped.parts[1]
        assert 0 < tail["lost_elements"] < tail["elements"]
        assert tail["input_zeros"] >= tail["lost_elements"]  # every lost element reached the tail as 0
        assert tail["input_zeros"] > clean.parts[1]["input_zeros"]
        assert not np.allclose(dropped.output, clean.output)
    assert lossy.record.loss == 0.5 and lossy.record.transport == "udp"


@pytest.mark.parametrize("codec", ["float32", "int8"])
def test_a_lost_datagram_leaves_exact_zeros_where_its_elements_were(codec: str) -> None:
    x = np.random.default_rng(1).uniform(0.5, 2.0, (4, 32, 32)).astype(np.float32)
    spec = get_codec(codec)
    *data, end = datagrams(7, spec.encode(x), max_bytes=600)
    assembly = Assembly.start(spec.name, x.shape)
    for seq, message in enumerate(data):
        if seq % 3 != 1:  # every third datagram lost
            assembly.add(message)
    assembly.add(end)
    assert assembly.done
    decoded = np.asarray(spec.decode(assembly.encoded())).reshape(-1)
    lost = ~assembly.received
    assert lost.any() and (decoded[lost] == 0).all()
    assert np.abs(decoded[~lost] - x.reshape(-1)[~lost]).max() <= spec.max_error(x)


@pytest.mark.parametrize("codec", ["float32", "int8"])
def test_the_payload_rate_of_a_line_is_its_share_of_the_bytes_the_frames_carry(codec: str) -> None:
    assert payload_mbps(8, "tcp") == pytest.approx(8 * 1448 / 1514)  # 66 B of headers per full TCP frame
    spec = get_codec(codec)
    x = np.random.default_rng(2).standard_normal((1, 64, 32, 32)).astype(np.float32)
    *data, _ = datagrams(3, spec.encode(x))
    element_bytes = x.size * spec.bits // 8
    on_the_line = sum(len(d) + UDP_FRAME_HEADERS for d in data)
    assert payload_mbps(8, "udp", spec.bits) == pytest.approx(8 * element_bytes / on_the_line, rel=1e-3)


def test_bad_inputs_get_a_clear_message_and_store_nothing(
    export_dir: Path, edge_server: EdgeServer, service: Service, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'local.db'}"
    for args, message in [
        (["--server", "127.0.0.1:9", "--loss", "1.5"], "--loss is a probability"),
        (["--server", "nowhere"], "invalid address 'nowhere'"),
        (["--server", "127.0.0.1:9", "--transport", "carrier-pigeon"], "unknown transport 'carrier-pigeon'"),
        (["--server", "127.0.0.1:1", "--requests", "1"], "cannot connect to 127.0.0.1:1 over tcp"),
    ]:
        done = edge_cli("run", str(export_dir), *args, "--db", db)
        assert (done.returncode, done.stderr.count("error:")) == (2, 1), done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
    missing = edge_cli("run", str(tmp_path / "nothing"), "--server", "127.0.0.1:9")
    assert missing.returncode == 2 and "nas export JOB --out DIR" in missing.stderr
    head = edge_cli("serve", str(export_dir), "--part", "0", "--port", "0")
    assert head.returncode == 2 and "part 0 is the head" in head.stderr
    beyond = edge_cli("serve", str(export_dir), "--part", "5", "--port", "0")
    assert beyond.returncode == 2 and "has parts 0 to 1" in beyond.stderr

    server = edge_server(export_dir, "--part", "1")
    link = TCP(server)
    reply = link.request(1, Encoded("float32", np.zeros(5, np.float32)))  # a payload of the wrong shape
    link.close()
    assert reply.output is None and reply.error is not None and "payload of shape" in reply.error
    with pytest.raises(RunError, match="--requests must be at least 1"):
        run(export_dir, server, requests=0)

    from db import queries
    from db.engine import session_scope

    with session_scope(db) as session:
        assert queries.list_e2e(session) == []
    token = create_token(service.db_url, f"edge-{uuid.uuid4().hex[:8]}")  # type: ignore[arg-type]
    before = httpx.get(f"{service.url}/e2e").json()
    body = {"job": "j", "space": "fbnet-cifar100", "devices": ["a", "b"], "runtime": "onnxruntime",
            "architecture": ["k3_e1"], "splits": [5, 9], "codec": "float32", "transport": "tcp", "loss": 0,
            "requests": 1, "payload_bytes": 4, "throughput_mbps": 8, "p50_ms": 1, "p90_ms": 2, "predicted_ms": 1,
            "parts": [{"index": 0, "device": "a", "p50_ms": 1, "p90_ms": 1, "predicted_ms": 1},
                      {"index": 1, "device": "b", "p50_ms": 1, "p90_ms": 1, "predicted_ms": 1}]}
    refused = httpx.post(f"{service.url}/e2e", json=body, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 422 and "2 devices need 1 split(s)" in refused.text
    assert httpx.post(f"{service.url}/e2e", json=body | {"splits": [5]}).status_code == 401
    assert httpx.get(f"{service.url}/e2e").json() == before


def test_a_tcp_server_answers_a_second_device_while_the_first_stays_connected(
    export_dir: Path, edge_server: EdgeServer
) -> None:
    server = edge_server(export_dir, "--part", "1")
    first = TCP(server)  # connected and idle: a server answering one client at a time would make the second wait
    try:
        second = run(export_dir, server, requests=2, inputs=images(2))
        assert len(second.requests) == 2 and second.record.p50_ms > 0
        assert first.probe(64) > 0  # and the first is still served
    finally:
        first.close()


def test_labelled_images_sent_over_udp_come_back_as_answers_in_input_order(
    export_dir: Path, edge_server: EdgeServer, tmp_path: Path
) -> None:
    host, port = edge_server(export_dir, "--part", "1", "--transport", "udp")
    x = images(4)
    expected = np.array([int(np.argmax(run_exported(export_dir, xi[None]))) for xi in x])
    inputs, answers, lossy_answers = tmp_path / "inputs.npz", tmp_path / "answers.npy", tmp_path / "lossy.npy"
    np.savez(inputs, images=x, labels=expected)
    common = ["run", str(export_dir), "--server", f"{host}:{port}", "--transport", "udp", "--requests", "4",
              "--inputs", str(inputs)]
    clean = edge_cli(*common, "--answers", str(answers))
    assert clean.returncode == 0, clean.stderr
    assert np.array_equal(np.load(answers), expected)
    assert "top-1 accuracy of the answers: 1.0000 (4 of 4 labelled requests)" in clean.stderr
    lossy = edge_cli(*common, "--loss", "0.5", "--seed", "3", "--answers", str(lossy_answers))
    assert lossy.returncode == 0, lossy.stderr
    classes = np.load(lossy_answers)
    assert classes.shape == (4,) and ((classes >= 0) & (classes < 10)).all() and "top-1 accuracy" in lossy.stderr

    np.savez(tmp_path / "bad.npz", pictures=x)
    for path in (tmp_path / "missing.npz", tmp_path / "bad.npz"):
        refused = edge_cli(*common[:-1], str(path))
        assert refused.returncode == 2 and "cannot read inputs" in refused.stderr, refused.stderr
