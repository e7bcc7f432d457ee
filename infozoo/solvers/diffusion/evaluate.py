"""Evaluation of a fitted reconstructor on test histories: the numbers of the Dec-POMDP table.

``evaluate(recon, test, ...)`` returns a JSON-able dict:

- ``mse`` / ``mse_final`` / ``nmse`` (MSE divided by the mean per-coordinate variance of the test
  states) of the **composite flow** over all agents, at every step of every test episode;
  ``iterations`` (sweeps until the stopping rule), ``converged_fraction``,
  ``ms_per_reconstruction``; ``accuracy`` for discrete states (argmax for one-hot states; exact
  match of the rounded count vector otherwise).
- ``agent_mse`` / ``agent_nmse`` / ``agent_mse_final`` / ``agent_accuracy``: the single-agent flow of
  each agent (its own denoiser only), averaged over agents.
- ``tv_joint`` (small discrete state spaces, given the exact joint posterior ``joint_probs``): total
  variation between the composite samples' state frequencies and the exact joint posterior;
  ``tv_agent`` likewise for single-agent samples against ``agent_probs``; ``tv_poe_exact``: the
  same distance for the product of the *exact* per-agent posteriors (what composing per-agent
  posteriors can reach at best when the local histories are not conditionally independent).
- ``rank_*``: the fixed-point / Jacobian analysis (``analysis.analyse_fixed_points``) on the last
  step of ``analysis_episodes`` test episodes at ``flow.analysis_sigma``, with ``exact`` oracles
  where given.
- ``curves``: mean error per sweep of the composite and of agent 0's flow (error vs iterations),
  a few composite trajectories on a 2-D slice, and (rank, deviation) pairs, for the plots.

The exact posteriors come from the caller (``infozoo.baselines.decpomdp.bayes_filter``), so that
this module depends on envs and on the diffusion solver only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from infozoo.solvers.diffusion.analysis import analyse_fixed_points
from infozoo.solvers.diffusion.model import BoundDenoiser, DiffusionReconstructor

MAX_AGENTS_EVAL = 15  # single-agent flows are evaluated for at most this many agents


def _errors(pred: np.ndarray, states: np.ndarray, var: float, meta: dict[str, Any]) -> dict[str, float]:
    err = (pred - states) ** 2
    out = {"mse": float(err.mean()), "mse_final": float(err[:, -1].mean()), "nmse": float(err.mean() / var)}
    if meta.get("n_states"):  # one-hot states: the most likely one
        out["accuracy"] = float((pred.argmax(-1) == states.argmax(-1)).mean())
    elif meta.get("state_kind") == "discrete":  # count vectors: all counts right
        out["accuracy"] = float((np.rint(pred) == np.rint(states)).all(-1).mean())
    return out


@torch.no_grad()
def evaluate(recon: DiffusionReconstructor, test: Any, joint_probs: np.ndarray | None = None,
             agent_probs: list[np.ndarray] | None = None, exact: Any = None, analysis_episodes: int = 128,
             tv_histories: int = 300, tv_samples: int = 400, seed: int = 0) -> dict[str, Any]:
    """The metrics of the module docstring. ``exact``: an ``ExactDenoiser`` of the last step of the
    first ``analysis_episodes`` test episodes (linear-Gaussian), in state units."""
    states = np.asarray(test.states, dtype=np.float64)
    var = float(states.reshape(-1, states.shape[-1]).var(0).mean())
    comp, diag = recon.reconstruct_all_steps(test.histories)
    out: dict[str, Any] = {"state_variance": var, **_errors(comp, states, var, test.meta), **diag}
    agents = list(range(min(recon.n_agents, MAX_AGENTS_EVAL)))
    each = []
    for i in agents:
        pred, d = recon.reconstruct_all_steps(test.histories, agents=[i])
        each.append({**_errors(pred, states, var, test.meta), "iterations": d["iterations"]})
    for key in each[0]:
        out[f"agent_{key}"] = float(np.mean([e[key] for e in each]))
    if joint_probs is not None:
        out.update(_tv(recon, test, joint_probs, agent_probs, tv_histories, tv_samples, seed))
    out.update(_rank(recon, test, exact, analysis_episodes))
    out["curves"] = _curves(recon, test, min(analysis_episodes, 64))
    return out


def _tv(recon: DiffusionReconstructor, test: Any, joint: np.ndarray, agent: list[np.ndarray] | None, m: int, k: int,
        seed: int) -> dict[str, float]:
    """Total variation of sample frequencies to exact posteriors at random (episode, step) pairs."""
    rng = np.random.default_rng(seed)
    n_ep, t_len = joint.shape[:2]
    ep = rng.choice(n_ep, size=min(m, n_ep), replace=False)
    ts = rng.integers(0, t_len, size=ep.shape[0])
    n_states = joint.shape[-1]
    tv, tv_a, tv_poe = [], [], []
    for t in np.unique(ts):
        idx = ep[ts == t]
        h = test.histories[idx, : t + 1]
        freq = _freq(recon.sample(h, k, seed=seed + int(t)), n_states)
        tv.append(0.5 * np.abs(freq - joint[idx, t]).sum(-1))
        if agent is not None:
            f0 = _freq(recon.sample(h, k, agents=[0], seed=seed + 1000 + int(t)), n_states)
            tv_a.append(0.5 * np.abs(f0 - agent[0][idx, t]).sum(-1))
            prior = np.full(n_states, 1.0 / n_states)
            poe = np.prod([a[idx, t] for a in agent], axis=0) / prior ** (len(agent) - 1)
            poe = poe / poe.sum(-1, keepdims=True)
            tv_poe.append(0.5 * np.abs(poe - joint[idx, t]).sum(-1))
    out = {"tv_joint": float(np.concatenate(tv).mean()), "tv_samples": k,
           "tv_sampling_noise": float(np.sqrt(2 / (np.pi * k)) * 0.5)}  # E|p_hat - p| <= sqrt(2 p(1-p)/(pi k))
    if tv_a:
        out.update(tv_agent=float(np.concatenate(tv_a).mean()), tv_poe_exact=float(np.concatenate(tv_poe).mean()))
    return out


def _freq(samples: np.ndarray, n_states: int) -> np.ndarray:
    """State frequencies ``[B, n_states]`` of one-hot-coded samples ``[B, k, n_states]`` (argmax)."""
    return np.eye(n_states)[samples.argmax(-1)].mean(1)


def _rank(recon: DiffusionReconstructor, test: Any, exact: Any, m: int) -> dict[str, Any]:
    """Fixed-point analysis at the last step of the first ``m`` episodes (standardised coordinates)."""
    from infozoo.solvers.diffusion.exact import ExactDenoiser

    h = test.histories[:m]
    den = recon.bind(h)
    z = recon.to_z(test.states[:m, -1])
    ex = None
    if exact is not None:  # the exact denoisers in standardised coordinates: mu -> (mu - m)/sd, cov -> D cov D
        mean, std = recon.mean.double(), recon.std.double()
        dinv = torch.diag(1 / std)
        ex = ExactDenoiser((exact.mu - mean) / std, dinv @ exact.cov @ dinv, (exact.prior_mean - mean) / std,
                           dinv @ exact.prior_cov @ dinv)
    agents = list(range(min(recon.n_agents, MAX_AGENTS_EVAL)))
    fa = analyse_fixed_points(den, z, recon.flow.analysis_sigma, agents, exact=ex)
    out = {f"rank_{k}": v for k, v in fa.summary().items()}
    keep = np.random.default_rng(0).permutation(fa.rank.size)[:300]
    out["rank_pairs"] = {"rank": fa.rank.ravel()[keep].tolist(), "deviation": fa.deviation.ravel()[keep].tolist(),
                         "soft_rank": fa.soft_rank.ravel()[keep].tolist(),
                         "affine_distance": (fa.affine_distance.ravel()[keep].tolist()
                                             if fa.affine_distance is not None else None)}
    return out


def _curves(recon: DiffusionReconstructor, test: Any, m: int) -> dict[str, Any]:
    """Error-vs-sweep of the composite and agent 0's flow (standardised units), and composite
    trajectories on the slice of coordinates ``(0, d // 2)`` (state units), at the last step."""
    h = test.histories[:m]
    emb = recon.encode(h)[:, -1]
    z = recon.to_z(test.states[:m, -1])
    den = BoundDenoiser(recon.net, emb)
    comp = recon.flow_bound(den, None, target=z, record=True)
    single = recon.flow_bound(den, [0], target=z, record=True)
    traj = recon.to_state(comp.trajectory[:, :8]).numpy()  # [S+1, 8, d]
    dims = [0, traj.shape[-1] // 2]  # a 2-D slice (linear-Gaussian: one coordinate seen by each of two agents)
    return {"composite_error": comp.errors, "agent0_error": single.errors, "sigmas": comp.sigmas,
            "slice": dims, "trajectory": traj[..., dims].tolist(), "truth": test.states[:8, -1][:, dims].tolist()}
