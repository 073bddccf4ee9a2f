"""``nas search --method gradient --topology FILE`` end to end against a real latency service on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from nas.cli import app
from nas.latency_client import LatencyClient
from pipeline.service import Service
from predictor.topology import completion_latency, topology_luts
from predictor.topology_file import load_topology
from spaces import Architecture
from tests.utils.api_data import build_service_db

SPACE = "fbnet-cifar100"
CHAIN3 = {
    "name": "chain3",
    "topology": "chain",
    "devices": [{"name": "ue", "device": "raspi4"}, {"name": "sbs", "device": "raspi4", "latency_factor": 0.3},
                {"name": "cloud", "device": "edgegpu"}],
    "links": [{"from": "ue", "to": "sbs", "bandwidth_mbps": 25}, {"from": "sbs", "to": "cloud", "bandwidth_mbps": 50}],
    "assignment": {"layers": {"ue": [0, 4], "sbs": [5, 12], "cloud": [13, 21]}},
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The latency service on 127.0.0.1 over synthetic raspi4 / edgegpu tables (tests.utils.api_data)."""
    directory = tmp_path_factory.mktemp("gradient-service")
    db_url = f"sqlite:///{directory / 'service.db'}"
    build_service_db(db_url)
    with Service(db_url, log=directory / "server.log") as running:
        yield running.url


def search_args(topology: Path, url: str, db: str, output: Path, *extra: str) -> list[str]:
    return [
        "search", "--method", "gradient", "--topology", str(topology), "--space", SPACE, "--predictor-url", url,
        "--data", "synthetic", "--data-limit", "16", "--pretrain-epochs", "1", "--search-epochs", "1",
        "--retrain-epochs", "1", "--steps-per-epoch", "1",
        "--batch-size", "8", "--t-th", "30", "--device", "cpu", "--db", db, "--output", str(output), *extra,
    ]


def test_gradient_search_on_a_chain_against_the_service(service: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    topology_file = tmp_path / "chain3.yaml"
    topology_file.write_text(yaml.safe_dump(CHAIN3))
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    runner = CliRunner(env={"COLUMNS": "250"})
    result = runner.invoke(app, search_args(topology_file, service, db, tmp_path / "fixed.json", "--quiet"))
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, search_args(topology_file, service, db, tmp_path / "searched.json",
                                            "--gradient-search-splits", "--gradient-latency-loss", "log"))
    assert result.exit_code == 0, result.output
    assert "split points" in result.output and "(searched)" in result.output

    fixed = json.loads((tmp_path / "fixed.json").read_text())
    searched = json.loads((tmp_path / "searched.json").read_text())
    assert fixed["status"] == searched["status"] == "completed"
    assert fixed["result"]["splits"] == [5, 13]  # the topology file's layer ranges
    assert len(searched["result"]["splits"]) == 2 and searched["config"]["gradient"]["latency_loss"] == "log"
    assert [r["stage"] for r in fixed["history"]] == ["warmup", "search", "retrain"]

    # the stored latency is the completion latency of the answer on the service's tables
    topology = load_topology(topology_file)
    with LatencyClient(service) as client:
        luts = topology_luts(topology, lambda device: client.lut(device, SPACE))
    for job in (fixed, searched):
        res = job["result"]
        arch = Architecture.parse(res["architecture"], SPACE)
        assert list(arch.splits) == res["splits"]
        assert res["latency"]["total_ms"] == pytest.approx(completion_latency(arch, topology, luts).total_ms)
        assert res["meets_t_th"] == (res["latency"]["total_ms"] <= 30)
        assert res["latency_source"] == service and 0 <= res["accuracy_clean"] <= 1
        assert res["topology"]["derived_devices"] == ["sbs (derived: 0.3 x raspi4)"]

    report = runner.invoke(app, ["report", "--json", "--db", db])
    assert report.exit_code == 0, report.output
    assert {j["uid"] for j in json.loads(report.output)} == {fixed["uid"], searched["uid"]}
    table = runner.invoke(app, ["report", "--db", db, "--output-dir", str(tmp_path / "plots")])
    assert table.exit_code == 0, table.output
    assert "gradient" in table.output and "5,13" in table.output


def test_gradient_search_needs_a_valid_topology(service: str, tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "250"})
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    result = runner.invoke(app, ["search", "--method", "gradient", "--db", db, "--quiet"])
    assert result.exit_code != 0 and "give --topology FILE" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**CHAIN3, "links": CHAIN3["links"][:1]}))
    result = runner.invoke(app, search_args(bad, service, db, tmp_path / "x.json", "--quiet"))
    assert result.exit_code != 0 and "bad.yaml: links: missing link from 'sbs' to 'cloud'" in result.output
