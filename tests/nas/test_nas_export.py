"""``nas export``: a finished search's network cut into parts (ONNX, TorchScript) that reproduce it in a chain."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.cli import entry_point
from nas.config import SearchConfig
from nas.data import ImageData, load_synthetic_data, subset
from nas.export import export_job, run_exported
from nas.jobs import run_search
from nas.latency_client import LatencyClient
from nas.manifest import ManifestError, read_manifest
from nas.results import Job
from nas.searched import SearchedNetworkError, load_searched_network
from predictor.latency import Link
from spaces.codecs import get_codec
from spaces.modules import build_network

TINY = {
    "data": "synthetic", "data_limit": 16, "batch_size": 8, "steps_per_epoch": 1, "pretrain_epochs": 1,
    "search_epochs": 1, "retrain_epochs": 1, "predictor": "lookup", "split_eval_batches": 1, "device": "cpu",
}
CHAIN = {
    "name": "chain3", "topology": "chain",
    "devices": [{"name": "ue", "device": "raspi4"}, {"name": "sbs", "device": "raspi4", "latency_factor": 0.3},
                {"name": "cloud", "device": "edgegpu"}],
    "links": [{"from": "ue", "to": "sbs", "bandwidth_mbps": 25},
              {"from": "sbs", "to": "cloud", "bandwidth_mbps": 50, "bits": 8}],
    "assignment": {"splits": [5, 13]},
}


@pytest.fixture(scope="module")
def searches(hwnasbench_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Job]]:
    """Finished tiny searches: NASC over a float32 link, NASC over an int8 link, and a 3-device chain."""
    torch.set_num_threads(1)
    directory = tmp_path_factory.mktemp("export-jobs")
    db_url = f"sqlite:///{directory / 'jobs.db'}"
    data: ImageData = subset(load_synthetic_data(), 16)
    configs = {
        "float32": SearchConfig(method="nasc", **TINY),
        "int8": SearchConfig(method="nasc", bits=8, seed=1, **TINY),
        "chain": SearchConfig(method="gradient", space="fbnet-cifar100", topology=CHAIN, t_th=30, **TINY),
    }
    with LatencyClient(db_url=hwnasbench_db, predictor="lookup") as client:
        jobs = {name: run_search(config, db_url=db_url, client=client, data=data,
                                 weights=directory / f"{name}.weights.pt") for name, config in configs.items()}
    yield jobs | {"db": db_url}  # type: ignore[dict-item]


def unsplit_network(job: Job) -> torch.nn.Module:
    """The whole network (``build_network``) holding the weights the job kept."""
    network, meta = load_searched_network(job)
    whole = build_network(meta.arch)
    whole.fc = torch.nn.Linear(whole.fc.in_features, meta.num_classes)
    names = {}
    for key in network.state_dict():
        _, _, rest = key.partition(".")
        _, _, name = rest.partition(".")
        names[key] = name.replace("_front.", ".front.", 1).replace("_back.", ".back.", 1)
    whole.load_state_dict({names[k]: v for k, v in network.state_dict().items()}, strict=True)
    return whole.eval()


def images(n: int = 3) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 1, 3, 32, 32)).astype(np.float32)


def test_a_search_keeps_its_network(searches: dict[str, Job]) -> None:
    for name in ("float32", "int8", "chain"):
        job = searches[name]
        assert job.result is not None and job.result.weights is not None and Path(job.result.weights).is_file()
        network, meta = load_searched_network(job)
        assert meta.architecture == job.result.architecture and meta.job == job.uid
        assert not network.training
    assert load_searched_network(searches["int8"])[1].codecs == ("int8",)
    assert load_searched_network(searches["chain"])[1].codecs == ("float32", "int8")
    assert searches["int8"].result.codec == "int8"  # type: ignore[union-attr]


def test_two_device_export_reproduces_the_unsplit_network(searches: dict[str, Job], tmp_path: Path) -> None:
    job = searches["float32"]
    manifest = export_job(job, tmp_path)
    assert read_manifest(tmp_path) == manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "part0.onnx", "part0.pt", "part1.onnx",
                                                           "part1.pt"]
    result = job.result
    assert result is not None and result.latency.__class__.__name__ == "SplitBreakdown"
    head, tail = manifest.parts
    [link] = manifest.links
    assert (head.device, tail.device) == (result.latency.head_device, result.latency.tail_device)  # type: ignore[union-attr]
    assert manifest.splits == [result.split] and manifest.input_shape == [1, 3, 32, 32]
    assert head.output_shape == tail.input_shape == link.payload_shape
    assert int(np.prod(link.payload_shape)) == result.latency.payload_elements  # type: ignore[union-attr]
    # the prediction is the search's, by the one formula: T = T_head + q n / r + T_tail
    assert link.payload_bytes == result.payload_bytes == Link(8.0, 32).payload_bytes(np.prod(link.payload_shape))
    assert link.predicted_ms == pytest.approx(Link(link.bandwidth_mbps, 32).transfer_ms(np.prod(link.payload_shape)))
    assert head.predicted_ms + link.predicted_ms + tail.predicted_ms == pytest.approx(manifest.predicted_total_ms)
    assert manifest.predicted_total_ms == result.latency.total_ms
    assert manifest.codec.name == "float32"
    # each part carries its device's table runtime: HW-NAS-Bench's Pi 4 ran TFLite, its TX2 TensorRT
    assert (head.runtime, tail.runtime) == (result.runtimes[head.device], result.runtimes[tail.device])
    assert (head.runtime, tail.runtime) == ("tflite", "tensorrt") and manifest.runtime == "mixed"
    whole = unsplit_network(job)
    for x in images():
        with torch.no_grad():
            expected = whole(torch.from_numpy(x)).numpy()
        for runtime in ("onnx", "torchscript"):
            assert np.abs(run_exported(tmp_path, x, runtime=runtime) - expected).max() <= 1e-5
    assert max(manifest.verification.values()) <= 1e-5


def test_a_chain_of_three_devices_reproduces_the_network_within_the_codec_error(
    searches: dict[str, Job], tmp_path: Path
) -> None:
    job = searches["chain"]
    manifest = export_job(job, tmp_path)
    assert [p.device for p in manifest.parts] == ["ue", "sbs", "cloud"]
    assert manifest.splits == [5, 13] and [p.layers for p in manifest.parts] == [
        list(range(5)), list(range(5, 13)), list(range(13, 22))]
    assert [(link.from_, link.to, link.codec.name, link.bandwidth_mbps) for link in manifest.links] == [
        (0, 1, "float32", 25), (1, 2, "int8", 50)]
    segments = job.result.latency.segments  # type: ignore[union-attr]
    assert [p.predicted_ms for p in manifest.parts] == [s.compute_ms for s in segments]
    assert [link.predicted_ms for link in manifest.links] == [s.comm_ms for s in segments[:2]]
    assert manifest.links[1].payload_bytes == np.prod(manifest.links[1].payload_shape) + 8
    network, _ = load_searched_network(job)
    whole = unsplit_network(job)
    for x in images():
        exported = run_exported(tmp_path, x, runtime="onnx")
        with torch.no_grad():
            deployed = network(torch.from_numpy(x)).numpy()  # the same int8 round trip, in torch
            unquantized = whole(torch.from_numpy(x)).numpy()
            payload = network.parts[1](network.parts[0](torch.from_numpy(x)))
        # what crosses the int8 link differs from the float payload by at most half a quantization step
        int8 = get_codec("int8")
        assert (int8.roundtrip(payload) - payload).abs().max() <= int8.max_error(payload)
        assert np.abs(exported - deployed).max() <= 1e-4 * max(1.0, np.abs(deployed).max())
        assert np.abs(exported - unquantized).max() > 0  # the payload really is quantized
        assert np.abs(exported - unquantized).max() <= 0.05 * max(1.0, np.abs(unquantized).max())
        assert np.abs(run_exported(tmp_path, x, runtime="torchscript") - exported).max() <= 1e-4


def run_nas(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The ``nas`` console script in this process: its exit status and stderr."""
    monkeypatch.setattr(sys, "argv", ["nas", *args])
    with pytest.raises(SystemExit) as exit_info:
        entry_point()
    return int(exit_info.value.code or 0), capsys.readouterr().err


def test_nas_export_command_and_its_one_line_errors(
    searches: dict[str, Job], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(searches["db"])
    job = searches["int8"]
    out = tmp_path / "int8"
    status, err = run_nas(monkeypatch, capsys, "export", job.uid, "--out", str(out), "--db", db)
    assert status == 0, err
    assert "part 1 on edgegpu" in err and "int8" in err and "manifest.json" in err
    manifest = read_manifest(out)
    assert manifest.job == job.uid and manifest.codec.name == "int8" and manifest.links[0].codec.bits == 8
    assert max(manifest.verification.values()) < 0.05

    def refused(*args: str) -> str:
        status, err = run_nas(monkeypatch, capsys, "export", *args)
        assert status == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        return err

    assert "no search job with uid nope" in refused("nope", "--out", str(tmp_path / "x"), "--db", db)
    without = job.model_copy(update={"result": job.result.model_copy(update={"weights": None})})  # type: ignore[union-attr]
    job_file = tmp_path / "old.json"
    job_file.write_text(without.model_dump_json(by_alias=True))
    assert "kept no weights" in refused(str(job_file), "--out", str(tmp_path / "y"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    with pytest.raises(SearchedNetworkError, match="kept no weights"):
        export_job(without, tmp_path / "z")
    with pytest.raises(ManifestError, match="nas export JOB"):
        read_manifest(tmp_path / "nothing")
    assert json.loads((out / "manifest.json").read_text())["links"][0]["from"] == 0


def test_codec_and_bits_say_what_is_sent() -> None:
    assert SearchConfig().payload_codec == "float32"
    assert SearchConfig(bits=16).payload_codec == "float16"
    assert (SearchConfig(codec="int16").bits, SearchConfig(codec="int16").payload_codec) == (16, "int16")
    assert SearchConfig(bits=8, codec="int8").payload_codec == "int8"
    with pytest.raises(ValueError, match="int8 sends 8 bits per element, not --bits 16"):
        SearchConfig(bits=16, codec="int8")
    with pytest.raises(ValueError, match="unknown payload codec 'int4'; allowed: float32, float16, int16, int8"):
        SearchConfig(codec="int4")
