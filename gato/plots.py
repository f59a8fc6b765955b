"""Pictures of results: normalised scores per task, learning curves (matplotlib, Agg)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def score_bars(
    scores: Mapping[str, float], path: str | os.PathLike, title: str = "", threshold: float = 0.5
) -> Path:
    """Bar chart of expert-normalised scores per task, with the ``threshold`` line.

    Args:
        scores: task -> normalised score (0 = random, 1 = expert).
    """
    if not scores:
        raise ValueError("no scores to plot")
    plt = _pyplot()
    names = list(scores)
    values = [scores[n] for n in names]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(names) + 1.5), 3.2), dpi=110)
    colours = ["#2a9d8f" if v >= threshold else "#e76f51" for v in values]
    ax.bar(names, values, color=colours)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--", label="expert")
    ax.axhline(threshold, color="black", lw=0.8, ls=":", label=f"{threshold:.0%} of expert")
    ax.set_ylabel("expert-normalised score")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=45)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return _save(fig, plt, path)


def curves(
    rows: Sequence[Mapping[str, float]],
    keys: Sequence[str],
    path: str | os.PathLike,
    x: str = "step",
    title: str = "",
    log_y: bool = True,
    y_label: str = "",
    hlines: Mapping[str, float] | None = None,
) -> Path:
    """Line plot of ``keys`` against ``x`` from metrics rows (missing values skipped);
    ``hlines`` adds labelled horizontal reference lines (a baseline's final value, say)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    drawn = 0
    for key in keys:
        pts = [(r[x], r[key]) for r in rows if key in r and x in r]
        if pts:
            ax.plot(*zip(*pts, strict=True), label=key, lw=1.2)
            drawn += 1
    if not drawn:
        plt.close(fig)
        raise ValueError(f"none of {list(keys)} appear in the metrics")
    styles = itertools.cycle(("--", ":", "-."))
    for (label, y), style in zip((hlines or {}).items(), styles, strict=False):
        ax.axhline(y, color="grey", ls=style, lw=1.0, label=label)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, plt, path)


def _save(fig, plt, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path
