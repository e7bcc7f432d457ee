"""Plots rendered from stored records (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from infozoo.bench.runner import group
from infozoo.bench.store import Record


def figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> Path:
    """Save a figure atomically-enough (write then rename) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    tmp.replace(path)
    figure().close(fig)
    return path


def revenue_bars(records: list[Record], path: Path, title: str, metric: str = "revenue",
                 label: Callable[[str, list[Record]], str] | None = None) -> Path:
    """Grouped bars: one group per setting, one bar per method (mean over seeds, std as error);
    ``label(method, records)`` names a bar (default: the method)."""
    import numpy as np

    plt = figure()
    settings = list(dict.fromkeys(r.setting for r in records))
    methods = list(dict.fromkeys(r.method for r in records))
    g = group(records, "setting", "method")
    fig, axes = plt.subplots(1, len(settings), figsize=(3.2 * len(settings), 3.4), squeeze=False)
    for ax, s in zip(axes[0], settings):
        ms = [m for m in methods if (s, m) in g]
        vals = [[r.metrics[metric] for r in g[(s, m)]] for m in ms]
        ax.bar(range(len(ms)), [np.mean(v) for v in vals], yerr=[np.std(v) for v in vals], color="C0")
        names = [label(m, g[(s, m)]) if label else m for m in ms]
        ax.set_xticks(range(len(ms)), names, rotation=60, ha="right", fontsize=8)
        ax.set_title(s, fontsize=9)
        lo = min(np.mean(v) for v in vals)
        hi = max(np.mean(v) for v in vals)
        ax.set_ylim(max(0.0, lo - 0.15 * (hi - lo + 1e-9)), hi + 0.1 * (hi - lo + 1e-9))
    axes[0][0].set_ylabel(metric)
    fig.suptitle(title)
    return save(fig, path)
