"""Sequential price mechanisms (SPMs): the rules shared by the environments and the mechanisms.

An SPM (Brero, Eden, Gerstgrasser, Parkes, Rheingans-Yoo, "Reinforcement Learning of Sequential
Price Mechanisms", AAAI 2021) visits the bidders one at a time. When bidder t is visited with
items S_t still unsold, the designer posts a price p_tj for every remaining item j in S_t; the
bidder takes a bundle that maximises its utility at those prices,

    B_t in argmax_{B subset S_t} v_t(B) - sum_{j in B} p_tj,

pays sum_{j in B_t} p_tj, and S_{t+1} = S_t minus B_t. The prices posted to bidder t may depend
on everything that happened before (the history h_t of allocations and prices) but not on bidder
t's own report, and bidder t's choice is its own best response at those prices: truthful
behaviour is a dominant strategy and the mechanism is strategy-proof (and ex post IR: a bidder can
always take the empty bundle) *by construction*, whatever the pricing policy. In direct form
(``SequentialPriceMechanism``) a bid b_t acts as the choice the bidder would make with values b_t,
so a misreport can only pick a bundle that is no better for the true values.

What is learned is the pricing policy pi(h_t) -> p_t, a sequential decision problem with the
revenue as reward: Brero et al. solve it with PPO (they also learn the visiting order); the public
deep-seq-auctions code (Ravindranath, Jiang, Brero, Parkes et al.) poses each visit as one step of
a Gymnasium episode whose observation is the set of remaining items and the index of the visited
bidder, and compares PPO with an exact dynamic program (PPO 3.05 vs DP 3.13 on 5x5 uniform). Here
the bidders are visited in the fixed order 0..n-1.

Bidder choice (``choose``), ties resolved towards buying (a bidder indifferent between buying
and not buys), which is also what the DP reference assumes:
- additive: buy every remaining item with v_tj >= p_tj (the items separate);
- unit-demand: buy the one remaining item with the largest v_tj - p_tj (lowest index on ties) if
  that surplus is >= 0.

Designer observation (``observation``), all numbers in [0, 1]: remaining items (m), one-hot of
the visited bidder (n; all zeros once the episode is over), the allocation history (n x m, 1 where
bidder i bought item j) and the price history (n x m, posted prices as fractions of the visited
bidder's highest possible value; zero for bidders not visited yet). The values of bidders not yet
visited are never part of it. Actions are price fractions a in [-1, 1]^m with
p_tj = (a_j + 1) / 2 * high_tj (the top of bidder t's value support for item j).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from infozoo.envs.auction.mechanism import Outcome, check_bids
from infozoo.envs.auction.settings import AuctionSetting


def observation_size(n: int, m: int) -> int:
    """Length of the designer's observation for n bidders and m items."""
    return m + n + 2 * n * m


def observation(remaining: Any, t: int, alloc_hist: Any, price_hist: Any) -> Any:
    """The designer's observation, batched: remaining [B, m], histories [B, n, m] -> [B, d].

    Works on numpy arrays and on torch tensors (the same function feeds the environments and the
    batched mechanism, so a trained policy sees identical inputs in both)."""
    B, n, m = alloc_hist.shape
    if isinstance(remaining, torch.Tensor):
        onehot = torch.zeros(B, n, dtype=remaining.dtype)
        if t < n:
            onehot[:, t] = 1.0
        return torch.cat([remaining, onehot, alloc_hist.reshape(B, -1), price_hist.reshape(B, -1)], dim=1)
    onehot = np.zeros((B, n), dtype=remaining.dtype)
    if t < n:
        onehot[:, t] = 1.0
    return np.concatenate([remaining, onehot, alloc_hist.reshape(B, -1), price_hist.reshape(B, -1)], axis=1)


def prices_from_action(action: Any, high_t: Any) -> Any:
    """p = (a + 1)/2 * high with a clipped to [-1, 1] (numpy or torch)."""
    if isinstance(action, torch.Tensor):
        return (action.clamp(-1.0, 1.0) + 1.0) / 2.0 * high_t
    return (np.clip(action, -1.0, 1.0) + 1.0) / 2.0 * high_t


def choose(values: Any, prices: Any, remaining: Any, unit_demand: bool) -> Any:
    """The visited bidder's utility-maximising bundle, batched: 0/1 array [B, m] (numpy or torch).

    ``values`` are the values the bidder acts on (its true values, or its bid in direct form),
    ``remaining`` is 1 for unsold items."""
    is_torch = isinstance(values, torch.Tensor)
    avail = remaining > 0.5
    if not unit_demand:
        buy = avail & (values >= prices)
    else:
        surplus = values - prices
        if is_torch:
            surplus = torch.where(avail, surplus, torch.full_like(surplus, -torch.inf))
            best = surplus.argmax(dim=1, keepdim=True)
            pick = torch.zeros_like(avail).scatter_(1, best, True)
            buy = pick & (surplus.gather(1, best) >= 0)
        else:
            surplus = np.where(avail, surplus, -np.inf)
            best = surplus.argmax(axis=1)[:, None]
            pick = np.zeros_like(avail)
            np.put_along_axis(pick, best, True, axis=1)
            buy = pick & (np.take_along_axis(surplus, best, axis=1) >= 0)
    return buy.to(values.dtype) if is_torch else buy.astype(values.dtype)


class History:
    """The public history of ``batch`` episodes in lockstep (numpy): unsold items [B, m], who
    bought what [B, n, m] at which prices [B, n, m] (fractions of high), payments [B, n].

    Shared by the designer env (B = 1), the market env and the batched designer used for
    training, so all of them apply the same bookkeeping."""

    def __init__(self, n: int, m: int, batch: int = 1) -> None:
        self.n, self.m, self.batch = n, m, batch
        self.clear()

    def clear(self) -> None:
        B, n, m = self.batch, self.n, self.m
        self.remaining = np.ones((B, m))
        self.alloc = np.zeros((B, n, m))
        self.price_hist = np.zeros((B, n, m))
        self.payments = np.zeros((B, n))

    def record(self, t: int, buy: np.ndarray, prices: np.ndarray, high_t: np.ndarray) -> np.ndarray:
        """Bidder t bought ``buy`` (0/1 [B, m]) at ``prices`` [B, m]; returns the payments [B]."""
        pay = (buy * prices).sum(-1)
        self.alloc[:, t] = buy
        self.price_hist[:, t] = prices / high_t * self.remaining
        self.payments[:, t] = pay
        self.remaining = self.remaining - buy
        return pay

    def observation(self, t: int) -> np.ndarray:
        """The designer's observation before visit ``t`` (float32 [B, m + n + 2nm])."""
        return observation(self.remaining, t, self.alloc, self.price_hist).astype(np.float32)


PricePolicy = Callable[[torch.Tensor, int, torch.Tensor], torch.Tensor]
"""``policy(obs [B, d], t, remaining [B, m]) -> actions [B, m]`` in [-1, 1] (price fractions)."""


@dataclass
class SequentialPriceMechanism:
    """A sequential price mechanism in direct form: ``mechanism(bids [B, n, m]) -> Outcome``.

    Bidders are visited in the order 0..n-1; ``policy`` maps the designer's observation of the
    public history to price fractions (see the module docstring); bidder t receives the bundle
    ``choose(b_t, p_t, remaining)``. Strategy-proof by construction (truthful bidding is a dominant
    strategy) for *any* policy, because p_t never depends on b_t.
    """

    setting: AuctionSetting
    policy: PricePolicy
    name: str = "spm"
    strategyproof: bool = field(default=True, init=False)

    def __call__(self, bids: torch.Tensor) -> Outcome:
        s = self.setting
        b = check_bids(bids, s.bidders, s.items).detach()
        return self.run(b)[0]

    def run(self, bids: torch.Tensor) -> tuple[Outcome, torch.Tensor, torch.Tensor]:
        """The outcome, the prices posted to each bidder [B, n, m] and the items unsold when it
        was visited [B, n, m] (0/1)."""
        s = self.setting
        B, n, m = bids.shape
        dtype = bids.dtype
        high = s.high(dtype)
        remaining = torch.ones(B, m, dtype=dtype)
        alloc = torch.zeros(B, n, m, dtype=dtype)
        price_hist = torch.zeros(B, n, m, dtype=dtype)
        offered = torch.zeros(B, n, m, dtype=dtype)
        unsold = torch.zeros(B, n, m, dtype=dtype)
        pay = torch.zeros(B, n, dtype=dtype)
        with torch.no_grad():
            for t in range(n):
                obs = observation(remaining, t, alloc, price_hist)
                act = self.policy(obs, t, remaining).to(dtype)
                p = prices_from_action(act, high[t])
                buy = choose(bids[:, t], p, remaining, s.unit_demand)
                alloc[:, t] = buy
                pay[:, t] = (buy * p).sum(-1)
                price_hist[:, t] = p / high[t] * remaining
                offered[:, t], unsold[:, t] = p, remaining
                remaining = remaining - buy
        return Outcome(alloc, pay), offered, unsold

    def menus(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bidder i's menu (it depends on the bids of bidders visited before i only): every bundle
        of the items unsold at its visit at the posted prices. Additive: the 2^m subsets (items
        already sold contribute nothing and cost nothing); unit-demand: nothing or one item.
        Returns ``(alloc [B, n, K, m], price [B, n, K])``."""
        s = self.setting
        b = check_bids(bids, s.bidders, s.items).detach()
        _, offered, unsold = self.run(b)
        m = s.items
        if s.unit_demand:
            bundles = torch.cat([torch.zeros(1, m), torch.eye(m)]).to(b.dtype)
        else:
            bundles = torch.tensor(list(itertools.product((0.0, 1.0), repeat=m)), dtype=b.dtype)
        alloc = bundles[None, None] * unsold[:, :, None, :]  # [B, n, K, m]
        return alloc, (alloc * offered[:, :, None, :]).sum(-1)


def check_setting(setting: AuctionSetting) -> AuctionSetting:
    """SPMs need non-negative values (prices are posted in [0, high])."""
    if float(setting.low().min()) < 0:
        raise ValueError("sequential price mechanisms need non-negative values; the setting has "
                         f"values down to {float(setting.low().min())}")
    return setting
