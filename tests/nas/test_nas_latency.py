"""The latency side of a search: tables from the database or the service, and split latency of samples."""

from __future__ import annotations

import random

import numpy as np
import pytest

from nas.latency import LatencyModel, SplitLatencyModel, TopologyLatency
from nas.latency_client import LatencyClient, LatencySourceError
from pipeline.service import free_port
from predictor.latency import Link, architecture_latency, split_latency
from predictor.topology import completion_latency
from predictor.topology_file import parse_topology
from spaces import get_space, sample_architecture
from tests.utils.topologies import CHAIN, edited

SPACE = "fbnet-cifar100"


def model(client: LatencyClient) -> SplitLatencyModel:
    return SplitLatencyModel(client, space=SPACE, head_device="raspi4", tail_device="edgegpu", link=Link(8, 32))


def test_vectorized_latency_matches_the_predictor_per_architecture(hwnasbench_db: str) -> None:
    with LatencyClient(db_url=hwnasbench_db, predictor="lookup") as client:
        latency = model(client)
    space = get_space(SPACE)
    rng = random.Random(0)
    archs = [sample_architecture(space, rng, splits=1) for _ in range(50)]
    blocks = np.array([[layer.block_names.index(b) for layer, b in zip(space.layers, a.blocks, strict=True)]
                       for a in archs])
    split = latency.split(blocks, np.array([a.split for a in archs]))
    whole = latency.whole(blocks)
    for i, arch in enumerate(archs):
        expected = split_latency(arch, latency.head, latency.tail, Link(8, 32))
        assert split["total_ms"][i] == pytest.approx(expected.total_ms)
        assert split["comm_ms"][i] == pytest.approx(arch.payload(arch.split) * 32 / 8e6 * 1e3)
        assert whole[i] == pytest.approx(architecture_latency(arch, latency.head))
        breakdown = latency.breakdown(arch)
        assert breakdown["head_ms"] + breakdown["comm_ms"] + breakdown["tail_ms"] == pytest.approx(expected.total_ms)
        assert breakdown["payload_bytes"] == arch.payload(arch.split) * 4
    assert latency.queries == 150
    assert latency.seconds > 0


def topology_model(client: LatencyClient) -> TopologyLatency:
    devices = [{"name": "ue", "device": "raspi4"}, {"name": "sbs", "device": "edgegpu", "latency_factor": 2.0},
               {"name": "cloud", "device": "edgegpu"}]
    return TopologyLatency(client, space=SPACE, topology=parse_topology(edited(CHAIN, "devices", devices)))


def test_both_models_revalidate_their_tables_and_count_their_time_from_their_start(service_url: str) -> None:
    with LatencyClient(service_url, predictor="lookup") as client:
        split = model(client)
        assert client.requests == 2 and client.not_modified == 0
        earlier = client.seconds
        topology = topology_model(client)  # two devices, each revalidated once: 304 both
        assert client.requests == 4 and client.not_modified == 2
        assert 0 < topology.seconds <= client.seconds - earlier + 1e-9
        again = model(client)
        assert client.not_modified == 4 and again.head is split.head
    for latency in (split, topology):
        assert isinstance(latency, LatencyModel)
    arch = sample_architecture(get_space(SPACE), random.Random(4)).with_splits(5, 12)
    before = topology.queries
    breakdown = topology.breakdown(arch)
    assert topology.queries == before + 1
    assert breakdown["total_ms"] == completion_latency(arch, topology.topology, topology.luts).total_ms
    assert set(breakdown) == {"total_ms", "segments", "branch_ms", "critical_branch", "payload_bytes", "predictors"}
    assert breakdown["predictors"] == {"ue": "lookup", "sbs": "lookup", "cloud": "lookup"}


def test_database_mode_names_what_is_missing(hwnasbench_db: str) -> None:
    with LatencyClient(db_url=hwnasbench_db) as client, pytest.raises(LatencySourceError, match="'jetson'"):
        client.lut("jetson", SPACE)


def test_service_tables_are_fetched_once_and_revalidated_by_etag(service_url: str, hwnasbench_db: str) -> None:
    with LatencyClient(service_url, predictor="lookup") as client:
        client.check()
        first = client.lut("raspi4", SPACE)
        again = client.lut("raspi4", SPACE)
        assert again is first and client.requests == 2  # /healthz and one /lut
        revalidated = client.lut("raspi4", SPACE, revalidate=True)
        assert revalidated is first and client.not_modified == 1
    with LatencyClient(db_url=hwnasbench_db, predictor="lookup") as local:
        direct = local.lut("raspi4", SPACE)
    assert np.array_equal(np.nan_to_num(first.table, nan=-1), np.nan_to_num(direct.table, nan=-1))
    assert first.fixed == pytest.approx(direct.fixed)


def test_service_errors_are_readable(service_url: str) -> None:
    with LatencyClient(service_url) as client, pytest.raises(LatencySourceError, match="404.*jetson"):
        client.lut("jetson", SPACE)
    unused = f"http://127.0.0.1:{free_port()}"
    with LatencyClient(unused, timeout=2) as client, pytest.raises(LatencySourceError, match="cannot reach"):
        client.lut("raspi4", SPACE)
