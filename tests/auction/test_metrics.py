"""Regret estimators, menu best response, and evaluation on user-written mechanisms."""

import math
from dataclasses import dataclass

import pytest
import torch

from infozoo.envs.auction.mechanism import Outcome
from infozoo.envs.auction.metrics import RegretBudget, evaluate, gradient_regret, menu_regret
from infozoo.registry import load_setting


@dataclass
class FirstPrice:
    """A first-price auction written by a user: highest bid wins each item, pays its bid."""

    strategyproof: bool = False

    def __call__(self, bids):
        winner = bids.detach().argmax(dim=1)
        alloc = torch.nn.functional.one_hot(winner, bids.shape[1]).to(bids.dtype).transpose(1, 2)
        return Outcome(alloc, (alloc * bids).sum(-1))


@dataclass
class ManelliVincent:
    """The optimal 1x2 U[0,1] menu: each item at 2/3, the bundle at (4 - sqrt 2)/3."""

    strategyproof: bool = True

    def menus(self, bids):
        B = bids.shape[0]
        alloc = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=bids.dtype)
        price = torch.tensor([0, 2 / 3, 2 / 3, (4 - math.sqrt(2)) / 3], dtype=bids.dtype)
        return alloc.expand(B, 1, 4, 2), price.expand(B, 1, 4)

    def __call__(self, bids):
        alloc, price = self.menus(bids)
        u = (bids.unsqueeze(2) * alloc).sum(-1) - price
        k = u.argmax(-1)  # [B, 1]
        return Outcome(alloc[torch.arange(bids.shape[0]), 0, k[:, 0]].unsqueeze(1),
                       price.gather(2, k.unsqueeze(-1)).squeeze(-1))


def test_first_price_shows_clearly_positive_regret():
    r = evaluate(load_setting("additive-2x2-uniform"), FirstPrice(), n=2000, regret_profiles=200,
                 regret_restarts=4, regret_steps=30)
    assert r["strategyproof_by_construction"] is False
    assert r["regret_mean"] > 0.1  # shading the bid towards the second bid pays a lot
    assert "200 profiles x 4 restarts x 30 steps" in r["regret_budget"]


def test_registered_first_price_agrees_with_user_one():
    s = load_setting("additive-2x3-uniform")
    v = s.sample(1000, torch.Generator().manual_seed(1))
    from infozoo.registry import make_mechanism

    a, b = make_mechanism("first-price", s)(v), FirstPrice()(v)
    assert torch.equal(a.allocation, b.allocation) and torch.allclose(a.payment, b.payment)


def test_vcg_regret_is_zero_by_gradient_search():
    s = load_setting("additive-2x2-uniform")
    r = evaluate(s, "vcg", n=2000, regret_profiles=200, regret_restarts=8, regret_steps=30)
    assert r["regret_max"] < 1e-9


def test_gradient_regret_budget_is_reported_and_deterministic():
    s = load_setting("additive-2x2-uniform")
    v = s.sample(64, torch.Generator().manual_seed(0))
    b = RegretBudget(64, 3, 10, 0.05)
    r1 = gradient_regret(FirstPrice(), s, v, b, torch.Generator().manual_seed(5))
    r2 = gradient_regret(FirstPrice(), s, v, b, torch.Generator().manual_seed(5))
    assert torch.equal(r1, r2) and r1.shape == (64, 2)


def test_manelli_vincent_menu_reaches_the_closed_form_optimum():
    s = load_setting("additive-1x2-uniform")
    r = evaluate(s, ManelliVincent(), n=400_000, regret_profiles=10_000)
    assert r["revenue"] == pytest.approx((12 + 2 * math.sqrt(2)) / 27, abs=0.003)  # 0.549201
    assert r["regret_budget"].startswith("exact best response over the menu")
    assert r["regret_max"] < 1e-12


def test_menu_regret_detects_a_bad_choice_rule():
    class WrongChoice(ManelliVincent):
        def __call__(self, bids):  # always picks the null element
            return Outcome(torch.zeros_like(bids), torch.zeros(bids.shape[:2], dtype=bids.dtype))

    v = load_setting("additive-1x2-uniform").sample(1000, torch.Generator().manual_seed(0))
    assert float(menu_regret(WrongChoice(), v).max()) > 0.1


def test_exact_regret_of_first_price_on_yao():
    r = evaluate(load_setting("additive-2x2-yao"), "first-price")
    assert r["exact"] is True
    assert r["regret_mean"] > 0.5  # a 7-bidder facing a 3-bidder gains 4 by bidding 3
