"""Data-market net, several buyers: a RegretNet-style network that outputs an experiment and a
payment for every buyer.

Following Ravindranath, Jiang and Parkes ("Data Market Design through Deep Learning"), buyers
report values v (normalised to [-1, 1] on their support) and an MLP outputs, for every buyer i,

- an experiment E_i(v)(s | w) = softmax_s(z_i(w, s)) (row-stochastic by construction; signals
  are action recommendations), and
- a payment fraction f_i(v) = sigmoid(.) in [0, 1] of the buyer's surplus over its outside option:
  p_i = f_i * max(0, v_i (q_i - alpha sum_{j != i} q_j) - v_i (m - alpha (n - 1))),
  so ex post IR holds by construction (q_i = the probability buyer i's action matches the state).

Two incentive notions (``setting.incentive``):

- **ex post IC**: buyer i learns its experiment and best-responds to it, q_i = sum_s max_w
  prior_w E_i(s | w); obedience is then built in (a recommendation is just a relabelled signal).
  IC is penalised through the ex post regret rgt_i = E_v[max_{v'_i} u_i(v'_i, v_-i; v_i) - u_i(v; v_i)],
  with misreports v'_i searched on a jittered grid of ``misreports`` points plus local moves.
- **Bayesian IC**: buyer i only knows its value, so its signal is read through the interim
  experiment Ebar_i(v_i) = E_{v_-i}[E_i(v)]; the others obey, q_j = sum_w prior_w E_j(w | w).
  Interim obedience (following Ebar_i's recommendation is optimal) and interim regret (with
  ``others`` draws of v_-i) are both constraints.

The loss is the augmented Lagrangian -revenue + sum_c lambda_c g_c + rho/2 sum_c g_c^2 over the
constraint violations g (``infozoo.core.lagrangian.AugmentedLagrangian``: lambda updated every
``update_every`` steps, rho grown every ``rho_every`` steps).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from infozoo.core.lagrangian import AugmentedLagrangian
from infozoo.core.progress import progress
from infozoo.core.seeding import torch_generator
from infozoo.core.torch_utils import exact_rows, mlp
from infozoo.envs.data_market.experiments import SchemeOutcome, expected_payoff, make_obedient
from infozoo.envs.data_market.metrics import interim_obedience, interim_utility, misreport_utility, utilities
from infozoo.envs.data_market.settings import DataMarketSetting


class MultiNet(torch.nn.Module):
    """MLP: normalised values [B, n] -> experiment logits [B, n, k, k] and payment fractions [B, n]."""

    def __init__(self, buyers: int, states: int, hidden: tuple[int, ...], low: torch.Tensor,
                 high: torch.Tensor) -> None:
        super().__init__()
        self.buyers, self.states = buyers, states
        self.body = mlp([buyers, *hidden, buyers * (states * states + 1)], activation=torch.nn.Tanh)
        self.register_buffer("low", low.clone())
        self.register_buffer("high", high.clone())

    def forward(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, k = self.buyers, self.states
        x = 2 * (v - self.low) / (self.high - self.low) - 1
        out = self.body(x)
        logits = out[:, :n * k * k].reshape(-1, n, k, k)
        return torch.softmax(logits, dim=-1), torch.sigmoid(out[:, n * k * k:])


class MultiMechanism:
    """The trained network as a data-market mechanism: reports [B, n, 1] -> ``SchemeOutcome``.
    IR holds by construction; IC and (Bayesian) obedience only approximately."""

    strategyproof = False

    def __init__(self, setting: DataMarketSetting, net: MultiNet) -> None:
        self.setting = setting
        self.net = net
        self.name = "data-market-net (multi)"
        self._dtype = next(net.parameters()).dtype
        self.relabel = True  # report signals as recommendations (ex post); off while training

    def __call__(self, reports: torch.Tensor) -> SchemeOutcome:
        s = self.setting
        v = s.clip(reports)[..., 0].to(self._dtype)
        exp, frac = self.net(v)
        prior = s.prior_vector(exp.dtype)
        q = expected_payoff(prior, exp, torch.eye(s.states, dtype=exp.dtype), obedient=s.incentive == "bayesian")
        surplus = v * (q - s.externality * (q.sum(-1, keepdim=True) - q) - s.outside_option())
        pay = frac * surplus.clamp_min(0)
        if self.relabel and s.incentive == "ex-post":  # signals := the buyer's best response (same value)
            exp = make_obedient(prior, exp, torch.eye(s.states, dtype=exp.dtype))
        return SchemeOutcome(exact_rows(exp).to(reports.dtype), pay.to(reports.dtype))


def _misreports(setting: DataMarketSetting, v: torch.Tensor, i: int, count: int, local: int,
                g: torch.Generator) -> torch.Tensor:
    """Training misreports of buyer i [B, count + local, 1]: a jittered grid over the support and
    ``local`` Gaussian moves around the true value."""
    B = v.shape[0]
    low, high = float(setting.low()[i, 0]), float(setting.high()[i, 0])
    if setting.values.kind != "uniform":
        high = float(setting.values.buyer(i).quantile(torch.tensor(0.995, dtype=torch.float64)))
    width = (high - low) / count
    grid = low + width * (torch.arange(count, dtype=v.dtype) + torch.rand(B, count, generator=g, dtype=v.dtype))
    near = v[:, i:i + 1] + 0.05 * (high - low) * torch.randn(B, local, generator=g, dtype=v.dtype)
    return torch.cat([grid, near.clamp(low, high)], 1).unsqueeze(-1)


def expost_losses(setting: DataMarketSetting, mech: MultiMechanism, v: torch.Tensor, cfg: Any,
                  g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Revenue and the ex post regret of every buyer [n] on a batch of profiles v [B, n, 1]."""
    out = mech(v)
    u = utilities(setting, v, out)
    rgt = []
    for i in range(setting.buyers):
        mis = _misreports(setting, v[..., 0], i, cfg.misreports, cfg.local_misreports, g)
        um = misreport_utility(setting, mech, v, i, mis)
        rgt.append((um.amax(1) - u[:, i]).clamp_min(0).mean())
    return out.payment.sum(-1).mean(), torch.stack(rgt)


def bayesian_losses(setting: DataMarketSetting, mech: MultiMechanism, v: torch.Tensor, cfg: Any,
                    g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Revenue, then interim regret [n] and interim obedience violations [n] stacked, for a batch:
    buyer i's value v[:, i] with ``cfg.others`` draws of the others' values each."""
    B, n, d = v.shape
    M = cfg.others
    revs, rgts, obs = [], [], []
    for i in range(n):
        prof = setting.sample(B * M, g, v.dtype).reshape(B, M, n, d)
        prof[:, :, i, :] = v[:, None, i, :]
        out = mech(prof.reshape(-1, n, d))
        e = out.experiment.reshape(B, M, n, setting.states, setting.states)
        p = out.payment.reshape(B, M, n)
        revs.append(p.sum(-1).mean())
        truthful = interim_utility(setting, v[:, i, 0], i, e, p)
        obs.append(interim_obedience(setting, v[:, i, 0], i, e).mean())
        mis = _misreports(setting, v[..., 0], i, cfg.misreports, cfg.local_misreports, g)  # [B, G, 1]
        G = mis.shape[1]
        rep = prof.unsqueeze(1).expand(B, G, M, n, d).clone()
        rep[:, :, :, i, :] = mis[:, :, None, :]
        out_m = mech(rep.reshape(-1, n, d))
        e_m = out_m.experiment.reshape(B * G, M, n, setting.states, setting.states)
        p_m = out_m.payment.reshape(B * G, M, n)
        u_m = interim_utility(setting, v[:, i, 0].repeat_interleave(G), i, e_m, p_m).reshape(B, G)
        rgts.append((u_m.amax(1) - truthful).clamp_min(0).mean())
    return torch.stack(revs).mean(), torch.cat([torch.stack(rgts), torch.stack(obs)])


def train_multi(setting: DataMarketSetting, cfg: Any) -> tuple[MultiMechanism, dict[str, Any]]:
    """Fit the several-buyer network under ``cfg`` (see ``train.Config``); returns the mechanism
    and a report (train time, final revenue and constraint violations on the training batches)."""
    t0 = time.perf_counter()
    g = torch_generator(cfg.seed)
    torch.manual_seed(cfg.seed)
    dtype = torch.float64 if cfg.float64 else torch.float32
    low, high = setting.low(dtype)[:, 0], setting.high(dtype)[:, 0]
    if setting.values.kind != "uniform":
        high = torch.stack([setting.values.buyer(i).quantile(torch.tensor(0.99, dtype=torch.float64))
                            for i in range(setting.buyers)]).to(dtype)
    net = MultiNet(setting.buyers, setting.states, tuple(cfg.hidden), low, high).to(dtype)
    mech = MultiMechanism(setting, net)
    mech.relabel = False
    bayes = setting.incentive == "bayesian"
    n_con = setting.buyers * (2 if bayes else 1)
    al = AugmentedLagrangian(n_con, rho=cfg.rho, rho_growth=cfg.rho_growth, rho_max=cfg.rho_max,
                             update_every=cfg.update_every, rho_every=cfg.rho_every, lam_init=cfg.lam_init)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(cfg.steps, 1), eta_min=cfg.lr_final)
    losses = bayesian_losses if bayes else expost_losses
    batch = cfg.batch_bayesian if bayes else cfg.batch
    bar = progress(range(cfg.steps), desc=f"data-market-net ({setting.incentive})")
    hist: list[tuple[float, list[float]]] = []
    for step in bar:
        v = setting.sample(batch, g, dtype)
        rev, con = losses(setting, mech, v, cfg, g)
        loss = -rev + al.penalty(con)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        al.step(con)
        hist.append((float(rev.detach()), con.detach().tolist()))
        if step % 50 == 0:
            rgt = float(con[:setting.buyers].detach().mean())
            bar.set_postfix(revenue=f"{float(rev.detach()):.4f}", rgt=f"{rgt:.2e}", rho=f"{al.rho:.0f}")
    last = hist[-max(1, cfg.steps // 20):]
    report = {"train_time": time.perf_counter() - t0,
              "train_revenue": sum(h[0] for h in last) / len(last),
              "train_regret": sum(sum(h[1][:setting.buyers]) / setting.buyers for h in last) / len(last),
              "lagrange_multipliers": al.lam.tolist(), "rho": al.rho,
              "train_regret_budget": (f"{cfg.misreports} jittered grid + {cfg.local_misreports} local "
                                      "misreports per buyer and profile"
                                      + (f", {cfg.others} draws of the others" if bayes else ""))}
    if bayes:
        report["train_obedience_violation"] = sum(sum(h[1][setting.buyers:]) for h in last) / len(last)
    net.eval()
    mech.relabel = True
    return mech, report
