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

import math
import statistics
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


# ---- IPPO: return of parameter-shared PPO with local / reconstructed / oracle-state observations ----
#
# ``ippo-local``: own observation only; ``ippo-oracle``: observation + true state; ``ippo-reconstructed``:
# observation + the diffusion reconstructor's composite-flow estimate from the joint history so far,
# computed online by the reconstructor's stream (one GRU step and one flow per env step, the model's own
# flow settings, so the input equals ``reconstruct(h_{0..t})``). The reconstructor is the ``decpomdp``
# table's sensor-grid model (same setting name, profile, env arguments, seed ``IPPO_RECON_SEED``), from the
# shared cache or trained there; every IPPO seed uses it. Episode length: IPPO runs at the reconstructor's
# ``max_cycles`` (10, the length of its training episodes), so the GRU never sees a history longer than in
# training; ``ippo_run`` refuses a mismatch. Gap closed = (reconstructed - local) / (oracle - local), on the
# means over seeds; it is only meaningful when oracle - local is large against the seed spread, and on
# sensor-grid it is not: the capture reward is earned in cells that every scanning sensor already sees in
# its own 3x3 patch (prey move after the reward), so the true state adds nothing a policy needs to the
# local observation, while 45 more inputs slow PPO down. Measured (quick profile, max_cycles 10, 2-core
# CPU, 2026-11-26): local 37.2 / 31.8 / 30.8 / 10.2 / 42.0 (seeds 0-4, mean 30.4), oracle 27.5 / 26.0 /
# 27.9 / 26.2 / 28.5 (mean 27.2), reconstructed 25.0 / 29.8 (seeds 0 / 1), scripted 44.1, random -12.2: the oracle is
# *below* local, so the gap-closed ratio has no meaning here. The render prints the ratio with that
# caveat rather than alone. A task where the state matters beyond the own patch (prey that move before
# the reward, or captures that need sensors which cannot see the prey) would make this table informative.

IPPO_NAME = "decpomdp-ippo"
IPPO_SETTINGS = {"sensor-grid": SETTINGS["sensor-grid"]}  # max_cycles 10, as the reconstructor's data
IPPO_METHODS = ["random", "scripted", "ippo-local", "ippo-oracle", "ippo-reconstructed"]
IPPO_EVAL_EPISODES = 200
IPPO_RECON_SEED = 0  # seed of the diffusion reconstructor behind ippo-reconstructed (the decpomdp table's)


IPPO_SEEDS = {"quick": 2, "full": 5}  # training seeds per learned cell (seed variance is large)
# the reconstructed variant costs ~40 min per seed on a 2-core CPU (98% of it batch-1 flows), so
# the quick profile runs one seed of it
IPPO_RECON_SEEDS = {"quick": 1, "full": 5}


def ippo_seeds(method: str, profile: str) -> int:
    if method == "ippo-reconstructed":
        return IPPO_RECON_SEEDS[profile]
    return IPPO_SEEDS[profile] if method.startswith("ippo-") else 1


def ippo_tasks(profile: str) -> list[Task]:
    return [Task(IPPO_NAME, name, method, seed, profile,
                 {"env_id": s.env_id, "env_kwargs": s.env_kwargs, "eval_episodes": IPPO_EVAL_EPISODES})
            for name, s in IPPO_SETTINGS.items() for method in IPPO_METHODS
            for seed in range(ippo_seeds(method, profile))]


def ippo_reconstructor(task: Task) -> Any:
    """The diffusion reconstructor for ``ippo-reconstructed`` on ``task.setting`` (shared with the
    ``decpomdp`` table through its cache), checked to have been trained on episodes of the same length."""
    from infozoo.bench.tables.decpomdp_diffusion import trained_reconstructor
    from infozoo.envs.decpomdp.histories import model_of

    p = task.params
    recon = trained_reconstructor(Task(NAME, task.setting, "diffusion-composite", IPPO_RECON_SEED, task.profile,
                                       {"env_id": p["env_id"], "env_kwargs": p["env_kwargs"]}))
    length = model_of(p["env_id"], **p["env_kwargs"]).info.max_cycles
    if int(recon.meta["max_cycles"]) != length:
        raise ValueError(f"the reconstructor was trained on {recon.meta['max_cycles']}-step episodes, IPPO runs "
                         f"{length}-step ones; train it with the same max_cycles")
    return recon


def ippo_run(task: Task) -> dict[str, Any]:
    import torch

    from infozoo.baselines.decpomdp import ippo

    p = task.params
    variant = task.method.removeprefix("ippo-")
    config = ippo.default_config(p["env_id"], variant if variant in ippo.VARIANTS else "local", task.profile,
                                 task.seed)
    config.env_kwargs = dict(p["env_kwargs"])
    if not task.method.startswith("ippo-"):
        return ippo.evaluate(task.method, config, p["eval_episodes"])
    extra: dict[str, Any] = {}
    recon = None
    threads = torch.get_num_threads()
    if variant == "reconstructed":
        recon = ippo_reconstructor(task)
        extra["reconstructor_train_time"] = float(recon.report.get("train_time", float("nan")))
        torch.set_num_threads(1)  # batch-1 flows: a second thread only adds synchronisation
    try:
        policy = ippo.fit(config, recon)
        return {**ippo.evaluate(policy, config, p["eval_episodes"]), **policy.report, **extra}
    finally:
        torch.set_num_threads(threads)


def ippo_render(records: list[Record]) -> list[Table]:
    methods = [m for m in IPPO_METHODS if any(r.method == m for r in records)]
    t = pivot(records, lambda rs: mean_std((r.metrics["return_mean"] for r in rs), 2),
              "Mean episode return (per agent, deterministic policy; mean ± std over training seeds)",
              cols=methods, row_key="setting", col_key="method", corner="env")
    t.notes = [f"evaluation episodes per cell: {sorted({r.metrics.get('episodes') for r in records})}; "
               "timesteps (agent-steps): " + ", ".join(sorted({str(r.metrics['timesteps']) for r in records
                                                               if 'timesteps' in r.metrics}))]
    detail = Table("IPPO details", ["env", "method", "seeds", "return", "IPPO train time [s]",
                                    "reconstructor train time [s]", "ms / reconstruction step"], [])
    for (setting, method), rs in group(records, "setting", "method").items():
        detail.rows.append([setting, method, len(rs), mean_std((r.metrics["return_mean"] for r in rs), 2),
                            mean_std((r.metrics.get("train_time") for r in rs), 0),
                            mean_std((r.metrics.get("reconstructor_train_time") for r in rs), 0),
                            mean_std((r.metrics.get("recon_ms_per_step") for r in rs), 1)])
    gaps = []
    for (setting,), rs in group(records, "setting").items():
        runs = {m: [r.metrics["return_mean"] for r in rs if r.method == m]
                for m in ("ippo-local", "ippo-oracle", "ippo-reconstructed")}
        if not all(runs.values()):
            continue
        mean = {m: statistics.mean(v) for m, v in runs.items()}
        gap = mean["ippo-oracle"] - mean["ippo-local"]
        closed = (mean["ippo-reconstructed"] - mean["ippo-local"]) / gap if gap else float("nan")
        within = [statistics.stdev(runs[m]) for m in ("ippo-local", "ippo-oracle") if len(runs[m]) > 1]
        spread = math.sqrt(statistics.mean(v**2 for v in within)) if within else float("nan")
        caveat = (" — not meaningful: the oracle does not beat local" if gap <= 0 else
                  " — not meaningful: the oracle gap is within the seed spread" if gap <= spread else "")
        gaps.append(f"{setting}: oracle - local = {gap:.2f} (seed std within local / oracle {spread:.2f}); "
                    f"gap closed by reconstructed = {closed:.2f}{caveat}")
    head = "gap closed = (reconstructed - local) / (oracle - local) on the means over seeds. "
    detail.notes = [head + "; ".join(gaps) if gaps else head + "Needs local, oracle and reconstructed rows."]
    return [t, detail]


IPPO_TABLE = TableSpec(IPPO_NAME, ippo_tasks, "infozoo.bench.tables.decpomdp:ippo_run", ippo_render,
                       description="Parameter-shared PPO (SB3) on the Dec-POMDPs with local observations, with "
                                   "the diffusion reconstructor's state estimate appended (reconstructed) and with "
                                   "the true state appended (oracle), against random and scripted policies.")
