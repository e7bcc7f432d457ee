"""The data-market benchmark table: one row per setting, the theory optimum against the learned
data-market net and the posted-price baseline.

Columns: the theory optimum (closed form, menu LP or virtual-value quadrature), the revenue of the
theory mechanism, of the posted price for full information and of the data-market net under the
same evaluation (``infozoo.envs.data_market.metrics.evaluate`` with the profile's ``EVAL``
budget), the net's gap to the theory mechanism in %, its obedience and IR violations, its mean
regret (with the search budget in the notes) and its training time. Plots: the learned menu
against the theory menu (one buyer: experiment bought and price vs type) and revenue vs the
externality alpha for two U[0, 1] buyers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from infozoo.bench.runner import Table, TableSpec, Task, group, mean_std, train_solver
from infozoo.bench.store import Record

NAME = "data-market"
NET = "data-market-net"
METHODS = ("theory", "posted-price", NET)
SETTINGS = {
    "quick": ["dm-1buyer-uniform", "dm-1buyer-two-types", "dm-2buyers-uniform-a0.5", "dm-2buyers-uniform-a2",
              "dm-2buyers-uniform-a0.5-bic"],
    "full": ["dm-1buyer-uniform", "dm-1buyer-two-types", "dm-1buyer-beta-mixture", "dm-1buyer-dirichlet3",
             "dm-2buyers-uniform-a0.5", "dm-2buyers-uniform-a2", "dm-2buyers-uniform-a0.5-bic",
             "dm-2buyers-exponential-a0.5", "dm-2buyers-asym-uniform-a0.5", "dm-2buyers-mixture-a0.5",
             "dm-2buyers-uniform-a0.25", "dm-2buyers-uniform-a1"],
}
# the revenue-vs-alpha plot: baselines on every alpha (cheap), the net where the profile trains it
ALPHA_SETTINGS = ["dm-2buyers-uniform-a0", "dm-2buyers-uniform-a0.25", "dm-2buyers-uniform-a0.5",
                  "dm-2buyers-uniform-a1", "dm-2buyers-uniform-a2"]
EVAL = {
    "quick": {"n": 100_000, "regret_profiles": 1000, "regret_restarts": 10, "regret_steps": 50, "regret_grid": 101},
    "full": {"n": 200_000, "regret_profiles": 4000, "regret_restarts": 20, "regret_steps": 100, "regret_grid": 201},
}


def tasks(profile: str) -> list[Task]:
    out = []
    settings = list(dict.fromkeys(SETTINGS[profile] + ALPHA_SETTINGS))
    for s in settings:
        for m in METHODS:
            if m == NET and s not in SETTINGS[profile]:
                continue
            out.append(Task(NAME, s, m, 0, profile, dict(EVAL[profile])))
    return out


def run(task: Task) -> dict[str, Any]:
    """Train (the net) or build (baselines) one method on one setting, then evaluate it."""
    from infozoo.envs.data_market.metrics import evaluate
    from infozoo.envs.data_market.theory import theory_revenue
    from infozoo.registry import load_setting, make_mechanism

    setting = load_setting(task.setting)
    train_time = 0.0
    extra: dict[str, Any] = {}
    if task.method == NET:
        mechanism, train_time, extra = train_solver(task, setting)
    else:
        t0 = time.perf_counter()
        mechanism = make_mechanism(task.method, setting)
        train_time = time.perf_counter() - t0
        if hasattr(mechanism, "describe"):
            extra["menu"] = mechanism.describe()
    metrics = evaluate(setting, mechanism, seed=1000 + task.seed, **task.params)
    return {**metrics, **extra, "train_time": train_time, "theory_optimum": theory_revenue(setting)}


def _cell(recs: list[Record] | None, key: str, digits: int = 4) -> str:
    if not recs:
        return "—"
    return mean_std((r.metrics.get(key) for r in recs), digits)


def render(records: list[Record]) -> list[Table]:
    g = group(records, "setting", "method")
    order = [s for p in ("full", "quick") for s in SETTINGS[p] + ALPHA_SETTINGS]
    settings = [s for s in dict.fromkeys(order) if any(r.setting == s for r in records)]
    settings += [s for s in dict.fromkeys(r.setting for r in records) if s not in settings]
    main = Table("Data markets: revenue against the theory optimum",
                 ["setting", "theory optimum", "theory mech.", "posted price", NET, "gap %", "obedience viol.",
                  "IR viol.", "regret mean", "train time [s]"], [])
    for s in settings:
        th, pp, net = g.get((s, "theory")), g.get((s, "posted-price")), g.get((s, NET))
        any_rec = (th or pp or net)[0]
        gap = "—"
        if th and net:
            ref = th[0].metrics["revenue"]
            gap = f"{100 * (1 - sum(r.metrics['revenue'] for r in net) / len(net) / ref):.2f}"
        main.rows.append([s, f"{any_rec.metrics['theory_optimum']:.4f}", _cell(th, "revenue"), _cell(pp, "revenue"),
                          _cell(net, "revenue"), gap, _cell(net, "obedience_violation", 5),
                          _cell(net, "ir_violation", 5), _cell(net, "regret_mean", 5), _cell(net, "train_time", 1)])
    budgets = sorted({r.metrics.get("regret_budget", "") for r in records if r.method == NET})
    main.notes = [f"test profiles per cell: {sorted({r.metrics['n'] for r in records})}; discrete priors are "
                  "enumerated exactly; gap % = 1 - net / theory mechanism on the same test profiles (negative: the "
                  "net earns more than the optimum, which only its remaining regret allows)",
                  "regret budgets of the net: " + "; ".join(budgets),
                  "theory optimum: closed form (uniform prior, two U[0,1] buyers), menu LP (other one-buyer "
                  "priors: its value on the type grid, optimistic for k > 2 states where the grid is a "
                  "60-type sample), virtual-value quadrature (other value distributions)"]
    return [main]


def plots(records: list[Record], out: Path) -> list[Path]:
    paths = []
    menu_path = _menu_plot(records, out / "data_market_menus.png")
    if menu_path is not None:
        paths.append(menu_path)
    alpha_path = _alpha_plot(records, out / "data_market_revenue_vs_alpha.png")
    if alpha_path is not None:
        paths.append(alpha_path)
    return paths


def _menu_plot(records: list[Record], path: Path) -> Path | None:
    """Learned vs theory menu for one-buyer binary settings: price paid and informativeness
    (pi1 = P(s1|w1), pi2 = P(s2|w2) of the item bought) against theta."""
    import torch

    from infozoo.bench.plots import figure, save
    from infozoo.envs.data_market.theory import Menu
    from infozoo.registry import load_setting

    recs = [r for r in records if r.method in ("theory", NET) and "menu" in r.metrics
            and load_setting(r.setting).buyers == 1 and load_setting(r.setting).states == 2]
    settings = list(dict.fromkeys(r.setting for r in recs))
    if not settings:
        return None
    plt = figure()
    fig, axes = plt.subplots(2, len(settings), figsize=(4.2 * len(settings), 6), squeeze=False)
    theta = torch.linspace(0, 1, 401, dtype=torch.float64)
    types = torch.stack([theta, 1 - theta], -1)
    for col, s in enumerate(settings):
        for r, style in ((x, "-" if x.method == NET else "--") for x in recs if x.setting == s):
            items = r.metrics["menu"]
            if not items:
                continue
            menu = Menu(torch.tensor([it["experiment"] for it in items], dtype=torch.float64),
                        torch.tensor([it["price"] for it in items], dtype=torch.float64), torch.eye(2))
            c = menu.choice(types)
            price = torch.where(c >= 0, menu.prices[c.clamp_min(0)], torch.zeros(()))
            e = menu.experiments[c.clamp_min(0)]
            pi1 = torch.where(c >= 0, e[:, 0, 0], torch.full_like(theta, float("nan")))
            pi2 = torch.where(c >= 0, e[:, 1, 1], torch.full_like(theta, float("nan")))
            axes[0][col].plot(theta, price, style, label=r.method)
            axes[1][col].plot(theta, pi1, style, label=f"pi1 {r.method}")
            axes[1][col].plot(theta, pi2, style, label=f"pi2 {r.method}", alpha=0.7)
        axes[0][col].set_title(s, fontsize=9)
        axes[0][col].set_ylabel("price paid")
        axes[1][col].set_ylabel("experiment bought")
        axes[1][col].set_ylim(-0.02, 1.05)
        axes[1][col].set_xlabel("theta = P(w = 0)")
        axes[0][col].legend(fontsize=7)
        axes[1][col].legend(fontsize=7)
    fig.suptitle("Learned menu (solid) vs theory menu (dashed)")
    return save(fig, path)


def _alpha_plot(records: list[Record], path: Path) -> Path | None:
    import numpy as np

    from infozoo.bench.plots import figure, save
    from infozoo.envs.data_market.theory import two_buyer_uniform_revenue
    from infozoo.registry import load_setting

    pts: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        if not r.setting.startswith("dm-2buyers-uniform-a") or r.setting.endswith("-bic"):
            continue
        pts.setdefault(r.method, []).append((load_setting(r.setting).externality, r.metrics["revenue"]))
    if not pts:
        return None
    plt = figure()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    alphas = np.linspace(0, 2.2, 200)
    ax.plot(alphas, [two_buyer_uniform_revenue(a) for a in alphas], "k-", lw=1, label="theory (closed form)")
    for i, (m, xs) in enumerate(sorted(pts.items())):
        xs.sort()
        ax.plot([x for x, _ in xs], [y for _, y in xs], "o", ms=6 - i, label=m)
    ax.set_xlabel("externality alpha")
    ax.set_ylabel("expected revenue")
    ax.set_title("Two U[0,1] buyers, prior (1/2, 1/2)")
    ax.legend(fontsize=8)
    return save(fig, path)


TABLE = TableSpec(NAME, tasks, "infozoo.bench.tables.data_market:run", render, plots,
                  description="Revenue of data-market mechanisms against the theory optimum; the net's "
                              "obedience and IR violations and regret (with its search budget).")
