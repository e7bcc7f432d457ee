"""GemNet / RochetNet: SP by construction, IR, the price transform and its certificate, checkpoints.

Budgets are tiny: most tests build menu networks by hand (constant menus: the last layer's
weights set to zero) so that the right answer is known exactly.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from infozoo.core.checkpoint import CheckpointError
from infozoo.core.lp import SolveResult
from infozoo.envs.auction.metrics import evaluate, menu_regret
from infozoo.envs.auction.settings import NAMED_SETTINGS, from_dict
from infozoo.solvers.gemnet import certify, rochetnet, train, transform
from infozoo.solvers.gemnet.model import GemNetMechanism, MenuNetwork


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFOZOO_PROGRESS", "0")


def tiny_config(setting, **kw) -> train.Config:
    cfg = train.default_config(setting)
    cfg.menu_size, cfg.hidden, cfg.steps, cfg.batch = 6, (16, 16), 30, 128
    cfg.grid, cfg.max_depth, cfg.max_cells, cfg.verify_profiles = 2, 2, 2000, 1000
    cfg.warm_steps = 50
    cfg.menu_grid = 0  # continuous menus unless a test asks for a grid (the default 2x2 grid is 32^4 cells)
    if cfg.warm_start != "none":
        cfg.warm_start = "myerson"  # the default Lottery AMA teacher takes ~1 min to train
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def constant_menu(setting, allocs: list[list[float]], prices: list[float], grid: int = 2,
                  max_change: float = 0.3, menu_grid: int = 0, grid_breaks: tuple[float, ...] = ()
                  ) -> tuple[GemNetMechanism, train.Config]:
    """A mechanism whose menus do not depend on the others' bids: element k allocates
    allocs[k] (exactly, via saturated logits) at price prices[k] for every bidder."""
    K = len(allocs)
    cfg = tiny_config(setting, menu_size=K, grid=grid, max_change=max_change, max_depth=0, hidden=(4,),
                      menu_grid=menu_grid, grid_breaks=grid_breaks)
    net = MenuNetwork(setting.bidders, setting.items, K, setting.unit_demand, setting.low(),
                      setting.high(), (4,), menu_grid=menu_grid, grid_breaks=grid_breaks).double()
    with torch.no_grad():
        for seq in net.nets:
            last = seq[-1]
            last.weight.zero_()
            logits = [60.0 if a >= 1 else (-60.0 if a <= 0 else float(torch.logit(torch.tensor(a))))
                      for row in allocs for a in row]
            raw_price = [float(torch.log(torch.expm1(torch.tensor(p / net.price_scale)))) for p in prices]
            last.bias.copy_(torch.tensor(logits + raw_price, dtype=torch.float64))
    return GemNetMechanism(setting, net, train.config_dict(cfg, setting)), cfg


def test_menu_of_bidder_i_ignores_own_bid():
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    mech = train.fit(s, tiny_config(s, transform=False))
    mech.delta = None
    g = torch.Generator().manual_seed(0)
    bids = s.sample(256, g)
    a0, p0 = mech.menus(bids)
    for i in range(s.bidders):
        other = bids.clone()
        other[:, i] = s.sample(256, g)[:, i]
        a1, p1 = mech.menus(other)
        assert torch.equal(a0[:, i], a1[:, i]) and torch.equal(p0[:, i], p1[:, i])
        j = 1 - i
        assert not torch.equal(p0[:, j], p1[:, j])  # the other bidder's menu (its prices) does move


def test_individual_rationality_and_zero_menu_regret():
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    mech = train.fit(s, tiny_config(s, transform=False))
    v = s.sample(2000, torch.Generator().manual_seed(1))
    out = mech(v)
    u = (v * out.allocation).sum(-1) - out.payment
    assert float(u.min()) >= -1e-12
    assert float(menu_regret(mech, v).max()) <= 1e-12


def test_transform_leaves_compatible_menu_unchanged():
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    # every element allocates half of each item: never over-allocates
    mech, cfg = constant_menu(s, [[0.5, 0.5], [0.5, 0.0]], [0.6, 0.2])
    v = s.sample(1000, torch.Generator().manual_seed(2))
    before = mech(v)
    cert = transform.transform(mech, cfg)
    assert cert["certified"] is True and cert["n_milps"] == 0
    assert mech.delta is None
    after = mech(v)
    assert torch.equal(before.payment, after.payment) and torch.equal(before.allocation, after.allocation)


def incompatible(s):
    # both bidders are offered item 1 alone and the bundle, cheaply: clearly over-allocates
    return constant_menu(s, [[1.0, 0.0], [1.0, 1.0]], [1.85, 1.9], grid=2, max_change=0.3)


def test_transform_certifies_after_milp():
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    mech, cfg = incompatible(s)
    assert certify.verify_random(mech, 20_000) > 0.5
    cert = transform.transform(mech, cfg)
    assert cert["n_milps"] >= 1 and cert["milps"][0]["status"] == "Optimal"
    assert cert["certified"] is True, cert
    assert certify.verify_random(mech, 100_000, seed=3) == 0.0
    assert certify.adversarial_search(mech, restarts=200, rounds=10)["max_over_allocation"] == 0.0
    v = s.sample(2000, torch.Generator().manual_seed(4))
    assert float(menu_regret(mech, v).max()) <= 1e-12  # SP kept: only prices changed


def test_transform_prices_out_conflicting_leaders():
    """Both bidders take item 1 at price 0.2 wherever they value it above 0.2: on the cells where
    both values exceed 0.5 the bidders' best elements (the MILP's leaders) over-allocate at every
    profile, so only pricing a leader out below its null element can certify."""
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    mech, cfg = constant_menu(s, [[1.0, 0.0]], [0.2], grid=2, max_change=1.0)
    assert certify.verify_random(mech, 20_000) > 0.2
    cert = transform.transform(mech, cfg)
    assert cert["milps"][0]["status"] == "Optimal" and cert["certified"] is True, cert
    assert certify.verify_random(mech, 100_000, seed=5) == 0.0


def test_teacher_warm_start_copies_the_teachers_choices():
    """Distilling a menu-based teacher (the hand-set VVCA's induced menus): the kept elements are
    the teacher's most used ones, and the distilled menus make mostly the teacher's choices."""
    from infozoo.baselines.auction.ama import vvca

    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    teacher = vvca(s)
    g = torch.Generator().manual_seed(0)
    targets = train.teacher_targets(teacher, s, 12, g, profiles=5000)
    v = s.sample(4000, torch.Generator().manual_seed(1)).double()
    alloc, price = targets(v)
    assert alloc.shape == (4000, 2, 12, 2) and price.shape == (4000, 2, 12)
    out = teacher(v)
    a_t, p_t = MenuNetwork.with_null(alloc, price)  # the kept elements reproduce the teacher
    k = ((v.unsqueeze(2) * a_t).sum(-1) - p_t).argmax(-1)
    x = a_t.gather(2, k[:, :, None, None].expand(-1, -1, 1, 2)).squeeze(2)
    assert float((x - out.allocation).abs().amax((1, 2)).gt(1e-9).double().mean()) < 0.01
    cfg = tiny_config(s, menu_size=12, hidden=(32, 32), warm_steps=800, batch=512)
    torch.manual_seed(0)
    net = MenuNetwork(2, 2, 12, False, s.low(torch.float32), s.high(torch.float32), (32, 32), "tanh",
                      alloc_snap=0.01)
    train.distil(net, s, cfg, torch.Generator().manual_seed(2), targets, "test")
    student = GemNetMechanism(s, net, train.config_dict(cfg, s))
    agree = (student(v).allocation - out.allocation).abs().amax((1, 2)).lt(1e-6).double().mean()
    assert float(agree) > 0.8, float(agree)  # an untrained menu agrees on ~20%


def test_certificate_refused_when_milp_fails(monkeypatch: pytest.MonkeyPatch):
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    mech, cfg = incompatible(s)
    monkeypatch.setattr(transform, "solve",
                        lambda *a, **k: SolveResult("highs", "Not Solved", None, 0.0))
    cert = transform.transform(mech, cfg)
    assert cert["certified"] is False and mech.certified is False
    assert "MILP" in cert["reason"]


def test_certificate_refused_at_zero_time_limit():
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    mech, cfg = incompatible(s)
    cfg.milp_time_limit = 1e-9
    cert = transform.transform(mech, cfg)
    if cert["milps"] and cert["milps"][0]["status"] == "Optimal":
        pytest.skip("the solver finished within its zero time limit (presolve solved it)")
    assert cert["certified"] is False


def test_discrete_reprice_reaches_yao_optimum():
    """Menus {item 1, item 2, bundle} with free prices per others' type: the re-pricing MILP
    must land on the optimal DSIC revenue 10.75 (LP optimum, REFERENCE.md) within 0.1%."""
    s = NAMED_SETTINGS["additive-2x2-yao"]()
    mech, cfg = constant_menu(s, [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5], [1.0, 0.5], [0.5, 1.0]],
                              [5.0, 5.0, 9.0, 4.0, 6.0, 6.0])
    cert = transform.transform(mech, cfg)
    assert cert["certified"] is True
    r = evaluate(s, mech)
    assert r["exact"] and abs(r["revenue"] - 10.75) <= 0.001 * 10.75, r["revenue"]
    assert r["over_allocation_max"] == 0.0 and r["regret_max"] <= 1e-9


def test_save_load_round_trip_is_bit_exact(tmp_path):
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    mech, cfg = incompatible(s)
    transform.transform(mech, cfg)
    mech.save(tmp_path / "ck")
    back = train.load(tmp_path / "ck")
    v = s.sample(5000, torch.Generator().manual_seed(5))
    a, b = mech(v), back(v)
    assert torch.equal(a.allocation, b.allocation) and torch.equal(a.payment, b.payment)
    assert back.certified == mech.certified
    cert = json.loads((tmp_path / "ck" / "certificate.json").read_text())
    assert cert["certified"] == mech.certified


def test_corrupted_checkpoint_gives_clear_error(tmp_path):
    s = NAMED_SETTINGS["additive-1x2-uniform"]()
    mech = rochetnet.fit(s, tiny_config(s, steps=5))
    mech.save(tmp_path / "ck")
    w = tmp_path / "ck" / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="corrupted"):
        train.load(tmp_path / "ck")
    (tmp_path / "ck" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config"):
        train.load(tmp_path / "ck")
    with pytest.raises(CheckpointError, match="does not exist"):
        train.load(tmp_path / "missing")


def test_rochetnet_is_single_bidder_and_certified():
    s2 = NAMED_SETTINGS["additive-2x2-uniform"]()
    with pytest.raises(ValueError, match="gemnet"):
        rochetnet.default_config(s2)
    s = NAMED_SETTINGS["additive-1x2-uniform"]()
    mech = rochetnet.fit(s, tiny_config(s, steps=200, menu_size=20))
    assert mech.certified is True and mech.strategyproof
    r = evaluate(s, mech, n=20_000)
    assert r["revenue"] > 0.3 and r["over_allocation_max"] == 0.0 and r["regret_max"] <= 1e-12


def test_registry_names_the_solvers():
    from infozoo.registry import load

    for name in ("gemnet", "rochetnet"):
        mod = load("solver", name)
        assert hasattr(mod, "Config") and hasattr(mod, "fit") and hasattr(mod, "load")


def test_cli_certify_rechecks_checkpoint(tmp_path, capsys):
    from infozoo.cli import main

    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    mech, cfg = incompatible(s)
    transform.transform(mech, cfg)
    mech.save(tmp_path / "ck")
    assert main(["certify", str(tmp_path / "ck"), "--profiles", "20000", "--restarts", "50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["certified"] is True and out["recomputed_condition_holds"] is True
    assert out["over_allocation_random"] == 0.0
    assert main(["certify", str(tmp_path / "nothing")]) == 2


def test_menu_plot_before_and_after(tmp_path):
    from infozoo.solvers.gemnet.plots import menu_plot

    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    mech, cfg = incompatible(s)
    transform.transform(mech, cfg)
    path = menu_plot(mech, tmp_path / "menu.png", resolution=21)
    assert path.is_file() and path.stat().st_size > 1000


@pytest.mark.parametrize("name,activation", [("additive-2x2-uniform", "relu"), ("unit-2x2-uniform", "tanh"),
                                             ("additive-3x3-uniform", "tanh")])
def test_interval_bounds_contain_the_menu(name, activation):
    s = NAMED_SETTINGS[name]()
    torch.manual_seed(0)
    net = MenuNetwork(s.bidders, s.items, 5, s.unit_demand, s.low(), s.high(), (16, 16), activation).double()
    g = torch.Generator().manual_seed(1)
    centre = s.sample(8, g)
    lo, hi = (centre - 0.05).clamp(0, 1), (centre + 0.05).clamp(0, 1)
    for i in range(s.bidders):
        a_lo, a_hi, b_lo, b_hi = net.interval_menu(i, lo, hi)
        for _ in range(20):
            v = lo + torch.rand(lo.shape, generator=g, dtype=torch.float64) * (hi - lo)
            a, b = net(v)
            assert bool((a[:, i] >= a_lo - 1e-12).all() and (a[:, i] <= a_hi + 1e-12).all())
            assert bool((b[:, i] >= b_lo - 1e-12).all() and (b[:, i] <= b_hi + 1e-12).all())


def test_unit_demand_snap_keeps_shares_feasible_and_bounded():
    """Snapping the softmax shares (0.05 of either end to exactly 0 / 1) keeps every element's
    shares summing to at most 1, produces exact zeros, and the interval bounds still hold."""
    s = NAMED_SETTINGS["unit-2x2-uniform"]()
    torch.manual_seed(0)
    net = MenuNetwork(2, 2, 16, True, s.low(), s.high(), (16, 16), "tanh", alloc_sharpness=4.0,
                      alloc_snap=0.05).double()
    g = torch.Generator().manual_seed(2)
    centre = s.sample(16, g)
    lo, hi = (centre - 0.02).clamp(0, 1), (centre + 0.02).clamp(0, 1)
    a_lo, a_hi, _, _ = net.interval_menu(0, lo, hi)
    for _ in range(20):
        v = lo + torch.rand(lo.shape, generator=g, dtype=torch.float64) * (hi - lo)
        a, _ = net(v)
        assert float(a.sum(-1).max()) <= 1 + 1e-12
        assert bool((a[:, 0] >= a_lo - 1e-12).all() and (a[:, 0] <= a_hi + 1e-12).all())
    assert bool((a == 0).any())


def test_mean_value_bounds_are_sound_and_tighter_than_ibp():
    from infozoo.solvers.gemnet.model import ibp_forward, mean_value_forward

    torch.manual_seed(0)
    net = MenuNetwork(2, 2, 8, False, torch.zeros(2, 2), torch.ones(2, 2), (32, 32), "tanh").double()
    seq = net.nets[0].requires_grad_(False)
    g = torch.Generator().manual_seed(3)
    c = torch.rand(64, 2, generator=g, dtype=torch.float64)
    lo, hi = c - 0.01, c + 0.01
    ml, mh = mean_value_forward(seq, lo, hi)
    il, ih = ibp_forward(seq, lo, hi)
    for _ in range(50):
        x = lo + torch.rand(lo.shape, generator=g, dtype=torch.float64) * (hi - lo)
        y = seq(x)
        assert bool((y >= ml - 1e-12).all() and (y <= mh + 1e-12).all())
    assert float((mh - ml).mean()) < float((ih - il).mean())


def test_margin_incompatibility_bounds_hard_over_allocation():
    g = torch.Generator().manual_seed(0)
    alpha = torch.rand(500, 2, 4, 2, generator=g)
    alpha[:, :, 0] = 0
    u = torch.randn(500, 2, 4, generator=g)
    k = u.argmax(-1)
    hard = alpha.gather(2, k[:, :, None, None].expand(-1, -1, 1, 2)).squeeze(2)
    over = (hard.sum(1) - 1).clamp(min=0).sum(-1)
    g_eps = train.margin_incompatibility(u, alpha, 0.1)
    assert bool((g_eps >= over - 1e-7).all()) and float(g_eps.sum()) > float(over.sum())


def crossing_menu(slope: float = 2.7, shift: float = -1.7, pair: bool = True) -> GemNetMechanism:
    """2x2: each bidder is offered item 1 alone at price p(x) = softplus(slope x + shift), x the
    other bidder's value of item 1. With the defaults p(x) - x >= 0.0295 on [0, 1], so both can
    never buy item 1, which changes hands across a thin slab around v_11 = v_21 where nobody
    buys it: a compatible menu whose switching surface is a slab, like a learned second-price menu."""
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    cfg = tiny_config(s, menu_size=1, hidden=(4,), activation="relu")
    net = MenuNetwork(s.bidders, s.items, 1, False, s.low(), s.high(), (4,), "relu").double()
    with torch.no_grad():
        for seq in net.nets:
            first, last = seq[0], seq[-1]
            first.weight.zero_(), first.bias.zero_(), last.weight.zero_()
            first.weight[0, 0] = 1.0  # hidden unit 0 = the other bidder's (normalised) value of item 1
            last.weight[2, 0] = slope  # price logit
            last.bias.copy_(torch.tensor([60.0, -60.0, shift], dtype=torch.float64))
    return GemNetMechanism(s, net, {**train.config_dict(cfg, s), "pair_condition": pair})


def test_split_halves_cover_the_cell():
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    mech = crossing_menu()
    cells = certify.initial_cells(mech, 2)
    for lookahead in (False, True):
        kids = certify.split(cells, mech, lookahead)
        assert len(kids) == 2 * len(cells)
        vol = lambda c: (c.hi - c.lo).prod(-1).prod(-1)  # noqa: E731
        assert torch.allclose(vol(kids).sum(), vol(cells).sum())
        assert bool((kids.lo >= s.low()).all() and (kids.hi <= s.high()).all())


def refine(mech: GemNetMechanism, lookahead: bool, max_depth: int = 24, max_cells: int = 300_000):
    return certify.refine_and_check(mech, certify.initial_cells(mech, 2), max_depth, max_cells, lookahead)


def assert_certified_with_fewer_cells(fewer, more, factor: int) -> None:
    assert not fewer.failing.any() and not more.failing.any()
    assert len(fewer.cells) * factor < len(more.cells), (len(fewer.cells), len(more.cells))


def assert_never_certified(pair: bool, max_depth: int, max_cells: int, lookahead: bool) -> None:
    """A menu that over-allocates on a set of positive measure (p(x) < x somewhere) fails, whatever the cuts."""
    bad = crossing_menu(2.9, -1.9, pair=pair)
    assert certify.verify_random(bad, 50_000) > 0.5
    assert refine(bad, lookahead, max_depth, max_cells).failing.any()


def test_lookahead_split_certifies_a_slab_with_fewer_cells():
    mech = crossing_menu(pair=False)
    assert certify.verify_random(mech, 50_000) == 0.0
    assert_certified_with_fewer_cells(refine(mech, True), refine(mech, False), 10)
    assert_never_certified(pair=False, max_depth=12, max_cells=50_000, lookahead=True)


def test_pair_condition_certifies_a_slab_without_refining_along_it():
    per_bidder = crossing_menu(pair=False)  # p(x) - x >= 0.0295
    pair = crossing_menu(pair=True)
    assert_certified_with_fewer_cells(refine(pair, False), refine(per_bidder, False), 20)
    assert_never_certified(pair=True, max_depth=6, max_cells=5_000, lookahead=False)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_utility_linearisation_contains_gradients_and_values(activation):
    torch.manual_seed(0)
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    net = MenuNetwork(2, 2, 5, False, s.low(), s.high(), (16, 16), activation).double()
    g = torch.Generator().manual_seed(1)
    c = s.sample(40, g)
    lo, hi = (c - 0.05).clamp(0, 1), (c + 0.05).clamp(0, 1)
    for i in range(2):
        u_c, g_lo, g_hi = net.utility_linearisation(i, lo, hi)
        g_mid, g_rad = (g_lo + g_hi) / 2, (g_hi - g_lo) / 2
        for _ in range(4):
            v = (lo + (hi - lo) * torch.rand(lo.shape, generator=g, dtype=torch.float64)).requires_grad_(True)
            a, b = net(v)
            u = (v[:, i].unsqueeze(1) * a[:, i]).sum(-1) - b[:, i]  # [C, K+1]
            grads = torch.stack([torch.autograd.grad(u[:, k].sum(), v, retain_graph=True)[0].reshape(40, -1)
                                 for k in range(u.shape[1])], 1)
            assert bool((grads >= g_lo - 1e-9).all() and (grads <= g_hi + 1e-9).all())
            y = (v - (lo + hi) / 2).reshape(40, 1, -1).detach()
            lin = u_c + (g_mid * y).sum(-1)
            err = (g_rad * y.abs()).sum(-1)
            assert bool(((u.detach() - lin).abs() <= err + 1e-9).all())


def test_monopoly_prices_recover_manelli_vincent():
    """One bidder, two U[0, 1] items: the size-priced menu the search finds is Manelli-Vincent's
    optimum (each item at 2/3, the bundle at (4 - sqrt 2) / 3, revenue 0.549201); one item is
    Myerson's reserve 1/2; three items beat separate sales (0.75) by bundling."""
    assert train.monopoly_prices(1) == (0.0, 0.5)
    p = train.monopoly_prices(2)
    assert abs(p[1] - 2 / 3) < 0.01 and abs(p[2] - (4 - 2 ** 0.5) / 3) < 0.01, p
    v = torch.rand(1_000_000, 3, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    for k, low in ((2, 0.5482), (3, 0.86)):
        best = v[:, :k].sort(-1, descending=True).values
        worth = torch.cat([torch.zeros(len(v), 1, dtype=torch.float64), best.cumsum(-1)], -1)
        prices = torch.tensor(train.monopoly_prices(k), dtype=torch.float64)
        revenue = float(prices[(worth - prices).argmax(-1)].mean())
        assert low < revenue < (0.549201 + 0.002 if k == 2 else 0.9), (k, revenue)


def test_myerson_warm_start_targets_are_itemwise_myerson():
    """With no gap, the warm start's menus (every bundle at the sum of its items' Myerson
    thresholds) are item-wise Myerson: revenue R_2 = 0.416667 per item on 2x2 U[0, 1]."""
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    v = s.sample(200_000, torch.Generator().manual_seed(5))
    alloc, beta = train.myerson_targets(s, v, 6, gap=0.0)  # [B, n, K, m], [B, n, K]
    alpha, price = MenuNetwork.with_null(alloc, beta)
    u = (v.unsqueeze(2) * alpha).sum(-1) - price
    k = u.argmax(-1)
    x = alpha.gather(2, k[:, :, None, None].expand(-1, -1, 1, 2)).squeeze(2)
    assert float((x.sum(1) - 1).clamp(min=0).max()) == 0.0  # compatible (ties have measure zero)
    revenue = float(price.gather(2, k[:, :, None]).sum((1, 2)).mean())
    assert abs(revenue - 2 * 0.416667) < 0.005, revenue
    skewed = from_dict({**s.to_dict(), "values": {"kind": "uniform", "low": 0.0, "high": [[1.0, 1.0], [2.0, 2.0]]}})
    net = MenuNetwork(2, 2, 3, False, skewed.low(), skewed.high(), (4,), menu_grid=4)
    with pytest.raises(ValueError, match="same range"):  # the grid version compares cells across bidders
        train.myerson_targets(skewed, v, 3, 0.0, net.grid_bounds)
    with pytest.raises(ValueError, match="warm_start"):
        train.check_config(dataclasses.replace(train.default_config(s), warm_start="rochet"))
    with pytest.raises(ValueError, match="warm_monopoly"):  # one-bidder menus exist only on a grid
        train.check_config(dataclasses.replace(train.default_config(s), warm_monopoly=True))
