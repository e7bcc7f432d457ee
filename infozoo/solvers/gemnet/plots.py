"""Plots like GemNet's figures: bidder 1's allocation of each item and the price it pays over its
own values (v_11, v_12), for a fixed bid of the other bidders, before and after the transform."""

from __future__ import annotations

from pathlib import Path

import torch

from infozoo.solvers.gemnet.model import GemNetMechanism


def menu_plot(mech: GemNetMechanism, out: str | Path, others: torch.Tensor | None = None,
              resolution: int = 101) -> Path:
    """Write a PNG with one row per price state (as trained, transformed) and one column per
    item (allocation of bidder 1) plus one for its payment. ``others`` [n, m] fixes the other
    bids (default: the middle of the value box); bidder 1 varies its first two items."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = mech.setting
    if s.items < 2:
        raise ValueError("menu_plot needs at least two items (it plots over (v_11, v_12))")
    low, high = s.low(), s.high()
    base = (low + high) / 2 if others is None else others.to(torch.float64)
    xs = torch.linspace(float(low[0, 0]), float(high[0, 0]), resolution, dtype=torch.float64)
    ys = torch.linspace(float(low[0, 1]), float(high[0, 1]), resolution, dtype=torch.float64)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    bids = base.expand(gx.numel(), -1, -1).clone()
    bids[:, 0, 0], bids[:, 0, 1] = gx.reshape(-1), gy.reshape(-1)
    states = [("as trained", None)]
    if mech.delta is not None:
        states.append(("after transform", mech.delta))
    saved = mech.delta
    cols = s.items + 1
    fig, axes = plt.subplots(len(states), cols, figsize=(3.2 * cols, 3.0 * len(states)), squeeze=False)
    try:
        for r, (label, delta) in enumerate(states):
            mech.delta = delta
            o = mech(bids)
            panels = [(o.allocation[:, 0, j], f"alloc item {j + 1}") for j in range(s.items)]
            panels.append((o.payment[:, 0], "price"))
            for c, (z, title) in enumerate(panels):
                ax = axes[r][c]
                im = ax.imshow(z.reshape(resolution, resolution).numpy(), origin="lower", aspect="auto",
                               extent=(float(xs[0]), float(xs[-1]), float(ys[0]), float(ys[-1])),
                               vmin=0, vmax=1 if c < s.items else None, cmap="viridis")
                ax.set_title(f"{title} ({label})", fontsize=8)
                ax.set_xlabel("v_11")
                ax.set_ylabel("v_12")
                fig.colorbar(im, ax=ax)
    finally:
        mech.delta = saved
    fig.suptitle(f"{mech.name} on {s.name}: bidder 1, others bid {base[1:].tolist()}", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
