"""The shared figures of the dashboard and the static report (predictor.figures): what they show, and how."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from predictor import figures
from tests.utils.synthetic_luts import synthetic_lut

NS = {"svg": "http://www.w3.org/2000/svg"}


def cells(svg: str) -> dict[tuple[int, str], ET.Element]:
    root = ET.fromstring(svg)
    return {(int(g.get("data-layer")), g.get("data-block")): g for g in root.iterfind(".//svg:g[@class='cell']", NS)}


def test_a_zero_latency_is_written_and_coloured_not_left_white() -> None:
    lut = synthetic_lut("fbnet-cifar100", "dev", seed=0)
    lut.table[3, 0] = 0.0
    lut.measured[3, 0] = True
    cell = cells(figures.heatmap_svg(lut))[3, lut.blocks[0]]
    assert cell.find("svg:text", NS).text == "0"
    fill = cell.find("svg:rect", NS).get("fill")
    assert fill == figures.VIRIDIS[0] and fill.lower() not in ("#fff", "#ffffff", "white", figures.MISSING)


def test_heatmap_cells_hold_the_table_and_mark_predictions() -> None:
    lut = synthetic_lut("fbnet-cifar100", "dev", seed=1)
    lut.measured[:] = True
    lut.measured[5, 2] = False
    found = cells(figures.heatmap_svg(lut))
    assert len(found) == int((lut.table == lut.table).sum())
    for (layer, block), cell in found.items():
        assert float(cell.get("data-value")) == lut.table[layer, lut.column(block)]
    predicted = found[5, lut.blocks[2]]
    assert predicted.get("data-measured") == "false" and predicted.find("svg:text", NS).text.endswith("*")
    assert predicted.find("svg:rect", NS).get("stroke-dasharray")


def test_figures_state_their_scenario() -> None:
    job = {"uid": "abcdef0123", "method": "nasc", "space": "fbnet-cifar100", "status": "running",
           "config": {"head_device": "raspi4", "tail_device": "edgegpu", "bandwidth_mbps": 8.0, "bits": 32,
                      "loss": 0.2, "t_th": 30.0},
           "history": [{"stage": "search", "epoch": e, "loss": 1.0, "convergence": 0.5} for e in range(3)],
           "result": {}}
    scenario = figures.job_scenario(job, {"raspi4": "torch 2.14.1 (cpu)", "edgegpu": "torch 2.14.1 (cpu)"})
    line = figures.scenario_line(scenario)
    assert line == "head raspi4 → tail edgegpu · runtime torch 2.14.1 (cpu) · 8 Mbit/s, 32 bits · loss 0.2 · T_th 30 ms"
    assert line in figures.convergence_svg(job, scenario=scenario)
    lut = synthetic_lut("fbnet-cifar100", "dev", seed=0)
    assert "runtime torch 2.14.1 (cpu)" in figures.heatmap_svg(lut, scenario={"runtime": "torch 2.14.1 (cpu)"})


def test_numbers_are_written_without_exponents_that_widen_cells() -> None:
    assert figures.fmt(100.0) == "100" and figures.fmt(12345.6) == "12346" and figures.fmt(0.000123) == "0.000123"
    assert figures.fmt(None) == "–" and figures.fmt(0.0) == "0"


def test_ticks_cover_the_data() -> None:
    for low, high in ((0.0, 58.5), (0.0, 1.0), (0.75, 1.0), (3.2, 3.2), (0.0, 0.0007)):
        ticks = figures.nice_ticks(low, high)
        assert ticks[0] <= low and ticks[-1] >= high and len(ticks) >= 2
