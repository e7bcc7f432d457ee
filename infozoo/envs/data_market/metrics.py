"""Data-market metrics, batched: revenue, welfare, IR and obedience violations, IC regret.

For a batch of truthful type profiles and the mechanism's outcome (experiments E_i, payments p_i):

- one buyer (prior theta, scale v): utility u = v V(theta, E) - p, with V the best-response value
  of ``experiments.value``; IR violation max(0, -u); welfare v V(theta, E).
- several buyers: with q_i = P(a_i = w) when buyer i best-responds to E_i,
  u_i = v_i (q_i - alpha sum_{j != i} q_j) - p_i; IR is measured against the outside option
  v_i (m - alpha (n - 1)); welfare is sum_i v_i (q_i - alpha sum_{j != i} q_j).
- obedience violation: what a buyer gains by disobeying the recommendations (payoff units), per
  buyer, summed. For Bayesian IC settings the relevant (interim) violation averages buyer i's
  experiment over the others' values; both the interim and the ex post figure are reported.
- regret (IC): the best gain from misreporting, searched over a grid of ``regret_grid`` misreports
  and ``regret_restarts`` random starts refined by ``regret_steps`` Adam steps (when the mechanism
  is differentiable). Ex post: per profile; Bayesian: in expectation over ``regret_others`` draws
  of the others' values. Menu mechanisms (one buyer) get the exact best response over the menu.
  The budget is always reported with the number.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from infozoo.core.seeding import torch_generator
from infozoo.envs.data_market.experiments import SchemeOutcome, expected_payoff, obedience_violation, value
from infozoo.envs.data_market.settings import DataMarketSetting


def run_chunked(mechanism: Any, reports: torch.Tensor, chunk: int = 50_000) -> SchemeOutcome:
    """Evaluate ``mechanism`` on a large batch in chunks, without gradients."""
    with torch.no_grad():
        parts = [mechanism(reports[s:s + chunk]) for s in range(0, reports.shape[0], chunk)]
    return SchemeOutcome(torch.cat([p.experiment.to(reports.dtype) for p in parts]),
                         torch.cat([p.payment.to(reports.dtype) for p in parts]))


def match_probability(setting: DataMarketSetting, experiment: torch.Tensor) -> torch.Tensor:
    """q = P(action = state) when best-responding to ``experiment`` [..., k, S] under the common prior."""
    prior = setting.prior_vector(experiment.dtype)
    return expected_payoff(prior, experiment, torch.eye(setting.states, dtype=experiment.dtype))


def utilities(setting: DataMarketSetting, types: torch.Tensor, outcome: SchemeOutcome) -> torch.Tensor:
    """Every buyer's utility [B, n] under its true ``types`` [B, n, d] (best-responding)."""
    return gains(setting, types, outcome.experiment) - outcome.payment.to(types.dtype)


def gains(setting: DataMarketSetting, types: torch.Tensor, experiment: torch.Tensor) -> torch.Tensor:
    """Payoff of every buyer before payments [B, n] (one buyer: the value of information)."""
    if not setting.multi:
        k = setting.states
        scale = types[..., k] if setting.scale is not None else 1.0
        return scale * value(types[..., :k], experiment.to(types.dtype), setting.payoff_matrix(types.dtype))
    q = match_probability(setting, experiment.to(types.dtype))  # [B, n]
    return types[..., 0] * (q - setting.externality * (q.sum(-1, keepdim=True) - q))


def outside_option(setting: DataMarketSetting, types: torch.Tensor) -> torch.Tensor:
    """Each buyer's outside option [B, n]: 0 for one buyer, v_i (m - alpha (n - 1)) for several."""
    if not setting.multi:
        return torch.zeros(types.shape[:2], dtype=types.dtype)
    return types[..., 0] * setting.outside_option()


def obedience(setting: DataMarketSetting, types: torch.Tensor, experiment: torch.Tensor) -> torch.Tensor:
    """Ex post obedience violation per buyer [B, n], in payoff units."""
    k = setting.states
    if not setting.multi:
        scale = types[..., k] if setting.scale is not None else 1.0
        return scale * obedience_violation(types[..., :k], experiment, setting.payoff_matrix(types.dtype))
    prior = setting.prior_vector(types.dtype)
    return types[..., 0] * obedience_violation(prior, experiment, torch.eye(k, dtype=types.dtype))


# ---- regret ---------------------------------------------------------------------------------------


def menu_regret(setting: DataMarketSetting, mechanism: Any, types: torch.Tensor) -> torch.Tensor:
    """Exact regret [B, 1] of a one-buyer menu mechanism: best item (or nothing) minus the chosen."""
    with torch.no_grad():
        exps, prices = mechanism.menus(types)  # [B, 1, K, k, S], [B, 1, K]
        K = exps.shape[2]
        t = types.unsqueeze(2).expand(-1, -1, K, -1)
        g = gains(setting, t.reshape(-1, 1, t.shape[-1]), exps.reshape(-1, 1, *exps.shape[-2:]))
        best = (g.reshape(prices.shape) - prices).amax(-1).clamp_min(0)
        truthful = utilities(setting, types, run_chunked(mechanism, types))
    return (best - truthful).clamp_min(0)


def misreport_utility(setting: DataMarketSetting, mechanism: Any, types: torch.Tensor, i: int,
                       mis: torch.Tensor) -> torch.Tensor:
    """Utility [P, G] of buyer i with true profile ``types`` [P, n, d] reporting ``mis`` [P, G, d]."""
    P, n, d = types.shape
    G = mis.shape[1]
    reports = types.unsqueeze(1).expand(P, G, n, d).clone()
    reports[:, :, i, :] = mis
    out = mechanism(setting.clip(reports.reshape(P * G, n, d)))
    truth = types.unsqueeze(1).expand(P, G, n, d).reshape(P * G, n, d)
    u = gains(setting, truth, out.experiment.to(types.dtype)) - out.payment.to(types.dtype)
    return u[:, i].reshape(P, G)


def _grid(setting: DataMarketSetting, i: int, size: int, dtype: torch.dtype) -> torch.Tensor:
    """``size`` misreports spanning buyer i's type box [size, d] (prior vectors for one buyer)."""
    low, high = setting.low(dtype)[i], setting.high(dtype)[i]
    t = torch.linspace(0, 1, size, dtype=dtype)
    if setting.multi:
        hi = high[0] if setting.values.kind == "uniform" else setting.values.buyer(i).quantile(
            torch.tensor(0.999, dtype=dtype))
        return (low[0] + t * (hi - low[0])).unsqueeze(-1)
    if setting.states == 2 and setting.scale is None:
        return torch.stack([t, 1 - t], -1)
    g = torch.Generator().manual_seed(12345)
    return setting.sample(size, g, dtype)[:, 0, :]


def search_regret(setting: DataMarketSetting, mechanism: Any, types: torch.Tensor, grid: int = 101,
                  restarts: int = 10, steps: int = 50, lr: float = 0.02, generator: torch.Generator | None = None,
                  chunk: int = 128) -> torch.Tensor:
    """Ex post regret [B, n] by grid + gradient search over each buyer's misreport."""
    B, n, d = types.shape
    with torch.no_grad():
        truthful = utilities(setting, types, run_chunked(mechanism, types))
    best = truthful.clone()
    low, high = setting.low(types.dtype), setting.high(types.dtype)
    for i in range(n):
        grid_i = _grid(setting, i, grid, types.dtype)
        for s in range(0, B, chunk):
            t = types[s:s + chunk]
            b = t.shape[0]
            with torch.no_grad():
                u = misreport_utility(setting, mechanism, t, i, grid_i.expand(b, -1, -1))
                top = u.amax(1)
            if restarts > 0:
                start = setting.sample(b * restarts, generator, types.dtype)[:, min(i, setting.buyers - 1), :]
                mis = start.reshape(b, restarts, d).clone().requires_grad_(True)
                opt = torch.optim.Adam([mis], lr=lr * float((high[i] - low[i]).max()))
                for _ in range(steps + 1):
                    u = misreport_utility(setting, mechanism, t, i, mis)
                    top = torch.maximum(top, u.detach().amax(1))
                    if not u.requires_grad or steps == 0:
                        break
                    opt.zero_grad()
                    (-u.sum()).backward()
                    opt.step()
                    with torch.no_grad():
                        mis.copy_(torch.clamp(mis, low[i], high[i]) if setting.multi else setting.clip(mis))
            best[s:s + chunk, i] = torch.maximum(best[s:s + chunk, i], top)
    return (best - truthful).clamp_min(0)


def interim_utility(setting: DataMarketSetting, v_i: torch.Tensor, i: int, experiment: torch.Tensor,
                    payment: torch.Tensor) -> torch.Tensor:
    """Bayesian IC: buyer i's interim utility [B] when its value is ``v_i`` [B] and the outcomes of
    ``M`` draws of the others' values are ``experiment`` [B, M, n, k, S] and ``payment`` [B, M, n].
    Buyer i sees only its signal, so it best-responds to the interim experiment
    Ebar_i = E_M[E_i]; the others are truthful and obedient (match probability sum_w prior_w E_j(w|w))."""
    prior = setting.prior_vector(experiment.dtype)
    eye = torch.eye(setting.states, dtype=experiment.dtype)
    own = expected_payoff(prior, experiment[:, :, i].mean(1), eye)  # [B]
    q = expected_payoff(prior, experiment, eye, obedient=True)  # [B, M, n]
    ext = (q.sum(-1) - q[..., i]).mean(1)
    return v_i * (own - setting.externality * ext) - payment[:, :, i].mean(1)


def interim_obedience(setting: DataMarketSetting, v_i: torch.Tensor, i: int, experiment: torch.Tensor) -> torch.Tensor:
    """Interim obedience violation [B] of buyer i: on Ebar_i = E_M[E_i], in payoff units."""
    prior = setting.prior_vector(experiment.dtype)
    eye = torch.eye(setting.states, dtype=experiment.dtype)
    return v_i * obedience_violation(prior, experiment[:, :, i].mean(1), eye)


def interim_regret(setting: DataMarketSetting, mechanism: Any, types: torch.Tensor, others: int = 64,
                   grid: int = 51, generator: torch.Generator | None = None,
                   chunk: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Bayesian IC regret [B, n] and interim obedience violation [B, n]: buyer i knows its value,
    the others' values are ``others`` fresh draws; misreports searched on a ``grid``."""
    B, n, d = types.shape
    regret = torch.zeros(B, n, dtype=types.dtype)
    ob = torch.zeros(B, n, dtype=types.dtype)
    with torch.no_grad():
        for i in range(n):
            grid_i = _grid(setting, i, grid, types.dtype)  # [G, d]
            G = grid_i.shape[0]
            for s in range(0, B, chunk):
                t = types[s:s + chunk]
                b = t.shape[0]
                prof = setting.sample(b * others, generator, types.dtype).reshape(b, others, n, d)
                prof[:, :, i, :] = t[:, None, i, :]
                out = mechanism(prof.reshape(-1, n, d))
                e = out.experiment.to(types.dtype).reshape(b, others, n, *out.experiment.shape[-2:])
                p = out.payment.to(types.dtype).reshape(b, others, n)
                v_i = t[:, i, 0]
                truthful = interim_utility(setting, v_i, i, e, p)
                ob[s:s + chunk, i] = interim_obedience(setting, v_i, i, e)
                rep = prof.unsqueeze(1).expand(b, G, others, n, d).clone()
                rep[:, :, :, i, :] = grid_i[None, :, None, :]
                out_m = mechanism(rep.reshape(-1, n, d))
                e_m = out_m.experiment.to(types.dtype).reshape(b * G, others, n, *out.experiment.shape[-2:])
                p_m = out_m.payment.to(types.dtype).reshape(b * G, others, n)
                u_m = interim_utility(setting, v_i.repeat_interleave(G), i, e_m, p_m).reshape(b, G)
                regret[s:s + chunk, i] = (u_m.amax(1) - truthful).clamp_min(0)
    return regret, ob


def _content(setting: DataMarketSetting) -> dict[str, Any]:
    return {k: v for k, v in setting.to_dict().items() if k != "name"}


# ---- the evaluation behind `infozoo eval` and the table ---------------------------------------------------


def evaluate(setting: DataMarketSetting | str, mechanism: Any, n: int = 100_000, seed: int = 0,
             regret_restarts: int = 10, regret_steps: int = 50, regret_lr: float = 0.02,
             regret_profiles: int = 1000, regret_grid: int = 101, regret_others: int = 64,
             **_: Any) -> dict[str, Any]:
    """Evaluate ``mechanism`` on ``setting`` with truthful reports; returns the metrics as a dict.

    Discrete one-buyer settings are enumerated exactly (every type with its probability);
    otherwise ``n`` profiles are drawn under ``seed``. Keys: ``revenue``, ``welfare``,
    ``ir_violation``, ``obedience_violation`` (interim for Bayesian IC settings),
    ``obedience_violation_ex_post``, ``regret_mean``, ``regret_max``, ``regret_budget`` and more.
    """
    from infozoo.registry import load_setting, make_mechanism

    setting = load_setting(setting, domain="data-market")
    mechanism = make_mechanism(mechanism, setting)
    built_for = getattr(mechanism, "setting", None)
    if built_for is not None and _content(built_for) != _content(setting):
        raise ValueError(f"the mechanism was built for setting {built_for.name or built_for.to_dict()}, "
                         f"not for {setting.name or setting.to_dict()}")
    g = torch_generator(seed)
    weights = None
    if setting.discrete:
        types, weights = setting.type_space()
    else:
        types = setting.sample(n, g)
    out = run_chunked(mechanism, types)
    if not (torch.isfinite(out.payment).all() and torch.isfinite(out.experiment).all()):
        raise ValueError("mechanism returned non-finite experiments or payments")
    exp = out.experiment
    stoch = float(((exp.sum(-1) - 1).abs().max()).clamp_min(0) + (-exp).clamp_min(0).max())
    u = utilities(setting, types, out)
    irv = (outside_option(setting, types) - u).clamp_min(0).sum(-1)
    obv = obedience(setting, types, exp).sum(-1)
    rev = out.payment.sum(-1)
    wel = gains(setting, types, exp).sum(-1)

    def mean(x: torch.Tensor, w: torch.Tensor | None = None) -> float:
        return float((x * w).sum() / w.sum()) if w is not None else float(x.mean())

    rtypes = types if setting.discrete else types[:regret_profiles]
    rw = weights
    ob_interim = None
    if hasattr(mechanism, "menus") and getattr(mechanism, "strategyproof", False):
        rgt = menu_regret(setting, mechanism, rtypes)
        budget = f"exact best response over the menu on {rtypes.shape[0]} profiles"
    elif setting.multi and setting.incentive == "bayesian":
        rtypes = rtypes[:max(1, min(len(rtypes), regret_profiles // 4))]
        rgt, ob_i = interim_regret(setting, mechanism, rtypes, regret_others, regret_grid, g)
        ob_interim = mean(ob_i.sum(-1))
        budget = (f"interim: {rtypes.shape[0]} profiles x {regret_others} draws of the others x "
                  f"{regret_grid} grid misreports")
    else:
        rgt = search_regret(setting, mechanism, rtypes, regret_grid, regret_restarts, regret_steps, regret_lr, g)
        budget = (f"grid {regret_grid} misreports + {regret_restarts} restarts x {regret_steps} Adam steps "
                  f"(lr {regret_lr} x range) on {rtypes.shape[0]} profiles")
    per_profile = rgt.mean(-1)
    stderr = 0.0 if weights is not None else float(rev.std() / math.sqrt(max(len(rev), 1)))
    return {
        "revenue": mean(rev, weights),
        "revenue_stderr": stderr,
        "welfare": mean(wel, weights),
        "ir_violation": mean(irv, weights),
        "ir_violation_max": float(irv.max()),
        "obedience_violation": ob_interim if ob_interim is not None else mean(obv, weights),
        "obedience_violation_ex_post": mean(obv, weights),
        "stochasticity_error_max": stoch,
        "regret_mean": mean(per_profile, rw),
        "regret_max": float(rgt.max()),
        "regret_budget": budget,
        "n": int(types.shape[0]),
        "exact": weights is not None,
        "incentive": "ex-post" if not setting.multi else setting.incentive,
        "strategyproof_by_construction": bool(getattr(mechanism, "strategyproof", False)),
        "setting": setting.name or setting.to_dict(),
        "seed": seed,
    }
