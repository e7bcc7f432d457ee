"""The auction benchmark table: mechanisms x settings, revenue with regret, over-allocation, SP.

Rows are the methods in ``METHODS`` (named mechanisms, and trainable solvers that are trained
per task with the profile's config and then evaluated); columns are the profile's settings.
Every cell is evaluated by ``infozoo.envs.auction.metrics.evaluate`` under the profile's
``EVAL`` budget, which the rendered table states.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infozoo.bench.runner import Table, TableSpec, Task, group, mean_std, pivot, train_solver
from infozoo.bench.store import Record

NAME = "auction"
SETTINGS = {
    "quick": ["additive-1x2-uniform", "additive-2x2-uniform", "additive-2x2-yao",
              "additive-2x3-uniform", "unit-2x2-uniform"],
    "full": ["additive-1x2-uniform", "additive-2x2-uniform", "additive-2x2-yao",
             "additive-2x3-uniform", "unit-2x2-uniform", "additive-2x5-uniform",
             "additive-3x10-uniform", "additive-5x10-uniform"],
}
# evaluation protocol per profile: test profiles and the regret search budget
EVAL = {
    "quick": {"n": 100_000, "regret_profiles": 1000, "regret_restarts": 10, "regret_steps": 50},
    "full": {"n": 100_000, "regret_profiles": 10_000, "regret_restarts": 100, "regret_steps": 200},
}


@dataclass(frozen=True)
class Method:
    """A table row: a named mechanism or a trainable solver, where it applies, how many seeds."""

    name: str
    trainable: bool = False
    seeds: dict[str, int] | None = None  # profile -> number of seeds (default 1)
    applies: str = "all"  # "all", "discrete", "additive", "single-bidder", "multi-bidder", "certifiable"
    cost: int = 0  # sweep order only: costlier methods' tasks start first (see ``tasks``)

    def fits(self, setting: Any) -> bool:
        if self.applies == "certifiable":  # GemNet: multi-bidder, where its certificate can start
            from infozoo.solvers.gemnet.train import certifiable

            return setting.bidders > 1 and certifiable(setting)
        return {
            "all": True,
            "discrete": setting.discrete,
            "additive": not setting.unit_demand,
            "single-bidder": setting.bidders == 1,
            "multi-bidder": setting.bidders > 1,
        }[self.applies]


METHODS: list[Method] = [
    Method("vcg"),
    Method("myerson", applies="additive"),
    Method("bundle"),
    Method("lp-optimal", applies="discrete"),
    Method("spm-dp"),
    Method("spm-ppo", trainable=True, seeds={"quick": 1, "full": 3}),
    Method("rochetnet", trainable=True, applies="single-bidder", seeds={"quick": 1, "full": 3}),
    Method("gemnet", trainable=True, applies="certifiable", seeds={"quick": 1, "full": 3}, cost=2),
    Method("lottery-ama", trainable=True, seeds={"quick": 1, "full": 5}),
    Method("amenunet", trainable=True, seeds={"quick": 1, "full": 5}),
    Method("regretnet", trainable=True, seeds={"quick": 1, "full": 3}),
]


def tasks(profile: str) -> list[Task]:
    """The profile's tasks, costliest first (``Method.cost``, then settings with more valuations,
    continuous before discrete), so that parallel workers finish together: with two workers the
    quick sweep's GemNet 2x3 task (about 25 min) starts at once instead of after a third of the
    sweep. The order does not change any result."""
    from infozoo.registry import load_setting

    out = []
    for setting_name in SETTINGS[profile]:
        setting = load_setting(setting_name)
        size = (setting.bidders * setting.items, not setting.discrete)
        for m in METHODS:
            if m.fits(setting):
                for seed in range((m.seeds or {}).get(profile, 1)):
                    out.append(((m.cost, *size), Task(NAME, setting_name, m.name, seed, profile, dict(EVAL[profile]))))
    return [task for _, task in sorted(out, key=lambda pair: pair[0], reverse=True)]


def run(task: Task) -> dict[str, Any]:
    """Train (for solvers) and evaluate one method on one setting."""
    from infozoo.envs.auction.metrics import evaluate
    from infozoo.registry import load_setting, make_mechanism, names

    setting = load_setting(task.setting)
    train_time = 0.0
    extra: dict[str, Any] = {}
    if task.method in names("solver"):
        mechanism, train_time, extra = train_solver(task, setting)
    else:
        mechanism = make_mechanism(task.method, setting)
    metrics = evaluate(setting, mechanism, seed=1000 + task.seed, **task.params)
    return {**metrics, "train_time": train_time, **extra}


def uncertified(recs: list[Record]) -> int:
    """How many of a cell's seeds lack a feasibility certificate, among methods that certify (GemNet)."""
    flags = [r.metrics.get("certified") for r in recs]
    return sum(f is not True for f in flags) if any(f is not None for f in flags) else 0


def _sp(recs: list[Record]) -> str:
    """The SP column over every seed of a cell: one uncertified seed makes the cell uncertified."""
    if any(r.metrics.get("certified") is not None for r in recs):
        bad = uncertified(recs)
        return f"uncertified ({bad} of {len(recs)} seeds)" if bad else "certified"
    return "by construction" if all(r.metrics.get("strategyproof_by_construction") for r in recs) else "approx."


def _revenue_cell(recs: list[Record]) -> str:
    bad = uncertified(recs)
    mark = f" (uncertified: {bad} of {len(recs)} seeds)" if bad else ""
    return mean_std(r.metrics["revenue"] for r in recs) + mark


def render(records: list[Record]) -> list[Table]:
    from infozoo.registry import load_setting
    from infozoo.solvers.gemnet.train import certifiable

    methods = [m.name for m in METHODS if any(r.method == m.name for r in records)]
    methods += [r.method for r in records if r.method not in methods]
    settings = [s for p in ("full", "quick") for s in SETTINGS[p]]
    settings = [s for s in dict.fromkeys(settings) if any(r.setting == s for r in records)]
    revenue = pivot(records, _revenue_cell, "Revenue (mean ± std over seeds)", rows=list(dict.fromkeys(methods)),
                    cols=settings)
    budgets = sorted({r.metrics.get("regret_budget", "") for r in records})
    revenue.notes = [f"test profiles per cell: {sorted({r.metrics['n'] for r in records})}; "
                     "discrete settings are enumerated exactly",
                     "regret budgets: " + "; ".join(budgets),
                     "a cell marked 'uncertified' has a seed whose GemNet feasibility certificate did not hold; "
                     "its mean includes that seed"]
    skipped = [s for s in settings if (st := load_setting(s)).bidders > 1 and not certifiable(st)]
    if skipped:
        revenue.notes.append(f"gemnet is not run on {', '.join(skipped)}: its certificate (continuous menus, "
                             "interval cell bounds) would start from grid^(n m) cells, 2^(n m) at its default grid = 2")
    detail = Table("Details per method and setting",
                   ["setting", "method", "revenue", "regret mean", "regret max", "max over-allocation",
                    "SP", "seeds", "train time [s]", "transform time [s]"], [])
    for (setting, method), rs in group(records, "setting", "method").items():
        detail.rows.append([setting, method, mean_std(r.metrics["revenue"] for r in rs),
                            mean_std((r.metrics["regret_mean"] for r in rs), 5),
                            mean_std((r.metrics["regret_max"] for r in rs), 5),
                            mean_std((r.metrics["over_allocation_max"] for r in rs), 5),
                            _sp(rs), str(len(rs)), mean_std((r.metrics.get("train_time", 0.0) for r in rs), 1),
                            mean_std((r.metrics.get("transform_time") for r in rs), 1)])
    return [revenue, detail]


MENU_PICTURES = {"gemnet": "additive-2x2-uniform", "rochetnet": "additive-1x2-uniform"}


def plots(records: list[Record], out: Path) -> list[Path]:
    """Revenue per setting, and GemNet's 2x2 (RochetNet's 1x2) menu before and after the price
    transform, drawn from the first seed's checkpoint when it is still on disk."""
    from infozoo.bench.plots import revenue_bars

    paths = [revenue_bars(records, out / "auction_revenue.png", "Auction revenue by setting",
                          label=lambda method, rs: method + (" (uncertified)" if uncertified(rs) else ""))]
    for method, setting in MENU_PICTURES.items():
        found = sorted((r for r in records if r.method == method and r.setting == setting), key=lambda r: r.seed)
        ckpt = Path(found[0].metrics.get("checkpoint", "")) if found else None
        if ckpt is not None and (ckpt / "config.json").is_file():
            from infozoo.solvers.gemnet.plots import menu_plot
            from infozoo.solvers.gemnet.train import load

            paths.append(menu_plot(load(ckpt), out / f"{method}_menus_{setting}.png"))
    return paths


TABLE = TableSpec(NAME, tasks, "infozoo.bench.tables.auction:run", render, plots,
                  description="Expected revenue of auction mechanisms with truthful bids; regret is "
                              "reported with its search budget, SP says whether strategy-proofness "
                              "holds by construction, is certified, or is only approximate.")
