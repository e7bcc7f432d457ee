"""Data-market net, one buyer: a RochetNet-style menu of experiments.

Following Ravindranath, Jiang and Parkes ("Data Market Design through Deep Learning"), the seller
offers K experiments with prices, plus a free uninformative option that guarantees IR. Item k is
a row-stochastic matrix E_k(s | w) = softmax_s(z_k(w, s) * tau_E) over signals for each state, with
learnable logits z and a temperature tau_E, and a learnable price p_k. A buyer of type theta
(and scale v) values item k at v V(theta, E_k) with V the best-response value of
``infozoo.envs.data_market.experiments.value``, and picks

    k*(theta) = argmax_k  v V(theta, E_k) - p_k      (the free option has utility 0).

Because the menu does not depend on the report, truthful reporting is optimal by construction
(IC), and the free option makes it IR. Training maximises the expected price paid with the
choice relaxed to softmax(lambda * utility) over the K + 1 options (lambda, the choice
temperature, annealed from ``choice_temp`` to ``choice_temp_final``); at test time the choice
is the hard argmax (``Menu``), and items nobody buys or that duplicate others are pruned.

Two details learned the hard way. With a few discrete types the relaxed problem has a bad local
optimum (flat pricing of full information: for the two-type example about half of the random
initialisations end there), so ``restarts`` menus are trained side by side and the best one on
held-out types is kept. And the softmax choice leaves every binding constraint a margin of order
1 / temperature; for discrete priors ``polish_prices`` then re-solves the prices by LP with the
learned experiments and choices fixed (both revenues are in the report).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from infozoo.core.progress import progress
from infozoo.core.seeding import torch_generator
from infozoo.core.torch_utils import exact_rows, soft_argmax
from infozoo.envs.data_market.experiments import value
from infozoo.envs.data_market.settings import DataMarketSetting
from infozoo.envs.data_market.theory import Menu


class MenuNet(torch.nn.Module):
    """``restarts`` independent menus, each of K experiments (logits [R, K, k, S]) and prices [R, K]."""

    def __init__(self, restarts: int, items: int, states: int, exp_temp: float, price_init: float,
                 generator: torch.Generator) -> None:
        super().__init__()
        self.exp_temp = exp_temp
        self.logits = torch.nn.Parameter(
            torch.randn(restarts, items, states, states, generator=generator) / exp_temp)
        self.prices = torch.nn.Parameter(torch.rand(restarts, items, generator=generator) * price_init)

    def experiments(self) -> torch.Tensor:
        return torch.softmax(self.logits * self.exp_temp, dim=-1)

    def utilities(self, types: torch.Tensor, payoff: torch.Tensor, states: int) -> torch.Tensor:
        """Utility of every item of every menu for types [B, d], [B, R, K]."""
        prior = types[:, :states]
        scale = types[:, None, states:states + 1] if types.shape[1] > states else 1.0
        vals = value(prior[:, None, None, :], self.experiments()[None], payoff)
        return scale * vals - self.prices[None]

    def soft_revenue(self, types: torch.Tensor, payoff: torch.Tensor, states: int, temp: float,
                     weights: torch.Tensor | None = None) -> torch.Tensor:
        """E[sum_k softmax(temp * [0, u])_k p_k] per menu, [R] (the relaxed revenue)."""
        u = self.utilities(types, payoff, states)
        u = torch.cat([torch.zeros_like(u[..., :1]), u], -1)
        choice = soft_argmax(u, temp)
        pay = (choice[..., 1:] * self.prices[None]).sum(-1)  # [B, R]
        if weights is not None:
            return (pay * weights[:, None]).sum(0) / weights.sum()
        return pay.mean(0)

    def menu(self, payoff: torch.Tensor, r: int) -> Menu:
        with torch.no_grad():
            return Menu(exact_rows(self.experiments()[r]), self.prices[r].detach().double(), payoff.double(),
                        "data-market-net (menu)")


def polish_prices(menu: Menu, types: torch.Tensor, weights: torch.Tensor | None = None) -> Menu:
    """Keep the experiments and who buys what, and re-optimise the prices by a linear program:
    max sum_t f_t p_{c(t)} s.t. every type t still weakly prefers its item c(t) to every other item
    and to nothing. This removes the margins the softmax choice leaves (cf. GemNet's price
    transform); ties are then broken towards the higher price, as the seller would."""
    from scipy.optimize import linprog

    types = types.double()
    w = (weights if weights is not None else torch.ones(types.shape[0], dtype=torch.float64)).double()
    c = menu.choice(types)
    buyers = c >= 0
    if not buyers.any():
        return menu
    u = menu.utilities(types) + menu.prices[None]  # gross values [T, K]
    K = len(menu.prices)
    t_idx = buyers.nonzero().squeeze(-1)
    rows, rhs = [], []
    for t in t_idx.tolist():
        ct = int(c[t])
        for r in range(K):  # v_t(c) - p_c >= v_t(r) - p_r  ->  p_c - p_r <= v_t(c) - v_t(r)
            if r != ct:
                row = torch.zeros(K, dtype=torch.float64)
                row[ct], row[r] = 1.0, -1.0
                rows.append(row)
                rhs.append(float(u[t, ct] - u[t, r]))
        row = torch.zeros(K, dtype=torch.float64)
        row[ct] = 1.0
        rows.append(row)
        rhs.append(float(u[t, ct]))
    for t in (~buyers).nonzero().squeeze(-1).tolist():  # non-buyers stay out: p_r >= v_t(r)
        for r in range(K):
            row = torch.zeros(K, dtype=torch.float64)
            row[r] = -1.0
            rows.append(row)
            rhs.append(-float(u[t, r]))
    obj = torch.zeros(K, dtype=torch.float64)
    obj.index_add_(0, c[buyers], w[buyers])
    res = linprog(-obj.numpy(), A_ub=torch.stack(rows).numpy(), b_ub=rhs, bounds=[(None, None)] * K, method="highs")
    if res.status != 0:
        return menu
    polished = Menu(menu.experiments, torch.tensor(res.x, dtype=torch.float64), menu.payoff, menu.name)
    return polished if polished.revenue(types, weights) >= menu.revenue(types, weights) else menu


def train_menu(setting: DataMarketSetting, cfg: Any) -> tuple[Menu, dict[str, Any]]:
    """Fit the menu net of ``setting`` under config ``cfg`` (see ``train.Config``); returns the
    pruned test-time ``Menu`` and a report."""
    t0 = time.perf_counter()
    g = torch_generator(cfg.seed)
    dtype = torch.float64 if cfg.float64 else torch.float32
    k = setting.states
    payoff = setting.payoff_matrix(dtype)
    top = float(payoff.max() - payoff.min()) * (setting.scale[1] if setting.scale else 1.0)
    net = MenuNet(cfg.restarts, cfg.menu_size, k, cfg.exp_temp, cfg.price_init * top, g).to(dtype)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(cfg.steps, 1), eta_min=cfg.lr_final)
    types_all, weights = (setting.type_space(dtype) if setting.discrete else (None, None))
    bar = progress(range(cfg.steps), desc="data-market-net (menu)")
    rev = torch.zeros(())
    for step in bar:
        frac = step / max(cfg.steps - 1, 1)
        temp = cfg.choice_temp * (cfg.choice_temp_final / cfg.choice_temp) ** frac  # geometric annealing
        if types_all is not None:
            types, w = types_all[:, 0, :], weights
        else:
            types, w = setting.sample(cfg.batch, g, dtype)[:, 0, :], None
        revs = net.soft_revenue(types, payoff, k, temp, w)
        rev = revs.max()
        opt.zero_grad()
        (-revs.sum()).backward()
        opt.step()
        sched.step()
        if step % 100 == 0:
            bar.set_postfix(revenue=f"{float(rev.detach()):.5f}", temp=f"{temp:.0f}")
    if setting.discrete:
        test, tw = setting.type_space()
    else:
        test, tw = setting.sample(cfg.prune_samples, torch_generator(cfg.seed + 1)), None
    test = test[:, 0, :]
    menus = [net.menu(payoff, r) for r in range(cfg.restarts)]
    learned = [m.revenue(test, tw) for m in menus]
    best = max(range(cfg.restarts), key=lambda r: learned[r])
    menu = menus[best]
    full_items = len(menu.prices)
    menu = menu.obedient(test).pruned(test, tw, tol=cfg.prune_tol)
    pruned_revenue = menu.revenue(test, tw)
    if cfg.polish and setting.discrete:
        menu = polish_prices(menu, test, tw)
    train_time = time.perf_counter() - t0
    report = {"train_time": train_time, "train_revenue_soft": float(rev.detach()),
              "restart_revenues": learned, "revenue_learned": pruned_revenue,
              "revenue_polished": menu.revenue(test, tw), "menu_items_trained": full_items,
              "menu_items": len(menu.prices), "menu": menu.describe()}
    return menu, report
