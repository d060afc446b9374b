"""PNG plots saved next to a published model (matplotlib, headless Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # headless: before pyplot is imported

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator


def plot_pass_curve(
    hours: Sequence[float],
    passed: Sequence[float],
    grid_hours: Sequence[float],
    grid_probability: Sequence[float],
    boundary: float | None,
    path: Path,
) -> None:
    """P(pass) against hours, with the 0.5 line, the boundary and the training points."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(grid_hours, grid_probability, label="P(pass)")
    ax.axhline(0.5, color="gray", linestyle="--", linewidth=1, label="0.5")
    if boundary is not None:
        ax.axvline(boundary, color="tab:red", linestyle=":", label=f"boundary {boundary:.2f} h")
    ax.scatter(hours, passed, color="black", zorder=3, label="training points")
    ax.set(xlabel="hours studied", ylabel="probability of passing", ylim=(-0.05, 1.05))
    ax.legend(loc="center right")
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_fit_line(
    hours: Sequence[float],
    points: Sequence[float],
    grid_hours: Sequence[float],
    grid_points: Sequence[float],
    probe: tuple[float, float],
    path: Path,
) -> None:
    """The training points, the fitted line through them and its prediction at ``probe``."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(grid_hours, grid_points, label="fitted line")
    ax.scatter(hours, points, color="black", zorder=3, label="training points")
    probe_hours, probe_points = probe
    ax.scatter(
        [probe_hours],
        [probe_points],
        color="tab:red",
        marker="x",
        zorder=4,
        label=f"{probe_hours:g} h -> {probe_points:.2f} points",
    )
    ax.set(xlabel="hours studied", ylabel="points")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_curves(
    history: dict[str, list[float]], keys: Sequence[str], ylabel: str, path: Path
) -> None:
    """One line per ``history[key]`` against the epoch number."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for key in keys:
        values = history.get(key, [])
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=key)
    ax.set(xlabel="epoch", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_confusion_matrix(matrix: np.ndarray, labels: Sequence[str], path: Path) -> None:
    """Counts of (true label, predicted label) with the count written in every cell."""
    fig, ax = plt.subplots(figsize=(6, 5.5), dpi=100)
    image = ax.imshow(np.log1p(matrix), cmap="Blues")
    ticks = range(len(labels))
    ax.set(xticks=ticks, yticks=ticks, xticklabels=labels, yticklabels=labels)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (test set)")
    threshold = image.get_array().max() / 2
    for (row, col), count in np.ndenumerate(matrix):
        color = "white" if np.log1p(count) > threshold else "black"
        ax.text(col, row, str(int(count)), ha="center", va="center", fontsize=7, color=color)
    _save(fig, path)


def plot_reliability(curves: dict[str, list[dict[str, float]]], path: Path) -> None:
    """Reliability diagram: accuracy against mean confidence per confidence bin (one line
    per ``curves`` entry, bins as ``training.digit.calibrate.reliability_bins`` gives them),
    the diagonal, and the share of images per bin underneath."""
    fig, (ax, counts) = plt.subplots(
        2, 1, figsize=(6, 6), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="perfect")
    for offset, (label, bins) in enumerate(curves.items()):
        used = [b for b in bins if b["count"]]
        ax.plot(
            [b["confidence"] for b in used],
            [b["accuracy"] for b in used],
            marker="o",
            markersize=4,
            label=label,
        )
        total = sum(b["count"] for b in bins) or 1
        width = (bins[0]["high"] - bins[0]["low"]) / (len(curves) + 1)
        counts.bar(
            [b["low"] + width * (offset + 0.5) for b in bins],
            [b["count"] / total for b in bins],
            width=width,
            align="edge",
            label=label,
        )
    ax.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.02), title="reliability (test set)")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    counts.set(xlabel="confidence (top probability)", ylabel="share", yscale="log")
    counts.grid(alpha=0.3)
    _save(fig, path)


def plot_canvas_grid(rows: Sequence[tuple[str, np.ndarray]], path: Path) -> None:
    """One row of 28x28 canvases (pixels in [0, 1]) per ``(name, canvases)`` entry."""
    columns = max(len(canvases) for _, canvases in rows)
    fig, axes = plt.subplots(
        len(rows), columns, figsize=(columns * 0.8, len(rows) * 0.85), dpi=100, squeeze=False
    )
    for (name, canvases), line in zip(rows, axes, strict=True):
        for index, ax in enumerate(line):
            if index < len(canvases):
                ax.imshow(canvases[index], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        line[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
