"""Exact optima of data markets: closed forms, a linear program for one buyer, and the
virtual-value optimum for several buyers with an externality.

**One buyer** (Bergemann, Bonatti and Smolin, "The Design and Price of Information", AER 2018).
By the revelation principle the seller offers one experiment per type whose signals are
recommendations the buyer of that type obeys. For a finite set of types t (prior theta_t, scale
v_t, probability f_t) the optimal menu solves the linear program

    max  sum_t f_t p_t   over experiments E_t (row-stochastic) and prices p_t
    s.t. obedience:  sum_w theta_tw E_t(s|w) (u(w,s) - u(w,a)) >= 0           for all t, s, a
         IR:         U_t = v_t (sum_{w,s} theta_tw E_t(s|w) u(w,s) - P_t) - p_t >= 0
         IC:         U_t >= v_t (sum_{w,s} theta_tw E_r(s|w) u(w, sigma(s)) - P_t) - p_r
                     for every other item r and every decision rule sigma: signals -> actions,

with P_t = max_a sum_w theta_tw u(w, a). A deviating type best-responds to the other item's
signals, and max over sigma of a linear function is enforced by one linear constraint per sigma,
so the program is linear. Continuous priors are solved on a grid of types (two states: midpoints
weighted by the density; k states: a seeded sample; enlarged types (theta, v): that grid times five
scales), so for them the LP menu is a near-optimal baseline whose in-grid revenue is only
approximately the optimum; ``menu_lp`` returns the menu.

Closed forms (binary state, matching payoff, theta = P(w = 0)):

- theta ~ U[0, 1]: sell only full information at price 1/4, bought by theta in [1/4, 3/4];
  revenue p (1 - 2p) at p = 1/4, i.e. 1/8.
- Two types theta_L < 1/2 < theta_H with theta_L < 1 - theta_H (so the high type values
  information more) and P(theta_H) = mu: if mu > theta_L / theta_H the high type gets full
  information at its value 1 - theta_H and the low type the experiment with pi2 = P(s2|w2) = 1
  and pi1 = P(s1|w1) = (2 theta_H - 1) / (theta_H - theta_L) at its value theta_L pi1: the largest
  pi1 that leaves the high type no rent from it; otherwise full information at theta_L to both.

**Several buyers with a negative externality** (the competitive setting of Bonatti, Dahleh,
Horner and Saeedi, as learned in Ravindranath, Jiang and Parkes' "Data Market Design through Deep
Learning"). Buyer i's payoff is v_i (x_i - alpha sum_{j != i} x_j) with a common prior of top
probability m = max_w prior_w, outside option v_i (m - alpha (n - 1)). Giving buyer i the mixture
of full information (weight y_i) and the uninformative experiment makes it match with probability
q_i = m + (1 - m) y_i, so its allocation over the outside option is
a_i = (1 - m) (y_i - alpha sum_{j != i} y_j + alpha (n - 1)). Myerson's argument (independent
values, linear utility, IR binding at the lowest value) gives revenue E[sum_i phi_i a_i], which is
maximised pointwise by y_i = 1[phibar_i > alpha sum_{j != i} phibar_j] (phibar the ironed
virtual values; this rule is monotone), so

    OPT = (1 - m) (E[sum_i (phibar_i - alpha sum_{j != i} phibar_j)^+] + alpha (n - 1) sum_i low_i).

For U[0, 1] values and alpha <= 1 this is (1 - m)(1 + alpha^2 / 3) / 2 (13/48 at m = alpha = 1/2),
and OPT(alpha) = alpha OPT(1 / alpha) for symmetric distributions. Payments are Myerson's
p_i = v_i a_i(v) - int_{low}^{v_i} a_i(z, v_{-i}) dz, with a_i a step function of z.
*Bayesian IC baseline*: the same argument bounds the revenue of every Bayesian IC, interim IR
mechanism, and the optimum above is ex post IC, so it is also the Bayesian IC optimum; it is the
baseline the Bayesian variant of the data-market net is measured against.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from infozoo.envs.data_market.experiments import (
    SchemeOutcome,
    best_response,
    check_experiment,
    full_information,
    prior_action,
    uninformative,
    value,
)
from infozoo.envs.data_market.settings import DataMarketSetting, Values

# ---- closed forms ---------------------------------------------------------------------------------


def uniform_one_buyer() -> dict[str, float]:
    """theta ~ U[0, 1]: the optimal menu is full information at 1/4; revenue 1/8."""
    return {"price": 0.25, "revenue": 0.125, "low": 0.25, "high": 0.75}


def two_types(theta_l: float, theta_h: float, mu_h: float) -> dict[str, float | bool]:
    """The optimal menu for two types theta_L, theta_H (theta = P(w = 0)), P(theta_H) = mu_h."""
    if not (0 < theta_l < 0.5 < theta_h < 1 and theta_l < 1 - theta_h and 0 <= mu_h <= 1):
        raise ValueError("the two-type closed form needs 0 < theta_L < 1/2 < theta_H < 1, theta_L < 1 - theta_H "
                         f"and P(theta_H) in [0, 1]; got {theta_l}, {theta_h}, {mu_h} (use menu_lp otherwise)")
    pi1 = (2 * theta_h - 1) / (theta_h - theta_l)
    discriminate = mu_h > theta_l / theta_h
    if discriminate:
        price_l, price_h = theta_l * pi1, 1 - theta_h
        revenue = (1 - mu_h) * price_l + mu_h * price_h
        return {"discriminate": True, "pi1": pi1, "pi2": 1.0, "price_low": price_l, "price_high": price_h,
                "revenue": revenue}
    return {"discriminate": False, "pi1": 1.0, "pi2": 1.0, "price_low": theta_l, "price_high": theta_l,
            "revenue": theta_l}


def two_buyer_uniform_revenue(alpha: float, theta: float = 0.5) -> float:
    """Ex post IC optimum for two U[0, 1] buyers, binary state with prior (theta, 1 - theta):
    (1 - m)(1 + alpha^2 / 3) / 2 for alpha <= 1, alpha OPT(1 / alpha) above."""
    if alpha < 0:
        raise ValueError(f"externality alpha must be >= 0, got {alpha}")
    m = max(theta, 1 - theta)
    if alpha <= 1:
        return (1 - m) * (1 + alpha**2 / 3) / 2
    return alpha * two_buyer_uniform_revenue(1 / alpha, theta)


# ---- virtual values (ironed) ---------------------------------------------------------------------


class VirtualValue:
    """phibar(v) for one buyer's value distribution: exact for uniform (2v - high) and exponential
    (v - 1/rate); otherwise ironed numerically: H(q) = low - (1 - q) F^{-1}(q) on a quantile grid,
    its lower convex hull, and phibar = the hull's slope at q = F(v)."""

    def __init__(self, dist: Values, grid: int = 20_001) -> None:
        self.dist = dist
        self.low = dist.support()[0]
        self.exact = dist.kind in ("uniform", "exponential")
        if not self.exact:
            q = torch.linspace(0, 1, grid, dtype=torch.float64)[:-1]
            v = dist.quantile(q)
            h = self.low - (1 - q) * v
            hq, hh = _lower_hull(q.numpy(), h.numpy())
            self._q = torch.tensor(hq)
            self._slope = torch.tensor(np.diff(hh) / np.diff(hq))
            # value grid and phibar on it, for the inverse
            self._v = v
            self._phi = self(v)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        d = self.dist
        if d.kind == "uniform":
            return 2 * v - d.high[0]
        if d.kind == "exponential":
            return v - 1 / d.rate
        q = d.cdf(v).to(torch.float64)
        idx = torch.searchsorted(self._q, q.contiguous(), right=True).clamp(1, len(self._slope)) - 1
        return self._slope[idx].to(v.dtype)

    def threshold(self, c: torch.Tensor) -> torch.Tensor:
        """inf {z >= low : phibar(z) > c} (the value above which the virtual value beats c)."""
        d = self.dist
        if d.kind == "uniform":
            z = (c + d.high[0]) / 2
        elif d.kind == "exponential":
            z = c + 1 / d.rate
        else:
            idx = torch.searchsorted(self._phi.contiguous(), c.to(torch.float64).contiguous(), right=True)
            v = torch.cat([self._v, self._v[-1:] * 10 + 1])
            z = v[idx.clamp(max=len(v) - 1)].to(c.dtype)
        return z.clamp_min(self.low)


def _lower_hull(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the lower convex hull of points sorted by x (Andrew's monotone chain)."""
    hull: list[int] = []
    for i in range(len(x)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (y[b] - y[a]) * (x[i] - x[a]) >= (y[i] - y[a]) * (x[b] - x[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    return x[hull], y[hull]


@functools.lru_cache(maxsize=64)
def virtual_values(setting: DataMarketSetting) -> tuple[VirtualValue, ...]:
    return tuple(VirtualValue(setting.values.buyer(i)) for i in range(setting.buyers))


def multi_buyer_revenue(setting: DataMarketSetting, grid: int = 4000, samples: int = 2_000_000,
                        seed: int = 0) -> float:
    """OPT of a several-buyer setting (see the module docstring): for two buyers by a midpoint
    rule on a ``grid`` x ``grid`` quantile grid, for more by Monte Carlo with ``samples`` draws."""
    if not setting.multi:
        raise ValueError("multi_buyer_revenue needs a setting with several buyers")
    n, alpha, m = setting.buyers, setting.externality, max(setting.common_prior)
    vv = virtual_values(setting)
    lows = sum(v.low for v in vv)
    if n == 2:
        q = (torch.arange(grid, dtype=torch.float64) + 0.5) / grid
        phis = [vv[i](setting.values.buyer(i).quantile(q)) for i in range(2)]
        total = ((phis[0][:, None] - alpha * phis[1][None, :]).clamp_min(0).mean()
                 + (phis[1][None, :] - alpha * phis[0][:, None]).clamp_min(0).mean())
    else:
        g = torch.Generator().manual_seed(seed)
        v = setting.values.sample(samples, n, g)
        phi = torch.stack([vv[i](v[:, i]) for i in range(n)], dim=-1)
        others = phi.sum(-1, keepdim=True) - phi
        total = (phi - alpha * others).clamp_min(0).sum(-1).mean()
    return float((1 - m) * (total + alpha * (n - 1) * lows))


# ---- the several-buyer optimum as a mechanism ---------------------------------------------------------


class VirtualValueMechanism:
    """The revenue-optimal ex post IC mechanism for several buyers with an externality: buyer i
    gets full information iff phibar_i > alpha sum_{j != i} phibar_j (else the uninformative
    experiment recommending the prior action), at Myerson's threshold payment. Ex post IR with
    respect to the outside option v_i (m - alpha (n - 1)); dominant-strategy IC."""

    strategyproof = True

    def __init__(self, setting: DataMarketSetting) -> None:
        if not setting.multi:
            raise ValueError("the virtual-value mechanism is for settings with several buyers")
        self.setting = setting
        self.name = "theory (virtual values)"
        self.vv = virtual_values(setting)
        prior = setting.prior_vector()
        self._full = full_information(setting.states)
        self._none = uninformative(setting.states, int(prior_action(prior, setting.payoff_matrix())))

    def allocation(self, v: torch.Tensor) -> torch.Tensor:
        """y [B, n] in {0, 1}: who gets full information."""
        phi = torch.stack([self.vv[i](v[:, i]) for i in range(v.shape[1])], dim=-1)
        others = phi.sum(-1, keepdim=True) - phi
        return (phi > self.setting.externality * others).to(v.dtype)

    def __call__(self, reports: torch.Tensor) -> SchemeOutcome:
        s = self.setting
        v = s.clip(reports)[..., 0]  # [B, n]
        B, n = v.shape
        alpha, m = s.externality, max(s.common_prior)
        y = self.allocation(v)
        phi = torch.stack([self.vv[i](v[:, i]) for i in range(n)], dim=-1)
        pay = torch.zeros_like(v)
        for i in range(n):
            low = self.vv[i].low
            others = phi.sum(-1) - phi[:, i]
            # y_i(z) = 1[z > tau_i]; for j != i, y_j(z) = 1[z < tau_ij]
            integral = (v[:, i] - self.vv[i].threshold(alpha * others)).clamp_min(0)
            for j in range(n):
                if j == i or alpha == 0:
                    continue
                rest = others - phi[:, j]
                c = (phi[:, j] - alpha * rest) / alpha  # y_j = 1 iff phibar_i(z) < c
                tau = self.vv[i].threshold(c)  # phibar_i(z) <= c for z <= tau (up to ties)
                integral = integral - alpha * (torch.minimum(v[:, i], tau) - low).clamp_min(0)
            integral = integral + alpha * (n - 1) * (v[:, i] - low)
            a_i = y[:, i] - alpha * (y.sum(-1) - y[:, i]) + alpha * (n - 1)
            pay[:, i] = (1 - m) * (v[:, i] * a_i - integral)
        exp = y[..., None, None] * self._full + (1 - y[..., None, None]) * self._none
        return SchemeOutcome(exp.to(reports.dtype), pay.to(reports.dtype))


TIE_TOL = 1e-9  # utilities this close count as ties (broken towards the higher price)


# ---- one buyer: menus ---------------------------------------------------------------------------


@dataclass
class Menu:
    """A menu of experiments [K, k, S] with prices [K] for one buyer, plus the free uninformative
    option. The buyer picks the item of highest utility scale * V(theta, E_k) - p_k (ties go to the
    higher price: the seller's choice among indifferent items); nothing if every utility is < 0.
    Truthful reporting is optimal by construction."""

    experiments: torch.Tensor
    prices: torch.Tensor
    payoff: torch.Tensor
    name: str = "menu"
    strategyproof: bool = True

    def __post_init__(self) -> None:
        k = self.payoff.shape[0]
        check_experiment(self.experiments, k, k)
        if self.prices.shape != self.experiments.shape[:1]:
            raise ValueError(f"a menu needs one price per experiment; got {tuple(self.prices.shape)} prices "
                             f"for {self.experiments.shape[0]} experiments")

    def menus(self, reports: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every buyer's menu: experiments [B, 1, K, k, S], prices [B, 1, K] (independent of reports)."""
        B = reports.shape[0]
        return (self.experiments.to(reports.dtype).expand(B, 1, *self.experiments.shape),
                self.prices.to(reports.dtype).expand(B, 1, -1))

    def utilities(self, types: torch.Tensor) -> torch.Tensor:
        """Utility of every item for types [B, d] (prior [k], then the scale if present), [B, K]."""
        k = self.payoff.shape[0]
        prior = types[:, :k]
        scale = types[:, k] if types.shape[1] > k else torch.ones_like(types[:, 0])
        vals = value(prior[:, None, :], self.experiments.to(types.dtype)[None], self.payoff.to(types.dtype))
        return scale[:, None] * vals - self.prices.to(types.dtype)[None]

    def choice(self, types: torch.Tensor) -> torch.Tensor:
        """Index of the chosen item per type, -1 for the free uninformative option, [B]."""
        u = torch.cat([torch.zeros_like(types[:, :1]), self.utilities(types)], dim=1)  # null first
        price = torch.cat([torch.zeros(1, dtype=types.dtype), self.prices.to(types.dtype)])
        best = u.max(dim=1, keepdim=True).values
        tie = u >= best - TIE_TOL
        score = torch.where(tie, price[None].expand_as(u), torch.full_like(u, -math.inf))
        return score.argmax(dim=1) - 1

    def __call__(self, reports: torch.Tensor) -> SchemeOutcome:
        types = reports[:, 0, :]
        c = self.choice(types)
        k = self.payoff.shape[0]
        # the free option recommends each type's own prior action (so it is obeyed)
        none = torch.nn.functional.one_hot(prior_action(types[:, :k], self.payoff.to(types.dtype)), k)
        none = none.to(reports.dtype).unsqueeze(1).expand(-1, k, -1)  # [B, k, S]
        exps = self.experiments.to(reports.dtype)[c.clamp_min(0)]
        exps = torch.where((c < 0)[:, None, None], none, exps)
        price = torch.where(c < 0, torch.zeros((), dtype=reports.dtype), self.prices.to(reports.dtype)[c.clamp_min(0)])
        return SchemeOutcome(exps.unsqueeze(1), price.unsqueeze(1))

    def pruned(self, types: torch.Tensor, weights: torch.Tensor | None = None, tol: float = 1e-7) -> Menu:
        """Drop items no type in ``types`` buys, merge duplicates, then greedily drop items whose
        removal does not lower the revenue on ``types`` by more than ``tol``."""
        keep = torch.unique(self.choice(types))
        keep = keep[keep >= 0]
        menu = Menu(self.experiments[keep], self.prices[keep], self.payoff, self.name)
        # merge duplicates (same experiment and price up to 1e-6)
        uniq: list[int] = []
        for i in range(len(menu.prices)):
            if not any(torch.allclose(menu.experiments[i], menu.experiments[j], atol=1e-6)
                       and abs(float(menu.prices[i] - menu.prices[j])) < 1e-6 for j in uniq):
                uniq.append(i)
        menu = Menu(menu.experiments[uniq], menu.prices[uniq], self.payoff, self.name)
        changed = True
        while changed and len(menu.prices) > 1:
            changed = False
            base = menu.revenue(types, weights)
            for i in range(len(menu.prices)):
                rest = [j for j in range(len(menu.prices)) if j != i]
                cand = Menu(menu.experiments[rest], menu.prices[rest], self.payoff, self.name)
                if cand.revenue(types, weights) >= base - tol:
                    menu, changed = cand, True
                    break
        return menu

    def obedient(self, types: torch.Tensor) -> Menu:
        """Relabel each item's signals as recommendations: signal s becomes the action its buyers
        (in ``types``) best-respond with (the most common rule among them). Buyers following that
        rule lose nothing, and for them the relabelled item is obedient."""
        k = self.payoff.shape[0]
        c = self.choice(types)
        exps = self.experiments.clone()
        for i in range(len(self.prices)):
            buyers = types[c == i, :k]
            if buyers.shape[0] == 0:
                continue
            br = best_response(buyers, self.experiments[i].to(types.dtype)[None], self.payoff.to(types.dtype))
            rules, counts = torch.unique(br, dim=0, return_counts=True)
            rule = rules[counts.argmax()]
            exps[i] = self.experiments[i] @ torch.nn.functional.one_hot(rule, k).to(exps.dtype)
        return Menu(exps, self.prices.clone(), self.payoff, self.name)

    def revenue(self, types: torch.Tensor, weights: torch.Tensor | None = None) -> float:
        price = torch.cat([torch.zeros(1, dtype=types.dtype), self.prices.to(types.dtype)])
        p = price[self.choice(types) + 1]
        return float((p * weights).sum() / weights.sum()) if weights is not None else float(p.mean())

    def describe(self) -> list[dict[str, object]]:
        """The menu as JSON-able items."""
        return [{"experiment": self.experiments[i].tolist(), "price": float(self.prices[i])}
                for i in range(len(self.prices))]


def _deviation_rules(k: int) -> np.ndarray:
    """Every decision rule sigma: signals -> actions, [R, k]."""
    return np.array(list(itertools.product(range(k), repeat=k)), dtype=np.int64)


def menu_lp(types: torch.Tensor, probs: torch.Tensor, payoff: torch.Tensor,
            scales: torch.Tensor | None = None) -> tuple[Menu, float]:
    """The revenue-optimal menu for finitely many types (prior vectors [T, k], probabilities [T],
    optional scales [T]) by the linear program of the module docstring, solved with HiGHS
    (scipy's ``linprog``; the constraint matrix is built vectorised, which PuLP could not do
    at this size). Returns the pruned menu and the optimal revenue."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    th = types.detach().cpu().double().numpy()
    f = probs.detach().cpu().double().numpy()
    u = payoff.detach().cpu().double().numpy()
    T, k = th.shape
    S = k
    v = np.ones(T) if scales is None else scales.detach().cpu().double().numpy()
    nE = T * k * S
    nvar = nE + T
    e_idx = np.arange(nE).reshape(T, k, S)
    P = (th @ u).max(-1)  # prior payoff per type
    # obedient coefficient of type t on its own item: v_t theta_tw u(w, s), [T, k, S]
    own = v[:, None, None] * th[:, :, None] * u[None, :, :S]  # u(w, s) with s as action
    rows, cols, vals, b = [], [], [], []
    r = 0

    def add(block_cols: np.ndarray, block_vals: np.ndarray, rhs: np.ndarray) -> None:
        nonlocal r
        n_rows = block_cols.shape[0]
        rows.append(np.repeat(np.arange(r, r + n_rows), block_cols.shape[1]))
        cols.append(block_cols.reshape(-1))
        vals.append(block_vals.reshape(-1))
        b.append(rhs)
        r += n_rows

    # IR: -own . E_t + p_t <= -v_t P_t
    add(np.concatenate([e_idx.reshape(T, -1), (nE + np.arange(T))[:, None]], 1),
        np.concatenate([-own.reshape(T, -1), np.ones((T, 1))], 1), -v * P)
    # obedience: -sum_w theta_tw E_t(s|w) (u(w,s) - u(w,a)) <= 0 for a != s
    for s_ in range(S):
        for a in range(k):
            if a == s_:
                continue
            coef = th * (u[:, s_] - u[:, a])[None, :]  # [T, k] over w
            add(e_idx[:, :, s_], -coef, np.zeros(T))
    # IC: for t != r', sigma: -own_t . E_t + p_t + dev_{t,sigma} . E_r' - p_r' <= 0
    tt, rr = np.nonzero(~np.eye(T, dtype=bool))
    for sigma in _deviation_rules(k):
        dev = v[:, None, None] * th[:, :, None] * u[:, sigma][None]  # [T, k, S]: u(w, sigma(s))
        c = np.concatenate([e_idx[tt].reshape(len(tt), -1), (nE + tt)[:, None],
                            e_idx[rr].reshape(len(rr), -1), (nE + rr)[:, None]], 1)
        w = np.concatenate([-own[tt].reshape(len(tt), -1), np.ones((len(tt), 1)),
                            dev[tt].reshape(len(tt), -1), -np.ones((len(tt), 1))], 1)
        add(c, w, np.zeros(len(tt)))
    A = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, nvar)).tocsr()
    # row sums of every experiment
    eq_rows = np.repeat(np.arange(T * k), S)
    A_eq = coo_matrix((np.ones(nE), (eq_rows, np.arange(nE))), shape=(T * k, nvar)).tocsr()
    c_obj = np.concatenate([np.zeros(nE), -f])
    bounds = [(0, 1)] * nE + [(None, None)] * T
    res = linprog(c_obj, A_ub=A, b_ub=np.concatenate(b), A_eq=A_eq, b_eq=np.ones(T * k), bounds=bounds,
                  method="highs")
    if res.status != 0:
        raise RuntimeError(f"menu LP failed: {res.message}")
    x = res.x
    exps = torch.tensor(x[:nE].reshape(T, k, S)).clamp(0, 1)
    exps = exps / exps.sum(-1, keepdim=True)
    prices = torch.tensor(x[nE:])
    menu = Menu(exps, prices, payoff.double(), "theory (menu LP)")
    return menu, float(-res.fun)


def type_grid(setting: DataMarketSetting, size: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Types [T, k] and probabilities [T] on which the one-buyer LP is solved: every type of a
    discrete prior; midpoints weighted by the density for two states; a seeded sample otherwise."""
    prior = setting.prior
    if prior.discrete:
        return prior.types()
    if setting.states == 2:
        theta = (torch.arange(size, dtype=torch.float64) + 0.5) / size
        if prior.kind == "uniform":
            w = torch.ones(size, dtype=torch.float64)
        else:
            w = sum(wt * _beta_pdf(theta, a, b) for wt, a, b in zip(prior.weights, prior.a, prior.b))
        return torch.stack([theta, 1 - theta], -1), w / w.sum()
    g = torch.Generator().manual_seed(seed)
    x = prior.sample(size, g)
    return x, torch.full((size,), 1 / size, dtype=torch.float64)


def _beta_pdf(x: torch.Tensor, a: float, b: float) -> torch.Tensor:
    logc = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    return torch.exp(logc + (a - 1) * torch.log(x) + (b - 1) * torch.log1p(-x))


@functools.lru_cache(maxsize=32)
def one_buyer_optimum(setting: DataMarketSetting, size: int | None = None) -> tuple[Menu, float]:
    """The optimal one-buyer menu and its revenue: closed form for the uniform prior and for two
    types, the LP otherwise (exact for discrete priors, on ``type_grid`` for continuous ones)."""
    if setting.multi:
        raise ValueError("one_buyer_optimum needs a one-buyer setting")
    payoff = setting.payoff_matrix()
    k = setting.states
    if setting.scale is not None:  # enlarged types (theta, v): a product grid, v at midpoints
        types, probs = type_grid(setting, size or (30 if k == 2 else 20))
        lo, hi = setting.scale
        v = lo + (torch.arange(5, dtype=torch.float64) + 0.5) / 5 * (hi - lo)
        t = types.repeat_interleave(5, 0)
        sc = v.repeat(types.shape[0])
        menu, rev = menu_lp(t, probs.repeat_interleave(5, 0) / 5, payoff, sc)
        return menu.pruned(torch.cat([t, sc[:, None]], 1), probs.repeat_interleave(5, 0), tol=1e-9), rev
    if setting.prior.kind == "uniform" and setting.payoff is None:
        cf = uniform_one_buyer()
        menu = Menu(full_information(2)[None], torch.tensor([cf["price"]], dtype=torch.float64), payoff,
                    "theory (closed form)")
        return menu, cf["revenue"]
    if size is None:
        size = 120 if k == 2 else 60
    types, probs = type_grid(setting, size)
    menu, rev = menu_lp(types, probs, payoff)
    return menu.pruned(types, probs, tol=1e-9), rev


def theory_revenue(setting: DataMarketSetting) -> float:
    """The optimal revenue of a setting (closed forms where they exist, else LP / quadrature)."""
    if setting.multi:
        if (setting.values.kind == "uniform" and len(setting.values.low) == 1 and setting.values.low[0] == 0
                and setting.values.high[0] == 1 and setting.buyers == 2 and setting.states == 2):
            return two_buyer_uniform_revenue(setting.externality, setting.common_prior[0])
        return multi_buyer_revenue(setting)
    return one_buyer_optimum(setting)[1]


def theory_mechanism(setting: DataMarketSetting) -> Menu | VirtualValueMechanism:
    """The optimum of ``setting`` as a mechanism (a menu for one buyer, virtual values for several)."""
    if setting.multi:
        return VirtualValueMechanism(setting)
    return one_buyer_optimum(setting)[0]
