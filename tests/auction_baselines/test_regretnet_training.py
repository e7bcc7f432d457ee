"""RegretNet: feasibility and IR by construction, the misreport search, training and checkpoints.

Budgets are tiny; revenue/regret targets belong to ``infozoo bench auction``.
"""

from __future__ import annotations

import pytest
import torch

from infozoo.baselines.auction import regretnet
from infozoo.baselines.auction.regretnet import RegretNetModel, find_misreports, misreport_utility
from infozoo.envs.auction.mechanism import over_allocation, utility
from infozoo.envs.auction.settings import NAMED_SETTINGS
from infozoo.registry import make_mechanism


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFOZOO_PROGRESS", "0")


def tiny(setting, **kw) -> regretnet.Config:
    cfg = regretnet.default_config(setting)
    cfg.steps, cfg.batch, cfg.train_size, cfg.hidden, cfg.misreport_steps = 40, 64, 256, 32, 5
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


@pytest.mark.parametrize("name", ["additive-2x3-uniform", "unit-2x2-uniform", "unit-2x3-uniform"])
def test_untrained_network_is_feasible_and_ir(name):
    setting = NAMED_SETTINGS[name]()
    torch.manual_seed(0)
    model = RegretNetModel(setting.bidders, setting.items, setting.unit_demand, 32, 2)
    for p in model.parameters():  # large random weights: saturated softmaxes are the hard case
        p.data.mul_(20)
    v = setting.sample(2048, torch.Generator().manual_seed(1), dtype=torch.float32)
    alloc, pay = model(v, 1.0)
    alloc, pay = alloc.detach(), pay.detach()
    assert float(over_allocation(alloc, setting.unit_demand).max()) <= 1e-6
    assert float(((v * alloc).sum(-1) - pay).min()) >= -1e-6  # pays at most its value
    assert float(pay.min()) >= 0


def test_misreport_utility_matches_the_replaced_profile():
    setting = NAMED_SETTINGS["additive-2x2-uniform"]()
    torch.manual_seed(2)
    model = RegretNetModel(2, 2, False, 16, 2)
    g = torch.Generator().manual_seed(3)
    v, mis = setting.sample(8, g, dtype=torch.float32), setting.sample(8, g, dtype=torch.float32)
    u = misreport_utility(model, v, mis, 1.0)
    for i in range(2):
        bids = v.clone()
        bids[:, i] = mis[:, i]
        alloc, pay = model(bids, 1.0)
        torch.testing.assert_close(u[:, i], (v[:, i] * alloc[:, i]).sum(-1) - pay[:, i])


def test_misreport_search_ascends_and_stays_in_the_support():
    setting = NAMED_SETTINGS["additive-2x2-yao"]()  # values in [3, 7]: lr is in range units
    torch.manual_seed(4)
    model = RegretNetModel(2, 2, False, 16, 2)
    g = torch.Generator().manual_seed(5)
    v = setting.sample(64, g, dtype=torch.float32)
    low, high = setting.low(torch.float32), setting.high(torch.float32)
    start = low + torch.rand(v.shape, generator=g) * (high - low)
    mis = find_misreports(model, v, start, low, high, 30, 0.1, 7.0)
    assert bool(((mis >= low) & (mis <= high)).all())
    with torch.no_grad():
        gain = misreport_utility(model, v, mis, 7.0) - misreport_utility(model, v, start, 7.0)
    assert float(gain.mean()) > 0
    assert float(gain.min()) >= 0  # the best iterate is kept, so no bidder ends below its start
    assert all(p.requires_grad for p in model.parameters())  # the search leaves the network trainable


def test_misreport_search_keeps_the_best_iterate_not_the_last():
    """At a large step size Adam's last iterate circles the maximiser; the search must return
    the best point it visited (the regret the training penalises is then not understated)."""
    setting = NAMED_SETTINGS["additive-2x2-uniform"]()
    torch.manual_seed(7)
    model = RegretNetModel(2, 2, False, 16, 2)
    for p in model.parameters():  # large weights: a bumpy utility with interior maxima
        p.data.mul_(5)
    g = torch.Generator().manual_seed(8)
    v = setting.sample(256, g, dtype=torch.float32)
    low, high = setting.low(torch.float32), setting.high(torch.float32)
    start = low + torch.rand(v.shape, generator=g) * (high - low)
    best = find_misreports(model, v, start, low, high, 20, 0.5, 1.0)
    # replay the same search and record the utility of every iterate
    mis, seen = start.clone().requires_grad_(True), []
    opt = torch.optim.Adam([mis], lr=0.5)
    for k in range(21):
        u = misreport_utility(model, v, mis, 1.0)
        seen.append(u.detach())
        if k < 20:
            opt.zero_grad()
            (-u.sum()).backward()
            opt.step()
            with torch.no_grad():
                mis.copy_(torch.maximum(torch.minimum(mis, high), low))
    seen = torch.stack(seen)  # [iterates, B, n]
    with torch.no_grad():
        got = misreport_utility(model, v, best, 1.0)
    torch.testing.assert_close(got, seen.amax(0))
    assert bool((seen.amax(0) > seen[-1] + 1e-6).any())  # here the last iterate is not the best


def test_full_profile_is_cpu_sized_for_small_settings_only():
    small = regretnet.default_config(NAMED_SETTINGS["additive-2x2-uniform"](), profile="full")
    large = regretnet.default_config(NAMED_SETTINGS["additive-2x3-uniform"](), profile="full")
    assert small.steps == 20_000 and small.train_size == 32_768 and large.steps == 100_000


def test_training_raises_revenue_and_round_trips(tmp_path):
    setting = NAMED_SETTINGS["additive-2x2-uniform"]()
    cfg = tiny(setting, steps=120, lr=0.005)
    mech = regretnet.fit(setting, cfg)
    log = mech.report["train_log"]
    assert not mech.strategyproof
    assert log[-1]["revenue"] > 0.5  # an untrained network earns about 0.3
    mech.save(tmp_path / "rn")
    again = make_mechanism(f"regretnet:{tmp_path / 'rn'}", setting)
    v = setting.sample(128, torch.Generator().manual_seed(6))
    a, b = mech(v), again(v)
    torch.testing.assert_close(a.payment, b.payment)
    assert float(utility(v, a).min()) >= -1e-9 and a.payment.dtype == torch.float64


def test_training_is_deterministic_under_a_seed():
    setting = NAMED_SETTINGS["unit-2x2-uniform"]()
    a, b = regretnet.fit(setting, tiny(setting, steps=5)), regretnet.fit(setting, tiny(setting, steps=5))
    for (k, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        torch.testing.assert_close(x, y, msg=k)


def test_bad_config_raises():
    setting = NAMED_SETTINGS["additive-2x2-uniform"]()
    with pytest.raises(ValueError, match="train_size"):
        regretnet.fit(setting, tiny(setting, train_size=8))
    with pytest.raises(ValueError, match="profile"):
        regretnet.default_config(setting, profile="fast")
