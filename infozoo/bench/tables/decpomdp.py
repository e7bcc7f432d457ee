"""The Dec-POMDP state-reconstruction table: rows = environments, columns = methods.

Every cell is the test MSE of a reconstruction of the true state ``s_t`` from histories up to
``t`` (averaged over every step ``t`` and state coordinate), on a test set collected with the
random policy under a fixed seed. Methods:

- ``bayes-joint`` / ``bayes-agent``: the exact posterior mean given the joint history / one
  agent's history (averaged over agents): the **Bayes floor** no reconstructor can beat.
- ``regression-joint`` / ``regression-agent``: GRU history regression
  (``infozoo.baselines.decpomdp.regression``) trained on ``train_episodes`` episodes.

To add a method (e.g. the diffusion reconstructor), append a ``Method`` to ``METHODS`` and a
branch in ``run`` that returns at least ``{"mse": ..., "mse_final": ...}``; the renderer picks it up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infozoo.bench.runner import Table, TableSpec, Task, group, mean_std, pivot
from infozoo.bench.store import Record
from infozoo.bench.tables.decpomdp_diffusion import diffusion_plots, diffusion_tables

NAME = "decpomdp"


@dataclass(frozen=True)
class Setting:
    """A table row: an env with its arguments and the data budget."""

    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    test_episodes: int = 2000
    exact: bool = True  # an exact Bayes filter exists


SETTINGS: dict[str, Setting] = {
    "sensor-grid": Setting("sensor-grid-v0", {"max_cycles": 10}, test_episodes=128),
    "dec-tiger": Setting("dec-tiger-v0"),
    "linear-gaussian": Setting("linear-gaussian-v0"),
    "linear-gaussian-noiseless": Setting("linear-gaussian-v0", {"obs_noise": 0.0}),
    "linear-gaussian-non-co": Setting("linear-gaussian-v0", {"co": False}),
    "spread-po": Setting("spread-po-v0", {"max_cycles": 10}, test_episodes=1000, exact=False),
}
METHODS = ["bayes-joint", "bayes-agent", "regression-joint", "regression-agent", "diffusion-agent",
           "diffusion-composite"]  # diffusion-*: infozoo.bench.tables.decpomdp_diffusion
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {"train_episodes": 20_000, "epochs": 6, "max_seconds": 240.0},
    "full": {"train_episodes": 20_000, "epochs": 30, "max_seconds": None},
}
TEST_SEED = 1_000_003  # test data seed (train data use the task seed)


def tasks(profile: str) -> list[Task]:
    out = []
    for name, s in SETTINGS.items():
        for method in METHODS:
            if method.startswith("bayes") and not s.exact:
                continue
            params = {"env_id": s.env_id, "env_kwargs": s.env_kwargs, "test_episodes": s.test_episodes}
            if not method.startswith("bayes"):
                params.update(PROFILES[profile])
            out.append(Task(NAME, name, method, 0, profile, params))
    return out


def run(task: Task) -> dict[str, Any]:
    from infozoo.envs.decpomdp.histories import collect

    p = task.params
    test = collect(p["env_id"], p["test_episodes"], "random", seed=TEST_SEED, env_kwargs=p["env_kwargs"])
    meta = {"test_episodes": len(test), "collectively_observable": test.meta["collectively_observable"],
            "state_dim": test.meta["state_dim"]}
    if task.method.startswith("bayes"):
        from infozoo.baselines.decpomdp.bayes_filter import bayes_floor

        floor = bayes_floor(test, agents_each=task.method == "bayes-agent")
        prefix = "agent" if task.method == "bayes-agent" else "joint"
        out = {k.removeprefix(prefix + "_"): v for k, v in floor.items() if k.startswith(prefix)}
        return {**meta, **out}
    if task.method.startswith("regression"):
        from infozoo.baselines.decpomdp.regression import Config, evaluate, fit

        train = collect(p["env_id"], p["train_episodes"], "random", seed=task.seed, env_kwargs=p["env_kwargs"])
        config = Config(mode=task.method.removeprefix("regression-"), epochs=p["epochs"], seed=task.seed,
                        max_seconds=p["max_seconds"])
        model = fit(train, config)
        return {**meta, **evaluate(model, test), **model.report}
    if task.method.startswith("diffusion"):
        from infozoo.bench.tables.decpomdp_diffusion import run_diffusion

        return {**meta, **run_diffusion(task, test)}
    raise ValueError(f"unknown decpomdp method {task.method!r}; valid: {', '.join(METHODS)}")


def render(records: list[Record]) -> list[Table]:
    methods = [m for m in METHODS if any(r.method == m for r in records)]
    methods += [m for m in dict.fromkeys(r.method for r in records) if m not in methods]
    settings = [s for s in SETTINGS if any(r.setting == s for r in records)]
    settings += [s for s in dict.fromkeys(r.setting for r in records) if s not in settings]
    mse = pivot(records, lambda rs: mean_std((r.metrics["mse"] for r in rs), 4), "State reconstruction MSE "
                "(test, mean over steps and coordinates; bayes-* = exact posterior = the floor)",
                rows=settings, cols=methods, row_key="setting", col_key="method", corner="env")
    co = {r.setting: r.metrics.get("collectively_observable") for r in records}
    mse.header.insert(1, "CO")
    for row in mse.rows:
        row.insert(1, "yes" if co.get(row[0]) else "no")
    tests = sorted({r.metrics.get("test_episodes") for r in records})
    mse.notes = [f"test episodes per cell: {tests} (random policy, seed {TEST_SEED}); "
                 "training episodes: " + ", ".join(sorted({str(r.params.get('train_episodes')) for r in records
                                                            if 'train_episodes' in r.params}))]
    final = pivot(records, lambda rs: mean_std((r.metrics["mse_final"] for r in rs), 4),
                  "MSE at the last step", rows=settings, cols=methods, row_key="setting", col_key="method",
                  corner="env")
    detail = Table("Details", ["env", "method", "mse", "mse final", "accuracy", "train time [s]"], [])
    for (setting, method), rs in group(records, "setting", "method").items():
        acc = [r.metrics["accuracy"] for r in rs if "accuracy" in r.metrics]
        detail.rows.append([setting, method, mean_std(r.metrics["mse"] for r in rs),
                            mean_std(r.metrics["mse_final"] for r in rs), mean_std(acc, 3) if acc else "—",
                            mean_std((r.metrics.get("train_time", 0.0) for r in rs), 1)])
    return [mse, final, detail, *diffusion_tables(records)]


TABLE = TableSpec(NAME, tasks, "infozoo.bench.tables.decpomdp:run", render, plots=diffusion_plots,
                  description="Reconstruction of the global state from action-observation histories: exact "
                              "Bayes posteriors (the floor) against history regression, per agent and joint.")


# ---- IPPO: return of parameter-shared PPO with local / oracle-state observations ---------------

IPPO_NAME = "decpomdp-ippo"
IPPO_SETTINGS = {"sensor-grid": Setting("sensor-grid-v0")}
IPPO_METHODS = ["random", "scripted", "ippo-local", "ippo-oracle"]
IPPO_EVAL_EPISODES = 200


IPPO_SEEDS = {"quick": 2, "full": 5}  # training seeds per learned cell (seed variance is large)


def ippo_tasks(profile: str) -> list[Task]:
    return [Task(IPPO_NAME, name, method, seed, profile,
                 {"env_id": s.env_id, "env_kwargs": s.env_kwargs, "eval_episodes": IPPO_EVAL_EPISODES})
            for name, s in IPPO_SETTINGS.items() for method in IPPO_METHODS
            for seed in range(IPPO_SEEDS[profile] if method.startswith("ippo-") else 1)]


def ippo_run(task: Task) -> dict[str, Any]:
    from infozoo.baselines.decpomdp import ippo

    p = task.params
    variant = task.method.removeprefix("ippo-")
    config = ippo.default_config(p["env_id"], variant if variant in ippo.VARIANTS else "local", task.profile,
                                 task.seed)
    config.env_kwargs = dict(p["env_kwargs"])
    if not task.method.startswith("ippo-"):
        return ippo.evaluate(task.method, config, p["eval_episodes"])
    policy = ippo.fit(config)
    return {**ippo.evaluate(policy, config, p["eval_episodes"]), **policy.report}


def ippo_render(records: list[Record]) -> list[Table]:
    methods = [m for m in IPPO_METHODS if any(r.method == m for r in records)]
    t = pivot(records, lambda rs: mean_std((r.metrics["return_mean"] for r in rs), 2),
              "Mean episode return (per agent, deterministic policy; mean ± std over training seeds)",
              cols=methods, row_key="setting", col_key="method", corner="env")
    t.notes = [f"evaluation episodes per cell: {sorted({r.metrics.get('episodes') for r in records})}; "
               "timesteps (agent-steps): " + ", ".join(sorted({str(r.metrics['timesteps']) for r in records
                                                               if 'timesteps' in r.metrics}))]
    return [t]


IPPO_TABLE = TableSpec(IPPO_NAME, ippo_tasks, "infozoo.bench.tables.decpomdp:ippo_run", ippo_render,
                       description="Parameter-shared PPO (SB3) on the Dec-POMDPs with local observations and with "
                                   "the true state appended (oracle), against random and scripted policies.")
