"""auction-v0 behaviour beyond the generic PettingZoo API tests."""

import numpy as np
import pettingzoo
import pytest
import torch

import infozoo
from infozoo.envs.auction.mechanism import Outcome


def test_truthful_round_with_vcg_pays_second_price():
    env = infozoo.make("auction-v0", setting="additive-2x2-uniform", mechanism="vcg")
    obs, _ = env.reset(seed=3)
    v = np.stack([obs["bidder_0"], obs["bidder_1"]]).astype(np.float64)
    _, rewards, terms, _, infos = env.step(obs)
    assert all(terms.values()) and env.agents == []
    second = v.min(axis=0)
    assert infos["bidder_0"]["revenue"] == pytest.approx(second.sum(), abs=1e-6)
    assert sum(rewards.values()) == pytest.approx(v.max(axis=0).sum() - second.sum(), abs=1e-6)
    np.testing.assert_allclose(env.state(), v.flatten(), atol=1e-6)


def test_bids_outside_support_are_clipped_and_flagged():
    env = infozoo.make("auction-v0")
    obs, _ = env.reset(seed=0)
    _, _, _, _, infos = env.step({"bidder_0": np.array([5.0, -1.0]), "bidder_1": obs["bidder_1"]})
    assert infos["bidder_0"]["clipped"] and not infos["bidder_1"]["clipped"]
    assert infos["bidder_0"]["bid"].tolist() == [1.0, 0.0]


def test_user_mechanism_object_plugs_in():
    class PostedPrice:
        strategyproof = True

        def __call__(self, bids):
            # bidder 0 buys any item it values above 0.5 at 0.5; nobody else gets anything
            alloc = torch.zeros_like(bids)
            alloc[:, 0] = (bids[:, 0] >= 0.5).to(bids.dtype)
            return Outcome(alloc, 0.5 * alloc.sum(-1))

    env = infozoo.make("auction-v0", mechanism=PostedPrice())
    obs, _ = env.reset(seed=1)
    _, rewards, _, _, infos = env.step(obs)
    v0 = obs["bidder_0"].astype(np.float64)
    assert rewards["bidder_0"] == pytest.approx(float(np.clip(v0 - 0.5, 0, None).sum()), abs=1e-6)
    assert rewards["bidder_1"] == 0.0


def test_pettingzoo_make_with_kwargs_and_render():
    env = pettingzoo.make("parallel", "infozoo/auction-v0", setting="additive-2x2-yao",
                          mechanism="myerson", render_mode="ansi")
    obs, _ = env.reset(seed=0)
    assert set(np.unique(np.concatenate(list(obs.values())))) <= {3.0, 7.0}
    env.step(obs)
    text = env.render()
    assert "revenue" in text and "bidder_1" in text


def test_reset_seed_reproduces_valuations():
    a, b = infozoo.make("auction-v0"), infozoo.make("auction-v0")
    for _ in range(3):
        oa, _ = a.reset(seed=7)
        ob, _ = b.reset(seed=7)
        assert all(np.array_equal(oa[k], ob[k]) for k in oa)
    assert not np.array_equal(a.reset()[0]["bidder_0"], a.reset(seed=8)[0]["bidder_0"])
