"""The figures that the dashboard (``/ui``) and the main job's static report share, drawn as SVG strings.

Pure Python on plain data (a ``DeviceLUT``, stored predictor metrics, job dicts): no torch, no plotting
library, no service. Every chart states its scenario where it has one, writes a value in every cell
(zero included, never left white), and sizes itself to its longest label so that nothing spills out.
Cells and points carry ``data-*`` attributes with their exact values, for tests and tooltips.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from predictor.latency import DeviceLUT, Link, architecture_latency, split_latency
from spaces import Architecture

FONT = 11  # px, every label
CHAR_W = 0.62  # average glyph width of the sans-serif font per px of size, generous: labels must fit
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
# viridis at nine stops: a perceptual scale whose lowest colour is dark, so a zero cell is never white
VIRIDIS = ("#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725")
MISSING = "#d9d9d9"


def text_width(text: str, size: float = FONT) -> float:
    return len(text) * size * CHAR_W


def fmt(value: float | None, digits: int = 3) -> str:
    """A latency or metric with ``digits`` significant digits (no exponent above 1); 0 is '0', missing '–'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 10**digits:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def scenario_line(scenario: Mapping[str, Any]) -> str:
    """'head raspi4 → tail edgegpu · runtime torch 2.14.1 · 8 Mbit/s, 32 bits · loss 0.2 · T_th 30 ms'."""
    parts = []
    if scenario.get("head_device") or scenario.get("tail_device"):
        parts.append(f"head {scenario.get('head_device', '?')} → tail {scenario.get('tail_device', '?')}")
    if scenario.get("runtime"):
        parts.append(f"runtime {scenario['runtime']}")
    if scenario.get("bandwidth_mbps") is not None:
        parts.append(f"{scenario['bandwidth_mbps']:g} Mbit/s, {scenario.get('bits', 32)} bits")
    if scenario.get("loss") is not None:
        parts.append(f"loss {scenario['loss']:g}")
    if scenario.get("t_th") is not None:
        parts.append(f"T_th {scenario['t_th']:g} ms")
    return " · ".join(parts)


def job_scenario(job: Mapping[str, Any], runtimes: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The scenario of a search job from its config; ``runtimes`` maps a device to its runtime."""
    config = job.get("config", {})
    runtimes = runtimes or {}
    found = sorted({runtimes[d] for d in (config.get("head_device"), config.get("tail_device")) if d in runtimes})
    return {name: config.get(name) for name in ("head_device", "tail_device", "bandwidth_mbps", "bits", "loss",
                                                  "t_th")} | {"runtime": ", ".join(found) or None}


class Svg:
    """An SVG document built element by element; its size grows to hold what is drawn."""

    def __init__(self, width: float, height: float, *, label: str) -> None:
        self.width, self.height, self.label = width, height, label
        self.parts: list[str] = []

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(self, x: float, y: float, text: str, *, size: float = FONT, anchor: str = "start",
             fill: str = "#222", weight: str = "normal", rotate: bool = False, cls: str = "") -> None:
        transform = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
        klass = f' class="{cls}"' if cls else ""
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
                 f'font-weight="{weight}"{transform}{klass}>{escape(text)}</text>')
        extent = x + (text_width(text, size) if anchor == "start" else text_width(text, size) / 2)
        self.width = max(self.width, extent + 8)

    def line(self, x1: float, y1: float, x2: float, y2: float, *, stroke: str = "#888", dash: str = "",
             width: float = 1) -> None:
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
                 f'stroke-width="{width}"{dashed}/>')

    def render(self) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width:.0f}" height="{self.height:.0f}" '
                f'viewBox="0 0 {self.width:.0f} {self.height:.0f}" role="img" aria-label="{escape(self.label)}" '
                f'font-family="system-ui, sans-serif">{"".join(self.parts)}</svg>')


def _colour(t: float) -> str:
    """Viridis at ``t`` in [0, 1]."""
    t = min(max(t, 0.0), 1.0) * (len(VIRIDIS) - 1)
    i = min(int(t), len(VIRIDIS) - 2)
    a, b = VIRIDIS[i], VIRIDIS[i + 1]
    mix = [round(int(a[k:k + 2], 16) + (t - i) * (int(b[k:k + 2], 16) - int(a[k:k + 2], 16))) for k in (1, 3, 5)]
    return "#" + "".join(f"{c:02x}" for c in mix)


def _ink(fill: str) -> str:
    """Black or white text, whichever reads on ``fill``."""
    r, g, b = (int(fill[k:k + 2], 16) for k in (1, 3, 5))
    return "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#fff"


def _title(svg: Svg, lines: Sequence[str], x: float = 10) -> float:
    """Title (bold) and subtitle lines from the top; returns the y below them."""
    y = 18.0
    for i, line in enumerate(lines):
        if line:
            svg.text(x, y, line, size=FONT + 2 if i == 0 else FONT, weight="bold" if i == 0 else "normal")
            y += 17
    return y + 4


# -- latency table ----------------------------------------------------------------------------------


def heatmap_svg(lut: DeviceLUT, *, scenario: Mapping[str, Any] | None = None) -> str:
    """Layer x block heat map of a device's table: ms in every cell, log colour, predicted cells dashed and '*'."""
    rows, cols = lut.table.shape
    values = lut.table.tolist()
    positive = [v for row in values for v in row if v == v and v > 0]
    low, high = (min(positive), max(positive)) if positive else (1.0, 1.0)
    span = math.log(high / low) if high > low else 1.0
    labels = [fmt(v) + "*" for row in values for v in row if v == v]
    cell_w = max([56.0] + [text_width(b) + 10 for b in lut.blocks] + [text_width(t, FONT - 1) + 8 for t in labels])
    cell_h = 20.0
    svg = Svg(0, 0, label=f"latency table of {lut.device}")
    top = _title(svg, [f"{lut.device} on {lut.space}: latency per layer and block (ms)",
                       f"predictor {lut.predictor}; dashed and * = predicted, solid = measured; "
                       f"scale {lut.scale:.3g}, call {lut.call_ms:.3g} ms",
                       scenario_line(scenario or {})])
    left = 10 + text_width(f"layer {rows - 1}") + 8
    for c, block in enumerate(lut.blocks):
        svg.text(left + (c + 0.5) * cell_w, top + 10, block, anchor="middle")
    top += 18
    for r in range(rows):
        y = top + r * cell_h
        svg.text(left - 6, y + cell_h / 2 + 4, f"layer {r}", anchor="end")
        for c, block in enumerate(lut.blocks):
            value = values[r][c]
            x = left + c * cell_w
            if value != value:
                svg.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell_w:.1f}" height="{cell_h:.1f}" fill="{MISSING}" '
                        f'stroke="#fff"/>')
                svg.text(x + cell_w / 2, y + cell_h / 2 + 4, "–", anchor="middle", fill="#666")
                continue
            measured = bool(lut.measured[r, c])
            fill = _colour(math.log(value / low) / span) if value > 0 else VIRIDIS[0]
            dash = "" if measured else ' stroke-dasharray="3 2" stroke-width="2"'
            stroke = "#fff" if measured else "#d50000"
            label = fmt(value) + ("" if measured else "*")
            svg.add(f'<g class="cell" data-layer="{r}" data-block="{escape(block)}" data-value="{value!r}" '
                    f'data-measured="{str(measured).lower()}"><title>layer {r}, {escape(block)}: {value!r} ms '
                    f'({"measured" if measured else "predicted"})</title>'
                    f'<rect x="{x + 0.5:.1f}" y="{y + 0.5:.1f}" width="{cell_w - 1:.1f}" height="{cell_h - 1:.1f}" '
                    f'fill="{fill}" stroke="{stroke}"{dash}/>'
                    f'<text x="{x + cell_w / 2:.1f}" y="{y + cell_h / 2 + 4:.1f}" font-size="{FONT - 1}" '
                    f'text-anchor="middle" fill="{_ink(fill)}">{escape(label)}</text></g>')
    bottom = top + rows * cell_h + 14
    # colour bar: the ends are the table's smallest positive and largest entry
    bar_x, bar_w = left, cols * cell_w
    steps = 40
    for i in range(steps):
        svg.add(f'<rect x="{bar_x + i * bar_w / steps:.1f}" y="{bottom:.1f}" width="{bar_w / steps + 0.5:.1f}" '
                f'height="10" fill="{_colour(i / (steps - 1))}"/>')
    svg.text(bar_x, bottom + 24, f"{fmt(low)} ms", anchor="start")
    svg.text(bar_x + bar_w, bottom + 24, f"{fmt(high)} ms (log scale; 0 drawn darkest)", anchor="end")
    svg.width = max(svg.width, left + bar_w + 10)
    svg.height = bottom + 34
    return svg.render()


# -- axes -------------------------------------------------------------------------------------------


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values from at or below ``low`` to at or above ``high``."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if raw <= m * step)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


class Axes:
    """A linear x/y plot area inside ``svg`` with ticks, labels and a clip so marks stay inside."""

    def __init__(self, svg: Svg, x: float, y: float, w: float, h: float, xlim: tuple[float, float],
                 ylim: tuple[float, float], *, xlabel: str, ylabel: str, clip_id: str,
                 xticks: Sequence[float] | None = None) -> None:
        self.svg, self.x, self.y, self.w, self.h = svg, x, y, w, h
        self.xticks, self.yticks = list(xticks) if xticks is not None else nice_ticks(*xlim), nice_ticks(*ylim)
        self.xlim = xlim if xticks is not None else (self.xticks[0], self.xticks[-1])
        self.ylim = (self.yticks[0], self.yticks[-1])
        self.clip = clip_id
        svg.add(f'<clipPath id="{clip_id}"><rect x="{x}" y="{y}" width="{w}" height="{h}"/></clipPath>')
        svg.add(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="#fafafa" stroke="#999"/>')
        for t in self.xticks:
            px = self.px(t)
            svg.line(px, y, px, y + h, stroke="#e3e3e3")
            svg.text(px, y + h + 14, f"{t:g}", anchor="middle")
        for t in self.yticks:
            py = self.py(t)
            svg.line(x, py, x + w, py, stroke="#e3e3e3")
            svg.text(x - 5, py + 4, f"{t:g}", anchor="end")
        svg.text(x + w / 2, y + h + 30, xlabel, anchor="middle")
        svg.text(x - 8 - max(text_width(f"{t:g}") for t in self.yticks), y + h / 2, ylabel, anchor="middle",
                 rotate=True)

    def px(self, value: float) -> float:
        a, b = self.xlim
        return self.x + (value - a) / (b - a) * self.w

    def py(self, value: float) -> float:
        a, b = self.ylim
        return self.y + self.h - (value - a) / (b - a) * self.h

    def clipped(self, element: str) -> None:
        self.svg.add(f'<g clip-path="url(#{self.clip})">{element}</g>')


def _legend(svg: Svg, x: float, y: float, entries: Iterable[tuple[str, str]]) -> None:
    for i, (name, colour) in enumerate(entries):
        svg.add(f'<rect x="{x:.1f}" y="{y + i * 16 - 9:.1f}" width="10" height="10" fill="{colour}"/>')
        svg.text(x + 15, y + i * 16, name)


def _plot_frame(title: Sequence[str], *, ylabel: str, ylim: tuple[float, float]) -> tuple[Svg, float, float]:
    """A new figure with its title; returns it with the x and y of its plot area's top-left corner."""
    svg = Svg(0, 0, label=title[0])
    top = _title(svg, title)
    left = 24 + max(text_width(f"{t:g}") for t in nice_ticks(*ylim)) + 8
    return svg, left, top + 6


# -- predictor quality ------------------------------------------------------------------------------

QUALITY_PROTOCOLS = ("entry", "layer", "config", "model", "model-raw", "head", "arch-sum")


def quality_svg(predictors: Sequence[Mapping[str, Any]], *, device: str, space: str) -> str:
    """Held-out MAPE of every kind (rows) under every protocol (columns), from the stored metrics."""
    protocols = [p for p in QUALITY_PROTOCOLS
                 if any((row.get("metrics", {}).get("protocols", {}).get(p) or {}).get("n") for row in predictors)]
    kinds = [row["kind"] for row in predictors]
    cells = {}  # (row, protocol) -> (scores, first line, second line) of every cell with held-out data
    for r, row in enumerate(predictors):
        for protocol in protocols:
            scores = row.get("metrics", {}).get("protocols", {}).get(protocol) or {}
            if scores.get("n") and scores.get("mape") is not None:
                cells[r, protocol] = (scores, f"{fmt(scores['mape'])} %",
                                      f"±10 %: {fmt(scores.get('within_10'))} · n {scores['n']}")
    cell_w = max([96.0] + [text_width(p) + 12 for p in protocols]
                 + [max(text_width(a), text_width(b, FONT - 2)) + 12 for _, a, b in cells.values()])
    cell_h = 34.0
    svg = Svg(0, 0, label=f"predictor quality of {device}")
    top = _title(svg, [f"{device} on {space}: predicted against measured, held out",
                       "MAPE % (colour: green ≤ 5 %, red ≥ 50 %) and share within ±10 %, per kind and protocol"])
    left = 10 + max([text_width(k) for k in kinds] + [40]) + 10
    for c, protocol in enumerate(protocols):
        svg.text(left + (c + 0.5) * cell_w, top + 10, protocol, anchor="middle")
    top += 18
    for r, row in enumerate(predictors):
        y = top + r * cell_h
        svg.text(left - 6, y + cell_h / 2 + 4, f"{row['kind']}", anchor="end")
        for c, protocol in enumerate(protocols):
            x = left + c * cell_w
            if (r, protocol) not in cells:
                svg.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell_w:.1f}" height="{cell_h:.1f}" fill="{MISSING}" '
                        f'stroke="#fff"/>')
                svg.text(x + cell_w / 2, y + cell_h / 2 + 4, "–", anchor="middle", fill="#666")
                continue
            scores, first, second = cells[r, protocol]
            mape = scores["mape"]
            # log scale from 5 % (green) to 50 % (red): the range that tells predictors apart
            t = min(max(math.log10(max(mape, 1e-9) / 5), 0.0), 1.0)
            fill = "#" + "".join(f"{round(a + t * (b - a)):02x}" for a, b in ((0x4c, 0xe0), (0xaf, 0x55), (0x50, 0x4a)))
            svg.add(f'<g class="quality" data-kind="{escape(row["kind"])}" data-protocol="{protocol}" '
                    f'data-mape="{mape!r}"><title>{escape(row["kind"])} / {protocol}: MAPE {mape:.4g} %, '
                    f'within ±10 % {fmt(scores.get("within_10"))}, Spearman {fmt(scores.get("spearman"))}, '
                    f'n {scores["n"]} of {scores.get("total")}</title><rect x="{x + 0.5:.1f}" y="{y + 0.5:.1f}" '
                    f'width="{cell_w - 1:.1f}" height="{cell_h - 1:.1f}" fill="{fill}"/>'
                    f'<text x="{x + cell_w / 2:.1f}" y="{y + 14:.1f}" font-size="{FONT}" text-anchor="middle" '
                    f'fill="{_ink(fill)}">{escape(first)}</text>'
                    f'<text x="{x + cell_w / 2:.1f}" y="{y + 27:.1f}" font-size="{FONT - 2}" text-anchor="middle" '
                    f'fill="{_ink(fill)}">{escape(second)}</text></g>')
    svg.width = max(svg.width, left + len(protocols) * cell_w + 10)
    svg.height = top + len(predictors) * cell_h + 10
    return svg.render()


# -- search jobs ------------------------------------------------------------------------------------


def convergence_svg(job: Mapping[str, Any], *, scenario: Mapping[str, Any] | None = None) -> str:
    """Distribution convergence (mean of theta's row maxima) per search epoch, with the mean objective."""
    records = [r for r in job.get("history", []) if r.get("stage") == "search" and r.get("convergence") is not None]
    epochs = [r["epoch"] for r in records] or [0, 1]
    title = [f"{job['method']} {job['uid'][:8]}: convergence of the distribution", scenario_line(scenario or {})]
    svg, left, top = _plot_frame(title, ylabel="convergence", ylim=(0.0, 1.0))
    ax = Axes(svg, left, top, 420, 200, (min(epochs), max(epochs)), (0.0, 1.0), xlabel="search epoch",
              ylabel="convergence (mean max probability)", clip_id=f"cv{job['uid'][:8]}")
    points = " ".join(f"{ax.px(r['epoch']):.1f},{ax.py(r['convergence']):.1f}" for r in records)
    ax.clipped(f'<polyline points="{points}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
    losses = [r["loss"] for r in records if r.get("loss") is not None]
    if losses:
        # the objective on its own scale, mapped into [0, 1] of the axis; its range is stated in the legend
        lo, hi = min(losses), max(losses)
        norm = [(r["epoch"], (r["loss"] - lo) / (hi - lo) if hi > lo else 0.5) for r in records
                if r.get("loss") is not None]
        line = " ".join(f"{ax.px(e):.1f},{ax.py(v):.1f}" for e, v in norm)
        ax.clipped(f'<polyline points="{line}" fill="none" stroke="{PALETTE[1]}" stroke-width="1.5" '
                   f'stroke-dasharray="4 2"/>')
    for r in records:
        ax.clipped(f'<circle class="epoch" cx="{ax.px(r["epoch"]):.1f}" cy="{ax.py(r["convergence"]):.1f}" r="3" '
                   f'fill="{PALETTE[0]}" data-epoch="{r["epoch"]}" data-convergence="{r["convergence"]!r}">'
                   f'<title>epoch {r["epoch"]}: convergence {r["convergence"]:.4g}</title></circle>')
    entries = [("convergence", PALETTE[0])]
    if losses:
        entries.append((f"objective J, {min(losses):.3g} (bottom) to {max(losses):.3g} (top)", PALETTE[1]))
    _legend(svg, left, top + 200 + 48, entries)
    svg.width = max(svg.width, left + 430)
    svg.height = top + 200 + 48 + 16 * len(entries)
    return svg.render()


def completed(jobs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [j for j in jobs if j.get("status") == "completed" and (j.get("result") or {}).get("latency")]


def accuracy_latency_svg(jobs: Sequence[Mapping[str, Any]]) -> str:
    """Accuracy at the link's loss rate against total latency, one colour per method, every T_th as a line."""
    done = completed(jobs)
    latencies = [j["result"]["latency"]["total_ms"] for j in done]
    thresholds = sorted({float(j["config"]["t_th"]) for j in done if j["config"].get("t_th") is not None})
    accuracies = [j["result"]["accuracy_at_loss"] for j in done]
    xlim = (0.0, max(latencies + thresholds + [1.0]) * 1.1)
    ylim = (min(accuracies + [1.0]) * 0.9 if accuracies else 0.0, 1.0)
    ylim = (min(ylim[0], 0.9), 1.0)
    svg, left, top = _plot_frame(["search results: accuracy against latency",
                                  "each point a searched architecture; dashed: T_th"], ylabel="accuracy", ylim=ylim)
    ax = Axes(svg, left, top, 440, 240, xlim, ylim, xlabel="latency (ms): head + link + tail",
              ylabel="test accuracy at the link's loss rate", clip_id="acclat")
    for i, t_th in enumerate(t for t in thresholds if ax.xlim[0] <= t <= ax.xlim[1]):
        ax.clipped(f'<line x1="{ax.px(t_th):.1f}" y1="{top}" x2="{ax.px(t_th):.1f}" y2="{top + 240}" stroke="#666" '
                   f'stroke-dasharray="5 3"/>')
        label = f"T_th {t_th:g} ms"
        # the label goes on the side of the line with room for it, inside the axes
        right = ax.px(t_th) + 4 + text_width(label) < left + 440
        svg.text(ax.px(t_th) + (4 if right else -4), top + 14 + 14 * i, label, anchor="start" if right else "end",
                 fill="#444")
    methods = sorted({j["method"] for j in done})
    for job in done:
        colour = PALETTE[methods.index(job["method"]) % len(PALETTE)]
        total, accuracy = job["result"]["latency"]["total_ms"], job["result"]["accuracy_at_loss"]
        ax.clipped(f'<circle class="job" cx="{ax.px(total):.1f}" cy="{ax.py(accuracy):.1f}" r="5" fill="{colour}" '
                   f'data-uid="{escape(job["uid"])}" data-latency="{total!r}" data-accuracy="{accuracy!r}">'
                   f'<title>{escape(job["method"])} {escape(job["uid"][:8])}: {total:.4g} ms, accuracy '
                   f'{accuracy:.4g}</title></circle>')
    _legend(svg, left, top + 240 + 48, [(m, PALETTE[i % len(PALETTE)]) for i, m in enumerate(methods)])
    svg.width = max(svg.width, left + 450)
    svg.height = top + 240 + 48 + 16 * max(len(methods), 1)
    return svg.render()


def answer_layers(job: Mapping[str, Any], head: DeviceLUT, tail: DeviceLUT) -> list[dict[str, Any]]:
    """Per layer of a job's answer: block, device, latency (ms) and the payload (bytes) of a split after it."""
    config, result = job["config"], job["result"]
    arch = Architecture.parse(result["architecture"], job["space"])
    link = Link(config["bandwidth_mbps"], config.get("bits", 32), config.get("codec"))
    chain = split_latency(arch, head, tail, link)
    split = arch.split
    return [
        {"layer": i, "block": block, "device": head.device if i < split else tail.device,
         "latency_ms": ms, "payload_bytes": float(link.payload_bytes(arch.payload(i + 1))),
         "split_after": i + 1 == split}
        for i, (block, ms) in enumerate(zip(arch.blocks, chain.per_layer_ms, strict=True))
    ]


def layers_svg(job: Mapping[str, Any], layers: Sequence[Mapping[str, Any]], *,
               scenario: Mapping[str, Any] | None = None) -> str:
    """The answer's latency per layer (bars, by device) above the payload a split after each layer would send."""
    result = job["result"]
    n = len(layers)
    bar_w = 26.0
    width = n * bar_w
    split = result.get("split")
    title = [f"{job['method']} {job['uid'][:8]}: the answer per layer; split point {split} (the head runs "
             f"layers 0 to {(split or 0) - 1})",
             scenario_line(scenario or {}),
             f"total {fmt(result['latency']['total_ms'], 4)} ms = head {fmt(result['latency']['head_ms'], 4)} + "
             f"link {fmt(result['latency']['comm_ms'], 4)} + tail {fmt(result['latency']['tail_ms'], 4)} ms; "
             f"payload {result.get('payload_bytes')} bytes (bars: per layer, from the current tables)"]
    ms_max = max([row["latency_ms"] for row in layers] + [1e-9])
    kb_max = max([row["payload_bytes"] / 1024 for row in layers] + [1e-9])
    svg, left, top = _plot_frame(title, ylabel="ms", ylim=(0.0, ms_max))
    left = max(left, 24 + max(text_width(f"{t:g}") for t in nice_ticks(0.0, kb_max)) + 8)
    devices = list(dict.fromkeys(row["device"] for row in layers))
    panels = (("latency (ms)", "latency_ms", 1.0, ms_max, "ms"),
              ("payload if split after it (KiB)", "payload_bytes", 1024.0, kb_max, "KiB"))
    y = top
    for name, key, unit, vmax, suffix in panels:
        # bars centred on their layer index; the split line between layers split - 1 and split
        ax = Axes(svg, left, y, width, 150, (-0.5, n - 0.5), (0.0, vmax),
                  xlabel="layer" if key == "payload_bytes" else "", ylabel=name, clip_id=f"{key}{job['uid'][:8]}",
                  xticks=range(0, n, 5))
        for i, row in enumerate(layers):
            value = row[key] / unit
            colour = PALETTE[devices.index(row["device"]) % len(PALETTE)] if key == "latency_ms" else (
                PALETTE[3] if row["split_after"] else "#9aa5b1")
            height = max(ax.py(0) - ax.py(value), 1.0)  # a zero bar still shows as a line
            x0, x1 = ax.px(i - 0.5), ax.px(i + 0.5)
            ax.clipped(f'<rect class="bar" x="{x0 + 2:.1f}" y="{ax.py(0) - height:.1f}" '
                       f'width="{x1 - x0 - 4:.1f}" height="{height:.1f}" fill="{colour}" data-layer="{row["layer"]}" '
                       f'data-{key.replace("_", "-")}="{row[key]!r}"><title>layer {row["layer"]} {escape(row["block"])}'
                       f' on {escape(row["device"])}: {value:.4g} {suffix}</title></rect>')
        split_x = ax.px((split or 0) - 0.5)
        ax.clipped(f'<line x1="{split_x:.1f}" y1="{y}" x2="{split_x:.1f}" y2="{y + 150}" stroke="{PALETTE[3]}" '
                   f'stroke-width="2"/>')
        y += 150 + 44
    _legend(svg, left, y, [(f"{d} ({'head' if i == 0 else 'tail'})", PALETTE[i]) for i, d in enumerate(devices)]
            + [("split point (red line; red payload bar: what is sent)", PALETTE[3])])
    svg.width = max(svg.width, left + width + 10)
    svg.height = y + 16 * (len(devices) + 1)
    return svg.render()


# -- predicted against measured whole architectures ---------------------------------------------------


def runtime(name: str, environment: Mapping[str, Any], status: str) -> str:
    """What ran a profiling run's measurements (``name``, its ``runs.runtime``), with its version, or where an
    imported table came from: 'torch 2.14.1 (cpu)', 'onnxruntime 1.23.2', 'tflite (imported from HW-NAS-Bench)'."""
    if status == "imported":
        return f"{name} (imported from {environment.get('source', 'unknown')})"
    if name == "torch":
        version = environment.get("torch")
        return f"torch {version} ({environment.get('torch_device') or 'cpu'})" if version else "torch"
    version = environment.get("runtime_version")
    return f"{name} {version}" if version else name


def model_predictions(models: Sequence[tuple[str, float]], luts: Mapping[str, DeviceLUT],
                      space: str) -> dict[str, Any]:
    """Measured latency of whole architectures and heads (``arch`` or ``arch@k``, ms) and each table's prediction."""
    archs = [Architecture.parse(text, space) for text, _ in models]
    link = Link(1.0)  # a head's compute does not depend on the link
    predicted = {
        kind: [split_latency(a, lut, lut, link).segments[0].compute_ms if a.splits else architecture_latency(a, lut)
               for a in archs]
        for kind, lut in luts.items()
    }
    return {"architectures": [text for text, _ in models], "measured": [ms for _, ms in models],
            "predicted": predicted}


def predicted_measured_svg(points: Mapping[str, Any], *, title: str) -> str:
    """Predicted against measured latency (``model_predictions``), one colour per kind, with y = x and ±10 %."""
    measured, predicted = points["measured"], points["predicted"]
    values = list(measured) + [v for series in predicted.values() for v in series]
    high = max(values + [1e-3]) * 1.05
    svg, left, top = _plot_frame([title, "measured whole architectures and heads; grey band: within ±10 %"],
                                 ylabel="ms", ylim=(0.0, high))
    ax = Axes(svg, left, top, 320, 320, (0.0, high), (0.0, high), xlabel="measured latency (ms)",
              ylabel="predicted latency (ms)", clip_id="pm" + re.sub(r"\W", "", title)[:32])
    a, b = ax.xlim[1], ax.ylim[1]
    end = max(a, b)
    ax.clipped(f'<polygon points="{ax.px(0):.1f},{ax.py(0):.1f} {ax.px(end):.1f},{ax.py(end * 0.9):.1f} '
               f'{ax.px(end):.1f},{ax.py(end * 1.1):.1f}" fill="#bdbdbd" fill-opacity="0.35"/>')
    ax.clipped(f'<line x1="{ax.px(0):.1f}" y1="{ax.py(0):.1f}" x2="{ax.px(end):.1f}" y2="{ax.py(end):.1f}" '
               f'stroke="#333"/>')
    kinds = list(predicted)
    for k, kind in enumerate(kinds):
        colour = PALETTE[k % len(PALETTE)]
        for arch, truth, guess in zip(points.get("architectures", [""] * len(measured)), measured, predicted[kind],
                                      strict=True):
            ax.clipped(f'<circle class="point" cx="{ax.px(truth):.1f}" cy="{ax.py(guess):.1f}" r="3" fill="{colour}" '
                       f'fill-opacity="0.75" data-kind="{escape(kind)}" data-measured="{truth!r}" '
                       f'data-predicted="{guess!r}"><title>{escape(kind)}: measured {truth:.4g} ms, predicted '
                       f'{guess:.4g} ms ({escape(arch)})</title></circle>')
    _legend(svg, left, top + 320 + 48, [(kind, PALETTE[k % len(PALETTE)]) for k, kind in enumerate(kinds)])
    svg.width = max(svg.width, left + 330)
    svg.height = top + 320 + 48 + 16 * max(len(kinds), 1)
    return svg.render()


# -- runtimes of one device -------------------------------------------------------------------------


def runtimes_svg(comparison: Mapping[str, Any]) -> str:
    """The runtimes of one device (``RuntimeComparison.to_dict()``): per runtime, a bar of the sum-of-blocks bias
    against whole models (median, whiskers at the quartiles: the fusion effect), labelled with the median op
    latency ratio to the reference runtime and each kind's held-out model-level MAPE."""
    runtimes = list(comparison["runtimes"])
    bias, ratio = comparison["sum_bias_pct"], comparison["op_ratio"]
    values = [v for r in runtimes for v in (bias[r]["q1"], bias[r]["q3"], bias[r]["median"]) if v is not None]
    low, high = min([0.0, *values]), max([0.0, *values])
    ticks = nice_ticks(low, high)
    labels = {}
    for r in runtimes:
        scores = comparison.get("model_scores", {}).get(r, {})
        accuracy = ", ".join(f"{kind} {fmt(s.get('mape'))} %" for kind, s in scores.items() if s.get("n"))
        labels[r] = (f"ops ×{fmt(ratio[r]['median'])} of {comparison['reference']} (n {ratio[r]['n']})"
                     + (f" · model MAPE {accuracy}" if accuracy else ""))
    svg = Svg(0, 0, label=f"runtimes of {comparison['device']}")
    top = _title(svg, [f"{comparison['device']} on {comparison['space']}: runtimes compared",
                       "summed measured blocks against whole models measured (median, quartiles), in %"])
    left = 10 + max(text_width(r) for r in runtimes) + 10
    width, row_h = 320.0, 40.0
    a, b = ticks[0], ticks[-1]

    def px(value: float) -> float:
        return left + (value - a) / (b - a) * width

    for t in ticks:
        svg.line(px(t), top, px(t), top + row_h * len(runtimes), stroke="#e3e3e3")
        svg.text(px(t), top + row_h * len(runtimes) + 14, f"{t:g}", anchor="middle")
    svg.line(px(0), top, px(0), top + row_h * len(runtimes), stroke="#444")
    for i, (r, colour) in enumerate(zip(runtimes, PALETTE * len(runtimes), strict=False)):
        y = top + i * row_h
        svg.text(left - 6, y + 16, r, anchor="end")
        spread = bias[r]
        if spread["median"] is None:
            svg.text(px(0) + 4, y + 16, "no whole model with every op measured", fill="#666")
        else:
            x0, x1 = sorted((px(0), px(spread["median"])))
            svg.add(f'<g class="runtime-bias" data-runtime="{escape(r)}" data-median="{spread["median"]!r}">'
                    f'<title>{escape(r)}: summed blocks {spread["median"]:+.3g} % against whole models '
                    f'(quartiles {fmt(spread["q1"])} to {fmt(spread["q3"])}, n {spread["n"]})</title>'
                    f'<rect x="{x0:.1f}" y="{y + 6:.1f}" width="{max(x1 - x0, 1):.1f}" height="14" '
                    f'fill="{colour}"/></g>')
            svg.line(px(spread["q1"]), y + 13, px(spread["q3"]), y + 13, stroke="#222")
            svg.text(max(x1, px(spread["q3"])) + 4, y + 17, f"{spread['median']:+.3g} % (n {spread['n']})")
        svg.text(left, y + 33, labels[r], size=FONT - 1, fill="#444")
    svg.text(left + width / 2, top + row_h * len(runtimes) + 30, "sum of blocks − whole model, % of whole model",
             anchor="middle")
    svg.width = max(svg.width, left + width + 10)
    svg.height = top + row_h * len(runtimes) + 40
    return svg.render()
