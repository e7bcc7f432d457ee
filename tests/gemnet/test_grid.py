"""GemNet with piecewise-constant menus (``menu_grid``): menus constant on the cells of the
others' values, the exact per-cell feasibility check, the exclusion MILP and checkpoints."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from infozoo.envs.auction.mechanism import over_allocation
from infozoo.envs.auction.metrics import menu_regret
from infozoo.envs.auction.settings import NAMED_SETTINGS
from infozoo.solvers.gemnet import certify, train, transform
from infozoo.solvers.gemnet.model import MenuNetwork

from .test_gemnet import constant_menu, tiny_config


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFOZOO_PROGRESS", "0")


def test_grid_menu_is_constant_on_cells_and_ignores_own_bid():
    s = NAMED_SETTINGS["additive-2x3-uniform"]()
    torch.manual_seed(0)
    net = MenuNetwork(2, 3, 5, False, s.low(), s.high(), (16,), "tanh", menu_grid=4).double()
    g = torch.Generator().manual_seed(1)
    v = s.sample(500, g)
    lo, hi = net.cell_box(v)
    inside = lo + torch.rand(v.shape, generator=g, dtype=torch.float64) * (hi - lo)  # same cells
    a0, p0 = net(v)
    a1, p1 = net(inside)
    assert torch.equal(a0, a1) and torch.equal(p0, p1)
    moved = v.clone()
    moved[:, 0] = s.sample(500, g)[:, 0]  # bidder 0's own bid: bidder 0's menu must not change
    a2, p2 = net(moved)
    assert torch.equal(a0[:, 0], a2[:, 0]) and torch.equal(p0[:, 0], p2[:, 0])
    assert not torch.equal(p0[:, 1], p2[:, 1])  # bidder 1 reads bidder 0's cell
    edge = torch.zeros(1, 2, 3, dtype=torch.float64)  # cells are half-open: 0.25 starts cell 1
    edge[0, 0, 0] = 0.25
    assert torch.equal(net.cell_box(edge)[0][0, 0, 0], torch.tensor(0.25, dtype=torch.float64))


def test_grid_check_is_exact_for_posted_prices():
    """Both bidders may buy item 1 at 0.6 whatever the others bid. On a 4-per-dimension grid the
    product cells where both can buy are exactly those whose item-1 cells of both bidders reach
    above 0.6 (cells [0.5, 0.75) and [0.75, 1]): 2 x 4 own cells per bidder, 64 product cells.
    The check must find exactly these (no more: its candidate sets are exact here)."""
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    mech, cfg = constant_menu(s, [[1.0, 0.0]], [0.6], menu_grid=4)
    mech.grid = transform.price_grid(mech, cfg)
    res = certify.check_grid(mech, max_depth=6)
    digits = certify.grid_digits(res.failing, 4, 4).reshape(-1, 2, 2)
    assert len(res.failing) == 64 and bool((digits[:, :, 0] >= 2).all())
    assert res.worst_slack == -1.0
    one = constant_menu(s, [[1.0, 0.0]], [0.6], menu_grid=4)[0]  # a single buyer of item 1 would pass
    one.net.nets[1][-1].bias.data[-1] = 30.0  # bidder 1's price ~ 30: never buys
    assert len(certify.check_grid(one, max_depth=6).failing) == 0


def test_grid_check_is_exact_on_uneven_grid_breaks(tmp_path):
    """The same posted price 0.6 on cells [0, 0.3), [0.3, 0.65), [0.65, 0.8), [0.8, 1]: both
    bidders can buy item 1 exactly in their item-1 cells 1-3 (cell 1 reaches 0.65 > 0.6), so
    3 x 4 own cells per bidder fail, 144 product cells; the breaks survive a save / load."""
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    breaks = (0.3, 0.65, 0.8)
    mech, cfg = constant_menu(s, [[1.0, 0.0]], [0.6], menu_grid=4, grid_breaks=breaks)
    lo, hi = mech.net.cell_box(torch.tensor([[[0.31, 0.9], [0.7, 0.05]]], dtype=torch.float64))
    assert torch.allclose(lo, torch.tensor([[[0.3, 0.8], [0.65, 0.0]]], dtype=torch.float64))
    assert torch.allclose(hi, torch.tensor([[[0.65, 1.0], [0.8, 0.3]]], dtype=torch.float64))
    res = certify.check_grid(mech, max_depth=6)
    digits = certify.grid_digits(res.failing, 4, 4).reshape(-1, 2, 2)
    assert len(res.failing) == 144 and bool((digits[:, :, 0] >= 1).all())
    mech.save(tmp_path / "ck")
    assert train.load(tmp_path / "ck").net.grid_breaks == breaks
    for bad, match in [((0.3, 0.65), "3 inner break points"), ((0.3, 0.2, 0.8), "increase strictly"),
                       ((0.3, 0.65, 1.0), "increase strictly")]:
        with pytest.raises(ValueError, match=match):
            train.check_config(tiny_config(s, menu_grid=4, grid_breaks=bad))
    with pytest.raises(ValueError, match="needs a menu grid"):
        train.check_config(tiny_config(s, menu_grid=0, grid_breaks=breaks))


def test_candidates_equal_the_pairwise_test_against_every_element():
    """``candidates`` tests each element only against the bound candidates; that must give the
    same set as testing it against every element of the menu (``pair_gaps`` over all K+1)."""
    s = NAMED_SETTINGS["additive-2x3-uniform"]()
    torch.manual_seed(3)
    net = MenuNetwork(2, 3, 12, False, s.low(), s.high(), (16,), "tanh", alloc_sharpness=3.0,
                      menu_grid=4).double()
    mech, _ = constant_menu(s, [[1.0, 0.0, 0.0]], [0.5], menu_grid=4)
    mech.net = net
    menus = certify.grid_menus(mech)
    cells = torch.randperm(4 ** 6, generator=torch.Generator().manual_seed(0))[:300].sort().values
    boxes = certify.refine_own(certify.product_boxes(mech, cells), menus, cells, 2, max_depth=3)
    cand, _, _ = certify.candidates(boxes, menus, chunk=97)  # several chunks
    u_lo, u_hi, _ = boxes.bounds(menus)
    ref = certify.candidates_of(u_lo, u_hi)
    rows, ks = ref.nonzero(as_tuple=True)
    ref[rows, ks] = (certify.pair_gaps(boxes, menus, rows, ks) >= 0).all(-1)
    assert torch.equal(cand, ref)
    assert int((cand.sum(-1) > 1).sum()) > 50  # several candidates in many boxes
    assert int(ref.sum()) < int(certify.candidates_of(u_lo, u_hi).sum())  # and the test removed some


def test_candidates_of_bundle_menus_equal_the_pairwise_test():
    """With 0/1 allocations ``candidates`` computes the pairwise gaps as two batched products;
    the sets must equal ``pair_gaps``' on random boxes, bundles priced per menu cell, with exact
    ties (a duplicated element) kept on both sides."""
    g = torch.Generator().manual_seed(0)
    K1, m, cells, rows = 9, 3, 50, 20000
    bundles = torch.tensor([[(k >> j) & 1 for j in range(m)] for k in range(8)] + [[1, 1, 0]], dtype=torch.float64)
    alpha = bundles.expand(1, cells, K1, m).clone()
    price = torch.rand(1, cells, K1, generator=g, dtype=torch.float64) * alpha.sum(-1) * 0.6
    price[..., 0] = 0.0
    price[..., 8] = price[..., 3]  # element 8 = element 3 (bundle {0, 1}), same price: a tie
    menus = certify.GridMenus(alpha, price)
    assert menus.binary and not certify.GridMenus(alpha * 0.5, price).binary
    cell = torch.randint(0, cells, (rows,), generator=g)
    lo = torch.rand(rows, m, generator=g, dtype=torch.float64) * 0.8
    hi = lo + torch.rand(rows, m, generator=g, dtype=torch.float64) * 0.3
    boxes = certify.OwnBoxes(cell, torch.zeros_like(cell), cell, lo, hi)
    cand, _, _ = certify.candidates(boxes, menus, chunk=997)
    u_lo, u_hi, _ = boxes.bounds(menus)
    ref = certify.candidates_of(u_lo, u_hi)
    r, ks = ref.nonzero(as_tuple=True)
    ref[r, ks] = (certify.pair_gaps(boxes, menus, r, ks) >= 0).all(-1)
    assert torch.equal(cand, ref)
    assert int((cand.sum(-1) > 1).sum()) > 1000 and int(ref.sum()) < int(certify.candidates_of(u_lo, u_hi).sum())
    assert torch.equal(cand[:, 3], cand[:, 8]) and bool(cand[:, 3].any())


def _own_loads_one_menu_at_a_time(mech, menus, bidder: int) -> torch.Tensor:
    """``own_loads`` without sharing rows between identical menus (each menu cell on its own)."""
    m, G, n = mech.setting.items, mech.net.menu_grid, mech.setting.bidders
    own = torch.arange(G ** m)
    lo, hi = certify.own_box(mech, bidder, certify.grid_digits(own, G, m))
    rows = []
    for c in range(G ** ((n - 1) * m)):
        menu = torch.full_like(own, c)
        boxes = certify.OwnBoxes(menu, torch.full_like(own, bidder), menu, lo, hi)
        cand, _, alpha = certify.candidates(boxes, menus)
        rows.append(torch.where(cand.unsqueeze(-1), alpha, 0.0).amax(1))
    return torch.stack(rows)


def test_own_loads_share_rows_of_identical_menus_only():
    """Identical menus share one computed row of the load table; the table must equal the
    row-by-row one, for menus that are all the same (posted prices: one distinct menu, bundle
    allocations: a uint8 table) and for menus that all differ (a random network: float64)."""
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    posted, _ = constant_menu(s, [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], [0.55, 1.2, 0.6], menu_grid=4)
    torch.manual_seed(3)
    varied, _ = constant_menu(s, [[1.0, 0.0]], [0.5], menu_grid=4)
    varied.net = MenuNetwork(2, 2, 6, False, s.low(), s.high(), (16,), "tanh", alloc_sharpness=3.0,
                             menu_grid=4).double()
    for mech, dtype, distinct in ((posted, torch.uint8, 1), (varied, torch.float64, 16)):
        menus = certify.grid_menus(mech)
        key = torch.cat([menus.alpha[0].flatten(1), menus.price[0]], 1)
        assert len(torch.unique(key, dim=0)) == distinct
        for i in range(2):
            table = certify.own_loads(mech, menus, i, torch.arange(16))
            assert table.dtype == dtype
            assert torch.equal(table.to(torch.float64), _own_loads_one_menu_at_a_time(mech, menus, i))


@pytest.mark.parametrize("n", [2, 3])
def test_grid_failing_sums_the_tables_on_every_product_cell(n: int):
    """``grid_failing`` reads bidder i's load of product cell (q_0, ..., q_{n-1}) (flat number
    sum_i q_i C^(n-1-i)) at row = the others' own cells in bidder order, column q_i of its table."""
    C, m = 5, 2
    g = torch.Generator().manual_seed(n)
    tables = [(torch.rand(C ** (n - 1), C, m, generator=g, dtype=torch.float64) * 0.7).round(decimals=1)
              for _ in range(n)]
    failing, worst = certify.grid_failing(tables, C, block=7 * C * m)  # several blocks
    ref_fail, ref_worst = [], float("inf")
    for flat in range(C ** n):
        q = [(flat // C ** (n - 1 - i)) % C for i in range(n)]
        load = sum(tables[i][sum(q[j] * C ** (n - 2 - r) for r, j in enumerate(k for k in range(n) if k != i)), q[i]]
                   for i in range(n)).amax()
        if load > 1:
            ref_fail.append(flat)
        else:
            ref_worst = min(ref_worst, 1 - float(load))
    assert failing.tolist() == ref_fail and 0 < len(ref_fail) < C ** n
    assert worst == pytest.approx(ref_worst, abs=1e-12)
    binary = [(t > 0.5).to(torch.uint8) for t in tables]  # uint8 tables give the same cells as float64
    assert torch.equal(certify.grid_failing(binary, C)[0], certify.grid_failing([b.double() for b in binary], C)[0])


def test_recheck_after_a_price_change_matches_a_full_check():
    """The transform re-checks only the product cells that face a menu whose prices rose; the
    result must equal a full check (failing cells, their refined boxes and the load tables)."""
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    mech, cfg = constant_menu(s, [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], [0.55, 1.2, 0.6], menu_grid=4)
    mech.grid = transform.price_grid(mech, cfg)
    mech.delta = torch.zeros(2, mech.grid.cells, 4, dtype=torch.float64)
    before = certify.check_grid(mech, max_depth=6)
    changed = torch.zeros(2, mech.grid.cells, dtype=torch.bool)
    changed[0, 3:9] = changed[1, 11] = True  # raise item 1's price in some of the menus
    mech.delta[:, :, 1] = torch.where(changed, 0.3, 0.0)
    full = certify.check_grid(mech, max_depth=6)
    again = certify.recheck_grid(mech, before, changed, max_depth=6)
    assert not torch.equal(full.failing, before.failing)  # the change matters
    assert torch.equal(again.failing, full.failing)
    key = lambda b: sorted(zip(b.cell.tolist(), b.bidder.tolist(), b.lo.flatten(1).tolist(),  # noqa: E731
                               b.hi.flatten(1).tolist()))
    assert key(again.boxes) == key(full.boxes)
    # the per-bidder load tables: only the changed menus' rows were recomputed, and they match
    assert all(torch.equal(a, f) for a, f in zip(again.table, full.table, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(again.table, before.table, strict=True))
    facing = certify.cells_facing(mech, changed)  # bidder 0's menu of cell c_1 = cells with b_1 in c_1
    digits = certify.grid_digits(facing, 4, 4).reshape(-1, 2, 2)
    menu0 = digits[:, 1, 0] * 4 + digits[:, 1, 1]
    menu1 = digits[:, 0, 0] * 4 + digits[:, 0, 1]
    assert bool(((menu0 >= 3) & (menu0 < 9) | (menu1 == 11)).all()) and len(facing) == 7 * 16 - 6


def test_grid_transform_certifies_by_raising_prices():
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    mech, cfg = constant_menu(s, [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], [0.55, 1.2, 0.6], menu_grid=4)
    v = s.sample(20_000, torch.Generator().manual_seed(2))
    assert float(over_allocation(mech(v).allocation).max()) > 0.5
    _, p_before = mech.menus(v)
    cert = transform.transform(mech, cfg)
    assert cert["certified"] is True, cert
    assert all(m["status"] == "Optimal" for m in cert["milps"]) and cert["n_milps"] >= 1
    _, p_after = mech.menus(v)
    assert bool((p_after >= p_before - 1e-12).all())  # the exclusion MILP only raises prices
    assert certify.verify_random(mech, 100_000, seed=3) == 0.0
    assert certify.adversarial_search(mech, restarts=200, rounds=10)["max_over_allocation"] == 0.0
    assert float(menu_regret(mech, v[:2000]).max()) <= 1e-12  # still SP: only prices changed
    again = certify.recheck(mech, profiles=10_000, restarts=50)
    assert again["certified"] is True and again["check"]["failing_cells"] == 0


def test_grid_transform_can_move_a_unit_demand_bidder_to_the_other_item():
    """Both unit-demand bidders may buy item A at 0.3 and item B at 0.35 whatever the other bids.
    Offered only fallbacks that allocate no more (here: nothing), the exclusion MILP can repair a
    conflict only by pricing a bidder out; offered the cheapest other element too
    (``fallbacks``), it can price one bidder off A onto B and keep both sales: more revenue, still
    certified and feasible. After ``fallback_rounds`` rounds only the smaller fallbacks are
    offered (two elements that are each other's fallback could be raised in turn for ever)."""
    s = NAMED_SETTINGS["unit-2x2-uniform"]()
    revenue = {}
    for fallbacks in (0, 1):
        mech, cfg = constant_menu(s, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [0.3, 0.35], menu_grid=4)
        cfg = dataclasses.replace(cfg, fallbacks=fallbacks, fallback_rounds=2, milp_rounds=30, own_depth=0)
        cert = transform.transform(mech, cfg)
        assert cert["certified"] is True, cert
        assert [m["fallbacks"] for m in cert["milps"]] == [fallbacks if m["round"] <= 2 else 0
                                                           for m in cert["milps"]]
        assert certify.verify_random(mech, 50_000, seed=3) == 0.0
        revenue[fallbacks] = cert["revenue_after"]
    assert revenue[1] > revenue[0] + 0.05, revenue


def test_grid_milp_with_other_fallbacks_that_times_out_is_priced_again_without_them(monkeypatch):
    """A small batch whose MILP (offering other allocations' fallbacks) stops at its time limit is
    discarded and priced again without them, instead of ending the transform uncertified."""
    s = NAMED_SETTINGS["unit-2x2-uniform"]()
    real = transform.milp_grid

    def slow_with_fallbacks(mech, batch, cfg, fallbacks=0):
        status, x = real(mech, batch, cfg, fallbacks)
        if fallbacks:  # pretend that every MILP offering other fallbacks hits the time limit
            return {**status, "status": "Time limit"}, torch.zeros_like(x)
        return status, x

    monkeypatch.setattr(transform, "milp_grid", slow_with_fallbacks)
    monkeypatch.setattr(transform, "MIN_GRID_BATCH", 10_000)  # no splitting: the retry is the way out
    mech, cfg = constant_menu(s, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [0.3, 0.35], menu_grid=4)
    cfg = dataclasses.replace(cfg, fallbacks=1, fallback_rounds=2, milp_rounds=30, own_depth=0)
    cert = transform.transform(mech, cfg)
    assert cert["certified"] is True, cert
    retried = [m for m in cert["milps"] if m.get("applied") is False]
    assert retried and all(m["fallbacks"] == 1 and m["status"] == "Time limit" for m in retried)
    assert all(m["fallbacks"] == 0 and m["status"] == "Optimal" for m in cert["milps"] if m.get("applied", True))
    assert certify.verify_random(mech, 50_000, seed=3) == 0.0


def test_grid_transform_leaves_compatible_menus_unchanged():
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    mech, cfg = constant_menu(s, [[0.5, 0.5], [0.5, 0.0]], [0.6, 0.2], menu_grid=3)
    cert = transform.transform(mech, cfg)
    assert cert["certified"] is True and cert["n_milps"] == 0 and mech.delta is None


def test_grid_timed_out_milp_is_discarded_and_split(monkeypatch: pytest.MonkeyPatch):
    """A grid MILP stopped by its time limit is not used: its batch is priced in halves. Only the
    MILPs whose prices are applied must be Optimal; a small batch that times out is refused."""
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    real = transform.solve_milp
    sizes: list[int] = []

    def slow_on_big(prob, cfg):  # pretend that MILPs over more than 20 cells hit the time limit
        result = real(prob, cfg)
        cells = len({v.name.split("_")[1] for v in prob.variables() if v.name.startswith("A_")}) // 2
        sizes.append(cells)
        return result if cells <= 20 else type(result)(result.solver, "Time limit", None, result.wall_time)

    monkeypatch.setattr(transform, "solve_milp", slow_on_big)
    monkeypatch.setattr(transform, "MIN_GRID_BATCH", 8)
    mech, cfg = constant_menu(s, [[1.0, 0.0]], [0.6], menu_grid=4)  # 64 failing cells
    cert = transform.transform(mech, cfg)
    assert cert["certified"] is True, cert
    discarded = [m for m in cert["milps"] if m.get("applied") is False]
    assert cert["discarded_milps"] == len(discarded) >= 1
    assert all(m["status"] == "Time limit" for m in discarded)
    assert all(m["status"] == "Optimal" for m in cert["milps"] if m.get("applied", True))
    assert max(sizes) == 64 and min(sizes) <= 20
    assert certify.recheck(mech, profiles=10_000, restarts=20)["certified"] is True
    monkeypatch.setattr(transform, "MIN_GRID_BATCH", 64)  # 64 cells < 2 x 64: refused, not split
    mech, cfg = constant_menu(s, [[1.0, 0.0]], [0.6], menu_grid=4)
    cert = transform.transform(mech, cfg)
    assert cert["certified"] is False and cert["milps"][-1]["status"] == "Time limit"


@pytest.mark.parametrize("name", ["additive-2x2-uniform", "unit-2x2-uniform"])
def test_grid_fit_save_load_round_trip(tmp_path, name):
    s = NAMED_SETTINGS[name]()
    cfg = tiny_config(s, menu_grid=4, steps=20, warm_steps=100, milp_rounds=30)
    mech = train.fit(s, cfg)
    assert mech.certified is True, mech.certificate
    assert mech.report["over_allocation_random"] == 0.0
    mech.save(tmp_path / "ck")
    back = train.load(tmp_path / "ck")
    assert back.net.menu_grid == 4
    v = s.sample(5000, torch.Generator().manual_seed(5))
    a, b = mech(v), back(v)
    assert torch.equal(a.allocation, b.allocation) and torch.equal(a.payment, b.payment)
    assert certify.recheck(back, profiles=10_000, restarts=20)["certified"] is True


def test_grid_myerson_with_three_bidders_needs_no_milp():
    """With three bidders the priority rule must also settle ties in the top cell among the two
    others (the later ones face its upper end) and the one-bidder menus go to the first bidder
    only; the exact check finds no failing cell and random profiles no over-allocation."""
    from infozoo.envs.auction.settings import uniform

    s = uniform(3, 2)
    cfg = tiny_config(s, warm_start="myerson", warm_monopoly=True, menu_grid=3, grid_breaks=(0.5, 0.75),
                      menu_size=3, steps=0, warm_steps=200, warm_gap=0.001, own_depth=0)
    mech = train.fit(s, cfg)
    assert mech.certified and mech.certificate["n_milps"] == 0 and mech.certificate["failing_cells"] == 0
    out = mech(s.sample(200_000, torch.Generator().manual_seed(4)))
    assert float(over_allocation(out.allocation).max()) == 0.0
    assert float(out.payment.sum(1).mean()) > 2 * 0.45  # item-wise Myerson, 3 U[0, 1] bidders: 0.53 per item


def test_default_menu_grid_keeps_the_exact_check_small():
    for name in ("additive-2x2-uniform", "unit-2x2-uniform", "additive-2x3-uniform", "additive-3x3-uniform",
                 "additive-2x5-uniform"):
        s = NAMED_SETTINGS[name]()
        cfg = train.default_config(s)
        # an AMA start needs MILP rounds over the failing cells; the grid Myerson needs one check
        limit = 400_000_000 if cfg.warm_start == "myerson" else 3_000_000
        assert cfg.menu_grid > 1 and cfg.menu_grid ** (s.bidders * s.items) <= limit, name
        train.check_config(cfg)  # the default break points (2x3) are valid
    big_setting = NAMED_SETTINGS["additive-3x10-uniform"]()
    big = train.default_config(big_setting)
    assert big.menu_grid == 0  # 2^30 product cells: continuous menus and interval bounds instead
    # whose certificate starts from 2^30 cells too: refused before any training, with the ways out
    with pytest.raises(ValueError, match=r"2\^30 = 1,073,741,824 cells.*transform=False"):
        train.fit(big_setting, big)
    train.check_config(dataclasses.replace(big, transform=False))
    with pytest.raises(ValueError, match="menu_grid"):
        train.check_config(tiny_config(NAMED_SETTINGS["additive-2x2-uniform"](), menu_grid=-1))


def test_best_teacher_keeps_the_restart_with_the_highest_validation_revenue(monkeypatch):
    """``teacher_restarts`` trains the teacher once per seed (seed + 1000 r) and keeps the best on
    validation profiles; one restart keeps the config's own seed and skips the validation."""
    from infozoo import registry
    from infozoo.envs.auction.mechanism import Outcome

    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    pay = {5: 0.3, 1005: 0.7, 2005: 0.5}  # teacher revenue by training seed

    class Fake:
        def __init__(self, seed: int) -> None:
            self.seed = seed

        def __call__(self, bids: torch.Tensor) -> Outcome:
            B = bids.shape[0]
            return Outcome(torch.zeros(B, 2, 2), torch.full((B, 2), pay[self.seed] / 2))

    class Module:
        @staticmethod
        def default_config(setting, profile, seed):
            return seed

        @staticmethod
        def fit(setting, seed):
            return Fake(seed)

    monkeypatch.setattr(registry, "load", lambda kind, name: Module)
    cfg = tiny_config(s, warm_start="lottery-ama", seed=5, teacher_restarts=3)
    assert train.best_teacher(s, cfg, profiles=64).seed == 1005
    assert train.best_teacher(s, tiny_config(s, warm_start="lottery-ama", seed=5), profiles=64).seed == 5
    with pytest.raises(ValueError, match="teacher_restarts must be >= 1"):
        train.check_config(tiny_config(s, teacher_restarts=0))


def test_grid_myerson_warm_start_is_certified_without_a_milp(tmp_path):
    """The grid Myerson (``myerson_targets`` on a menu grid) is compatible on every product cell by
    construction, and the snapped price table makes the distilled menus equal it exactly: the
    transform needs no MILP. Its revenue has a closed form on 2x2 U[0, 1] with 4 cells per
    dimension: bidder 1 (priority) pays t1 = max(1/2, lower end of bidder 2's cell) + gap, bidder
    2 pays t2 = max(1/2, upper end of bidder 1's cell) + gap, each cell of the other with
    probability 1/4, so revenue per item is sum_c (t1(c) (1 - t1(c)) + t2(c) (1 - t2(c))) / 4."""
    s = NAMED_SETTINGS["additive-2x2-uniform"]()
    gap = 0.002
    cfg = tiny_config(s, warm_start="myerson", menu_grid=4, menu_size=3, steps=0, warm_steps=200,
                      warm_gap=gap, own_depth=0)
    mech = train.fit(s, cfg)
    cert = mech.certificate
    assert mech.certified and cert["n_milps"] == 0 and cert["failing_cells"] == 0
    assert cert["warm_start_price_table"] and cert["max_price_change"] == 0.0
    assert mech.report["warm_start"]["prices_snapped"]
    ends = [0.0, 0.25, 0.5, 0.75, 1.0]
    t1 = [max(0.5, ends[c]) + gap for c in range(4)]
    t2 = [max(0.5, ends[c + 1]) + gap for c in range(4)]
    exact = 2 * sum(max(t, 0) * max(1 - t, 0) for t in t1 + t2) / 4
    v = s.sample(400_000, torch.Generator().manual_seed(3))
    out = mech(v)
    assert float(over_allocation(out.allocation).max()) == 0.0
    assert abs(float(out.payment.sum(1).mean()) - exact) < 0.003, (float(out.payment.sum(1).mean()), exact)
    # bidder 1 alone (the first bidder) gets Manelli-Vincent's menu when bidder 2 is below the reserve
    # on both items (probability 1/4, +0.0492 there): still no MILP, and 0.0123 more revenue
    bundled = train.fit(s, dataclasses.replace(cfg, warm_monopoly=True))
    assert bundled.certified and bundled.certificate["n_milps"] == 0
    out_b = bundled(v)
    assert float(over_allocation(out_b.allocation).max()) == 0.0
    gain = float((out_b.payment.sum(1) - out.payment.sum(1)).mean())
    assert abs(gain - 0.0492 / 4) < 0.002, gain
    bundled.save(tmp_path / "ck")  # the price table travels with the checkpoint
    back = train.load(tmp_path / "ck")(v[:5000])
    assert torch.equal(back.allocation, out_b.allocation[:5000]) and torch.equal(back.payment, out_b.payment[:5000])
    cfg.snap_prices = False  # distilled alone, the same targets leave price errors that open conflicts
    plain = train.fit(s, cfg).certificate
    assert plain["warm_start_price_table"] is False and plain["n_milps"] > 0
    assert plain["revenue_after"] < cert["revenue_after"] - 0.02
