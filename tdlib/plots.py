"""The book's figures, each a function of plain data returning a matplotlib ``Figure``.

Chapters call these so that a figure looks the same wherever it appears, and ``save`` writes it next
to the stage outputs it came from. What this leaves out: interactive plots.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np


def training_curves(curves: Mapping[str, Sequence[tuple[int, float]]], title: str = "Training loss"):
    """One line per run: (step, loss) pairs."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, points in curves.items():
        if points:
            steps, losses = zip(*points)
            ax.plot(steps, losses, marker="o", markersize=3, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def score_histograms(scores: Mapping[str, Sequence[float]], title: str = "Teacher scores"):
    """Histogram of each teacher's scores, side by side (scales differ between teachers)."""
    fig, axes = plt.subplots(1, len(scores), figsize=(4 * len(scores), 3), squeeze=False)
    for ax, (name, values) in zip(axes[0], scores.items()):
        ax.hist(np.asarray(values, dtype=float), bins=30, color="tab:blue", alpha=0.8)
        ax.set_title(name)
        ax.set_xlabel("score")
    axes[0][0].set_ylabel("pairs")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def agreement(x: Sequence[float], y: Sequence[float], xlabel: str, ylabel: str, title: str = ""):
    """Scatter of two teachers' scores for the same pairs, with Spearman's rho in the title."""
    from scipy.stats import spearmanr

    rho = spearmanr(x, y).statistic if len(x) > 1 else float("nan")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(x, y, s=6, alpha=0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (Spearman rho = {rho:.2f})".strip())
    fig.tight_layout()
    return fig


def metric_bars(results: Mapping[str, Mapping[str, float]], measures: Sequence[str], title: str = ""):
    """Grouped bars: one group per measure, one bar per system."""
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(measures)), 3.5))
    width = 0.8 / max(1, len(results))
    xs = np.arange(len(measures))
    for i, (name, values) in enumerate(results.items()):
        ax.bar(xs + i * width, [values.get(m, 0.0) for m in measures], width, label=name)
    ax.set_xticks(xs + width * (len(results) - 1) / 2, measures)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def per_topic(delta: Mapping[str, float], measure: str, title: str = ""):
    """Per-topic difference between two systems, sorted: where the gain comes from."""
    items = sorted(delta.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(7, 3))
    colors = ["tab:green" if v > 0 else "tab:red" for _, v in items]
    ax.bar(range(len(items)), [v for _, v in items], color=colors)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("topic (sorted by difference)")
    ax.set_ylabel(f"difference in {measure}")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def save(fig, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=120, bbox_inches="tight")
    return p
