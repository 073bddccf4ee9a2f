"""Plots of latency tables and predictor quality (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from predictor.latency import DeviceLUT


def plot_lut_heatmap(lut: DeviceLUT, path: Path) -> Path:
    """Layer x block heat map of one device's table (log colour scale, ms written in every cell)."""
    table = np.ma.masked_invalid(lut.table)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(lut.blocks), 1.2 + 0.33 * table.shape[0]))
    positive = table[table > 0]
    norm = matplotlib.colors.LogNorm(vmin=float(positive.min()), vmax=float(positive.max())) if positive.size else None
    image = ax.imshow(np.ma.masked_less_equal(table, 0), aspect="auto", cmap="viridis", norm=norm)
    for (row, col), value in np.ndenumerate(lut.table):
        if np.isfinite(value):
            marker = "" if lut.measured[row, col] else "*"
            ax.text(col, row, f"{value:.2g}{marker}", ha="center", va="center", fontsize=6, color="white")
    ax.set_xticks(range(len(lut.blocks)), lut.blocks, rotation=45, ha="right")
    ax.set_yticks(range(table.shape[0]))
    ax.set_ylabel("layer")
    ax.set_title(f"{lut.device} on {lut.space}: latency per block (ms; * predicted)\npredictor {lut.predictor}")
    fig.colorbar(image, ax=ax, label="ms")
    return save_figure(fig, path)


def plot_predicted_vs_measured(
    measured: Sequence[float], predictions: Mapping[str, Sequence[float]], path: Path, *, title: str
) -> Path:
    """Predicted against measured latency, one colour per predictor kind, with the +-10 % band."""
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    truth = np.asarray(measured, dtype=float)
    for kind, values in predictions.items():
        ax.scatter(truth, values, s=12, alpha=0.7, label=kind)
    if truth.size:
        line = np.array([truth.min() * 0.9, truth.max() * 1.1])
        ax.plot(line, line, color="black", linewidth=1)
        ax.fill_between(line, line * 0.9, line * 1.1, color="grey", alpha=0.2, label="+-10 %")
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG (creating its directory) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
