"""The diffusion columns of the ``decpomdp`` table: training (cached), evaluation, extra tables, plots.

Methods ``diffusion-agent`` (each agent's own flow, averaged over agents) and
``diffusion-composite`` (the composite flow over all agents) share one trained model per
(setting, profile, seed): the first task to run trains it and stores the checkpoint and the
evaluation under ``$INFOZOO_CACHE`` (default ``results/cache``)/``diffusion/``; the other reuses
them. Exact oracles come from ``infozoo.baselines.decpomdp.bayes_filter`` (dec-tiger posteriors
for total variation) and ``infozoo.solvers.diffusion.exact`` (linear-Gaussian affine sets).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from infozoo.bench.runner import Table, Task, group, mean_std
from infozoo.bench.store import Record

METHODS = ["diffusion-agent", "diffusion-composite"]


def cache_dir(task: Task) -> Path:
    blob = json.dumps({"setting": task.setting, "profile": task.profile, "seed": task.seed,
                       "env_id": task.params["env_id"], "env_kwargs": task.params["env_kwargs"]}, sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return Path(os.environ.get("INFOZOO_CACHE", "results/cache")) / "diffusion" / f"{task.setting}-{key}"


def trained_reconstructor(task: Task) -> Any:
    """The diffusion reconstructor of ``cache_dir(task)`` (setting, profile, seed, env id and
    kwargs): loaded from the cache, or trained with ``train.default_config`` and saved there. Other
    tables (``decpomdp-ippo``) call it with the same key to share the model. Its training time is
    ``recon.report["train_time"]``."""
    from infozoo.solvers.diffusion import train

    p = task.params
    folder = cache_dir(task)
    if (folder / "config.json").is_file():
        return train.load(folder)
    spec = p["env_id"] + "?" + "&".join(f"{k}={json.dumps(v)}" for k, v in p["env_kwargs"].items())
    recon = train.fit(spec, train.default_config(spec, task.profile, task.seed))
    recon.save(folder)
    return recon


def run_diffusion(task: Task, test: Any) -> dict[str, Any]:
    """Metrics of ``task.method`` (``diffusion-agent`` or ``diffusion-composite``) on ``test``."""
    from infozoo.core.files import atomic_write_json

    if task.method not in METHODS:
        raise ValueError(f"unknown diffusion method {task.method!r}; valid: {', '.join(METHODS)}")
    folder = cache_dir(task)
    ev_path = folder.with_name(folder.name + "-eval.json")
    if ev_path.is_file():
        ev = json.loads(ev_path.read_text())
    else:
        recon = trained_reconstructor(task)
        ev = {**evaluate_with_oracles(recon, test), "train": recon.report}
        atomic_write_json(ev_path, ev)
    if task.method == "diffusion-agent":
        keep = {k.removeprefix("agent_"): v for k, v in ev.items() if k.startswith("agent_")}
        out = {**keep, "tv_agent": ev.get("tv_agent")}
    else:
        out = {k: v for k, v in ev.items() if not k.startswith("agent_")}
        out["agent_nmse"] = ev["agent_nmse"]
    out["train_time"] = ev["train"]["train_time"]
    return {k: v for k, v in out.items() if v is not None and k != "train"}


def evaluate_with_oracles(recon: Any, test: Any) -> dict[str, Any]:
    """``infozoo.solvers.diffusion.evaluate.evaluate`` with the exact oracles of the env."""
    from infozoo.solvers.diffusion.evaluate import evaluate

    env_id = test.meta["env_id"].removeprefix("infozoo/")
    joint = agent = exact = None
    if env_id == "dec-tiger-v0":
        from infozoo.baselines.decpomdp.bayes_filter import posterior

        joint = posterior(test).probs
        agent = [posterior(test, [i]).probs for i in range(test.meta["n_agents"])]
    if env_id == "linear-gaussian-v0":
        from infozoo.envs.decpomdp.histories import model_of
        from infozoo.solvers.diffusion.exact import exact_denoiser

        exact = exact_denoiser(model_of(env_id, **test.meta["env_kwargs"]), test.observations[:128], t=-1)
    return evaluate(recon, test, joint_probs=joint, agent_probs=agent, exact=exact, analysis_episodes=128)


def _fmt(rs: list[Record], key: str, digits: int = 3) -> str:
    xs = [r.metrics[key] for r in rs if isinstance(r.metrics.get(key), int | float)]
    return mean_std(xs, digits) if xs else "—"


def diffusion_tables(records: list[Record]) -> list[Table]:
    """Normalised errors, convergence, speed, Jacobian rank and total variation of the composite flow."""
    comp = [r for r in records if r.method == "diffusion-composite"]
    if not comp:
        return []
    joint_floor = {s: rs[0].metrics.get("mse") for (s, m), rs in group(records, "setting", "method").items()
                   if m == "bayes-joint"}
    t = Table("Diffusion reconstructor: composite flow vs single-agent flow",
              ["env", "composite nMSE", "single-agent nMSE", "composite / single", "composite / Bayes floor",
               "accuracy", "TV to joint posterior", "TV of exact PoE", "iterations", "ms / reconstruction",
               "train time [s]"], [])
    r2 = Table("Fixed points of the learned denoisers (last step, 128 test episodes, all agents)",
               ["env", "Jacobian rank", "rank = exact", "median |x*-s|", "pinned deviation", "surrogate bound",
                "bound holds", "corr(rank, |x*-s|)", "corr(soft rank, pinned dev.)", "corr(rank, dist. to exact set)"],
               [])
    for (setting,), rs in group(comp, "setting").items():
        ratio = [r.metrics["nmse"] / r.metrics["agent_nmse"] for r in rs if r.metrics.get("agent_nmse")]
        floor = joint_floor.get(setting)
        vs_floor = mean_std([r.metrics["mse"] / floor for r in rs], 3) if floor and floor > 1e-12 else "— (floor 0)"
        t.rows.append([setting, _fmt(rs, "nmse", 4), _fmt(rs, "agent_nmse", 4), mean_std(ratio, 3) if ratio else "—",
                       vs_floor, _fmt(rs, "accuracy"), _fmt(rs, "tv_joint"), _fmt(rs, "tv_poe_exact"),
                       _fmt(rs, "iterations", 1), _fmt(rs, "ms_per_reconstruction", 3), _fmt(rs, "train_time", 0)])
        r2.rows.append([setting, _fmt(rs, "rank_rank_mean", 2), _fmt(rs, "rank_rank_matches_exact_fraction", 2)
                        if any("rank_rank_matches_exact_fraction" in r.metrics for r in rs) else "—",
                        _fmt(rs, "rank_deviation_median"), _fmt(rs, "rank_pinned_deviation_mean"),
                        _fmt(rs, "rank_bound_mean"), _fmt(rs, "rank_bound_holds_fraction", 2),
                        _fmt(rs, "rank_deviation_spearman"), _fmt(rs, "rank_soft_pinned_spearman"),
                        _fmt(rs, "rank_affine_spearman")])
    t.notes = ["nMSE = MSE / mean per-coordinate variance of the test states; composite / Bayes floor = composite MSE "
               "over the exact joint posterior's MSE; TV (dec-tiger): total variation between composite sample "
               "frequencies and the exact joint posterior; 'TV of exact PoE': the same for the product of the exact "
               "per-agent posteriors (the best any composition of per-agent posteriors can do here)."]
    r2.notes = ["rank = singular values of dD_i/dx above 1/2 at the fixed point x* reached from the true state s; "
                "'exact rank' = fraction of (state, agent) pairs where it equals the dimension of the exact consistent "
                "set; pinned deviation = |x*-s| along the directions the learned Jacobian pins (eigenvalue < 1/2), "
                "surrogate bound = its first-order (linear-regression) estimate from |D(s)-s|; soft rank = sum of "
                "singular values; correlations are Spearman over (state, agent) pairs ('—' when the rank is constant; "
                "the paper: negative)."]
    return [t, r2]


def diffusion_plots(records: list[Record], out_dir: Path) -> list[Path]:
    """Composite-flow trajectories on a 2-D slice, error vs iterations, rank vs deviation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comp = {r.setting: r.metrics for r in records if r.method == "diffusion-composite" and "curves" in r.metrics}
    if not comp:
        return []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, axes = plt.subplots(1, len(comp), figsize=(3.4 * len(comp), 3.2), squeeze=False)
    for ax, (setting, m) in zip(axes[0], comp.items()):
        traj, truth = np.asarray(m["curves"]["trajectory"]), np.asarray(m["curves"]["truth"])
        for j in range(traj.shape[1]):
            ax.plot(traj[:, j, 0], traj[:, j, 1], "-", lw=0.8, alpha=0.8)
            ax.plot(traj[-1, j, 0], traj[-1, j, 1], "k.", ms=4)
        ax.plot(truth[:, 0], truth[:, 1], "rx", ms=6, label="true state")
        dims = m["curves"].get("slice", [0, 1])
        ax.set(title=setting, xlabel=f"s[{dims[0]}]", ylabel=f"s[{dims[1]}]")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("composite-flow trajectories (2-D slice)")
    fig.tight_layout()
    paths.append(out_dir / "decpomdp_diffusion_trajectories.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for setting, m in comp.items():
        line = ax.semilogy(m["curves"]["composite_error"], label=f"{setting} composite")[0]
        ax.semilogy(m["curves"]["agent0_error"], "--", color=line.get_color(), label=f"{setting} agent 0")
    ax.set(xlabel="sweep", ylabel="mean ||x - s|| (standardised)", title="error vs iterations")
    ax.legend(fontsize=6)
    fig.tight_layout()
    paths.append(out_dir / "decpomdp_diffusion_error_vs_iterations.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(comp), figsize=(3.4 * len(comp), 3.2), squeeze=False)
    for ax, (setting, m) in zip(axes[0], comp.items()):
        pairs = m.get("rank_pairs", {})
        rank = np.asarray(pairs.get("rank", []), float)
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, rank.shape)
        ax.plot(rank + jitter, pairs.get("deviation", []), ".", ms=3, alpha=0.6)
        ax.set(title=f"{setting} (rho={m.get('rank_deviation_spearman', float('nan')):.2f})",
               xlabel="Jacobian rank at fixed point", ylabel="deviation ||x* - s||")
    fig.tight_layout()
    paths.append(out_dir / "decpomdp_diffusion_rank_vs_deviation.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths
