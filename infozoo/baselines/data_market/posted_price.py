"""Posted price for full information: the simplest way to sell data.

- One buyer: one item, full information at the price p maximising p * P(v V_full(theta) >= p),
  with V_full(theta) = sum_w theta_w max_a u(w, a) - max_a sum_w theta_w u(w, a) (for theta ~ U[0, 1]
  this is the optimum: p = 1/4). The price is found exactly on the sorted values of the type space
  (discrete priors) or of 2^18 seeded draws.
- Several buyers: buyer i buys full information at p_i iff (1 - m) v_i >= p_i; otherwise it gets
  the uninformative experiment. Buying changes buyer i's own match probability from m to 1 and
  nothing else, so the decision is dominant-strategy and the price is (1 - m) times the monopoly
  price of v_i. Buyers who do not buy stay above their outside option v_i (m - alpha (n - 1)).
"""

from __future__ import annotations

from typing import Any

import torch

from infozoo.core.seeding import torch_generator
from infozoo.envs.data_market.experiments import SchemeOutcome, full_information, prior_action, uninformative
from infozoo.envs.data_market.settings import DataMarketSetting
from infozoo.envs.data_market.theory import Menu


def _best_price(values: torch.Tensor, weights: torch.Tensor) -> float:
    """argmax_p p * P(value >= p) over the sample's values (weights are probabilities)."""
    order = torch.argsort(values, descending=True)
    v, w = values[order], weights[order]
    revenue = v * torch.cumsum(w, 0) / w.sum()
    return float(v[int(revenue.argmax())])


class PostedPrice:
    """Full information to every buyer whose value of it is at least its posted price."""

    strategyproof = True

    def __init__(self, setting: DataMarketSetting, prices: torch.Tensor) -> None:
        self.setting = setting
        self.prices = prices
        self.name = "posted price (full information)"
        prior = setting.prior_vector()
        self._full = full_information(setting.states)
        self._none = uninformative(setting.states, int(prior_action(prior, setting.payoff_matrix())))

    def __call__(self, reports: torch.Tensor) -> SchemeOutcome:
        v = self.setting.clip(reports)[..., 0]
        buy = ((1 - max(self.setting.common_prior)) * v >= self.prices.to(v)).to(v.dtype)
        exp = buy[..., None, None] * self._full + (1 - buy[..., None, None]) * self._none
        return SchemeOutcome(exp.to(reports.dtype), (buy * self.prices.to(v)).to(reports.dtype))


def posted_price(setting: DataMarketSetting, samples: int = 2**18, seed: int = 0, **kwargs: Any) -> Any:
    """Factory registered as ``posted-price``."""
    if kwargs:
        raise ValueError(f"posted-price takes the options samples, seed; got {', '.join(kwargs)}")
    payoff = setting.payoff_matrix()
    k = setting.states
    if setting.multi:
        m = max(setting.common_prior)
        g = torch_generator(seed)
        v = setting.values.sample(samples, setting.buyers, g)
        ones = torch.ones(samples, dtype=v.dtype)
        prices = torch.tensor([(1 - m) * _best_price(v[:, i], ones) for i in range(setting.buyers)])
        return PostedPrice(setting, prices)
    if setting.discrete:
        types, w = setting.type_space()
    else:
        types, w = setting.sample(samples, torch_generator(seed)), torch.ones(samples, dtype=torch.float64)
    t = types[:, 0, :]
    scale = t[:, k] if setting.scale is not None else 1.0
    vals = scale * ((t[:, :k] * payoff.amax(-1)).sum(-1) - (t[:, :k] @ payoff).amax(-1))
    price = _best_price(vals, w)
    return Menu(full_information(k)[None], torch.tensor([price], dtype=torch.float64), payoff,
                "posted price (full information)")
