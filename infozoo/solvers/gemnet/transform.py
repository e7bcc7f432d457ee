"""GemNet's price transform: change prices (only prices) so menus are compatible everywhere.

Only prices change: the transformed price of element k of bidder i is beta_i^k(b_{-i}) +
delta_i^k(c), where c is the cell of b_{-i} in a rectilinear price grid of V_{-i}. delta depends
on b_{-i} alone, so menus stay self-bid independent and the mechanism stays SP and IR (the null
element is never re-priced). Menus that already pass the certificate are left unchanged (no
MILP is built). Afterwards ``certify`` re-checks everything independently of the MILP.

Continuous settings (cells Q from ``certify.refine_and_check``; bounds u-low, u-high, alpha-bar
at the current prices; Delta = ``max_change`` x the largest value)
-------------------------------------------------------------------------------------------
Free variables: x_i^k(c) = x+ - x-, 0 <= x+-, <= Delta, for every (bidder i, price cell c,
element k) with k in S_i(Q) for some failing cell Q whose Q_{-i} lies in c. The constraint
cells are all cells touching a free price cell, minus those that pass (*) whatever the free
prices do (skipping). For such a cell Q and bidder i let l be the element with the largest lower
bound (the *leader*, fixed from the current prices), r the element of largest lower bound among
those whose price is not free (the *reference*: the null element at worst, u = 0, and it never
moves), and R the elements that may still be chosen: u-high^k + Delta [k free] >=
max(u-low^l - Delta [l free], u-low^r). Variables and constraints per (Q, i):

    c_k in {0, 1}   (k in R + {l}, k may be chosen in Q)
    u-high^k - x^k - (u-low^l - x^l) + eps <= M c_k           (k != l: c_k = 0 only if l beats k on Q)
    u-high^l - x^l - u-low^r + eps <= M c_l                   (c_l = 0 only if r beats l on Q)
    A_ij >= alpha-bar_ij^k c_k                                (A_ij bounds bidder i's load)
    sum_i A_ij <= 1                                           (condition (*), every item j)

When both k and l are free, k may instead be beaten by r (a leader priced out must not take the
elements it used to beat with it): with z_k in {0, 1} the first line becomes
u-high^k - x^k - (u-low^l - x^l) + eps <= M (c_k + z_k) and u-high^k - x^k - u-low^r + eps <=
M (c_k + 1 - z_k). A leader that truly over-allocates with the other bidder's choice can be
priced out (a leader whose price is not free has c_l = 1 fixed). Every exclusion is by an element
that beats the excluded one on all of Q, so the soundness argument below holds whether or not the
beating element itself stays a candidate.

(terms of elements whose price is not free, or whose candidacy cannot change, are constants).
With two additive bidders, cells that pass the certificate's pair condition (**) at the current
prices are not constrained (the per-bidder form above is too coarse for them); if a price change
breaks one, the re-certification finds it and the next round repairs it.
Objective: minimise sum (x+ + x-), the total price change. A small Delta keeps the MILP small
(fewer elements can change candidacy, more cells are skipped); up to ``milp_rounds`` rounds of
MILP + re-certification are run. A MILP that is refused for size (``milp_max_binaries``), is
infeasible, or stops at its time limit (PuLP may call a time-limited HiGHS incumbent "Optimal";
``solve_milp`` checks the solution status) leaves the mechanism uncertified. Soundness: in any feasible solution
every element outside {k : c_k = 1} has u-high^k - x^k < u-low^l - x^l <= max_k' u-low^k', so
the certificate's candidate set at the new prices is inside {c_k = 1}, and (*) holds with the
certificate's own (smaller) loads. The MILP is only a price chooser: the certificate is then
recomputed from scratch (cells refined again where needed).

Margin argument (why grid cells certify the whole space). Every profile v lies in some cell Q
of the partition (cells are boxes covering the value box). The cell bounds of the menu MLP
(interval bound propagation intersected with the mean-value form, ``model.interval_forward``) give, for
every v_{-i} in the box Q_{-i}, alpha_ij^k(v_{-i}) <= alpha-bar_ij^k(Q) and
beta^k(v_{-i}) in [beta-low, beta-high]; with v_i in Q_i and the exact corner bounds of the
bilinear term, u_i^k(v) in [u-low_i^k(Q), u-high_i^k(Q)]. If k is not in S_i(Q) then for some
k', u_i^k(v) <= u-high^k < u-low^k' <= u_i^k'(v), so bidder i does not take k at v. Hence the
chosen k_i lies in S_i(Q) and sum_i alpha_ij^{k_i}(v) <= sum_i max_{k in S_i(Q)}
alpha-bar_ij^k(Q) <= 1. The "margin" between grid points is therefore built into the bounds:
they hold on the whole cell, not just at its centre (a global Lipschitz constant L would give the
same with u-low = u(centre) - L r; the mean-value form is that argument with the Lipschitz
constant of the cell itself, an interval Jacobian over Q_{-i}, so it shrinks with the cell).
Training with ``choice_margin`` eps (``train.margin_incompatibility``) makes the elements within
utility eps of each bidder's best compatible, so cells whose utility spread is below ~eps/2
pass (*) by refinement alone, and the MILP is needed only where that fails.

Piecewise-constant menus (``menu_grid`` G > 0; cells = the product cells of the menu grid)
-------------------------------------------------------------------------------------------
The price grid is the menu grid, so in a product cell q = (q_1, ..., q_n) bidder i faces one
menu, M_i(q_{-i}), and its price change x_i^k(q_{-i}) is one number (added to the warm start's
price table, ``train.snap_prices``, when there is one; ``max_price_change`` counts only the
transform's own changes). ``certify.check_grid`` gives
the failing cells with each bidder's own box Q_i refined into boxes b; the candidate sets are
exact up to that refinement, so the transform can be local: prices only *rise*, and each failing
cell is repaired by excluding elements from the bidders' own boxes. Excluding candidate k of
bidder i in box b by an element f means raising k's price by g(k, f) + eps, g(k, f) = max_{v in b}
(u^k(v) - u^f(v)) (exact: u^k - u^f is affine in v with constant slope alpha^k - alpha^f,
``certify.pair_gaps``), after which f beats k on all of b. The options o of k, each a raise r_o and
the allocation l_o the bidder is left with at worst: its *fallback* f(k), among the elements
allocating no more than k (alpha^f <= alpha^k item-wise, the null element at worst) the one with
the smallest g(k, f), leaving alpha^f <= alpha^k; the ``fallbacks`` elements of the smallest
g(k, f) among the others, leaving their own allocation (a unit-demand bidder priced off item B onto
item A); and the null element, a raise of u-high^k(b) + eps leaving nothing. Per round, over a
batch of failing cells q (``grid_batch``), with the worst case over the boxes b of q where k is a
candidate:

    e_qiko in {0, 1},  sum_o e_qiko <= 1                          (k excluded by option o)
    x_i^k(q_{-i}) >= sum_o r_qiko e_qiko                           (x >= 0: prices rise)
    A_qij >= alpha_ij^k (1 - sum_o e_qiko),  A_qij >= l_qioj e_qiko
    sum_i A_qij <= 1                                               (condition (*), item j)
    minimise sum x                      (always feasible: every candidate excluded to null leaves 0)

The other elements are offered only in the first ``fallback_rounds`` rounds: two elements can be
each other's cheapest fallback, and a round then raises one, the next the other, by eps each time
(on unit-2x2 with them in all 30 rounds, 46 cells were still failing after the last one). From
then on the options only shrink allocations, so the termination argument below holds. Measured on
unit-2x2 (the quick sweep's distilled menus, G = 32, transform's 200k profiles): without the other
elements certified 0.6712 (61 MILPs), with one in the first 3 / 8 / 15 rounds 0.6763 / 0.6780 /
0.6781 (a first version; the default, 8 rounds, run by ``infozoo train gemnet``: 0.6764, 61 MILPs,
and 0.6770 with batches of 2,000 cells and a 120 s limit); two elements 0.6773, three 0.6764 (71
MILPs, 9 discarded; before small timed-out batches were priced again without them, a 435-cell
batch ran past the 30 s limit in round 8 and left it uncertified at 0.6848 with 748 cells still
failing), three with batches of 500 cells 0.6755. Finer or coarser grids do not help: G = 24
certified 0.6781 (transform 60 s), G = 48 0.6786 (211 MILPs, 13 min). On 2x2 the certified revenue
is unchanged (0.866973 on the transform's profiles either way; 0.8654 on the quick table's 100k, as
before). A revenue proxy in the objective instead of sum x (each option weighted by r_o times the
price k loses to its fallback, plus c sum x) certified less on unit-2x2: 0.6690, 0.6696, 0.6749,
0.6776 for c = 0.01, 0.1, 1, 5.
(Alternatives measured on 2x3 with the same distilled menus, certified revenue: weighting x by the
probability that k is sold in its cell, 1.165 vs 1.148 at G = 4 but 1.216 vs 1.225 at G = 8; by a
one-element estimate of the revenue a raise loses, 1.124 at G = 4; a priority for bidder 1's
elements, 1.113 at G = 4. The plain sum is kept.)
x is shared by every cell whose bidder i faces the menu of q_{-i}, so one raise serves all of
them; a raise can also change choices in other cells (that is why the check is re-run after each
round and another round follows). The re-run checks only the product cells that face a menu whose
prices rose (``certify.recheck_grid``; every other cell's menus, hence its check, are unchanged),
and of their loads recomputes only the raised menus' rows: bidder i's part of a cell's load
depends only on its own cell and the menu it faces (``certify.own_loads``), so it is kept in one
table per bidder. The certificate's check after the last round is a full one. Termination:
prices only rise, and an element priced above every utility is never chosen, after which the null element
(compatible with everything) is what remains. The MILP is only the price chooser: the
certificate is the exact check that follows.
A grid MILP stopped by its time limit is therefore *discarded* (none of its prices are applied;
the certificate lists it with ``applied: false``) and its batch is priced in two halves; a batch
of fewer than 2 x ``MIN_GRID_BATCH`` cells that times out is priced again without the other
allocations' fallbacks (a smaller MILP), and only one that still times out then ends the
transform, and the mechanism is uncertified. Every MILP whose prices are used finished with status Optimal.

Margin argument for piecewise-constant menus: none is needed. The network reads b_{-i} only
through the centre of its grid cell (half-open cells [e_k, e_{k+1}), the last one closed), so the
menu is exactly constant on each cell and there is nothing between grid points to bound: in a
product cell the bidders choose independently (bidder i's choice depends on v_i in Q_i and on a
fixed menu), utilities are affine in own values, and the exact box bounds <lo, alpha> - p and
<hi, alpha> - p give candidate sets that contain every element taken anywhere in Q_i. (*) on
every product cell is then necessary and sufficient for feasibility on the whole value space
(up to the refinement's over-approximation, which can only make the check stricter).

Discrete settings (cells = single type profiles, every bound exact)
-------------------------------------------------------------------
Re-price every menu to maximise expected revenue subject to compatibility (this is what turns
learned prices like 13.97 into 14 on Yao's instance). For bidder i and others' type profile
t_{-i} (one price cell c each) the menu elements E_c (allocations alpha^k, merged when equal to
``merge_tol``; the null element k = 0 included) are fixed; the MILP assigns each own type t an
element and a payment, in the form of the LP for the optimal DSIC mechanism restricted to the
menu's allocations:

    z_{t,k} in {0,1}, sum_k z_{t,k} = 1              (type t takes element k)
    X_t = sum_k z_{t,k} alpha^k,  pay_t in [0, p_max]  (allocation and payment of type t)
    <t, X_t> - pay_t >= eps (1 - z_{t,0})            (IR, strict unless t takes the null element)
    <t, X_t> - pay_t >= <t, X_t'> - pay_t' + eps (1 - d_{t,t'})   (IC between types, strict
    d_{t,t'} in {0,1}, d >= z_{t,k} + z_{t',k} - 1, d <= 1 - z_{t,k} + z_{t',k}    unless equal)
    sum_i X_{i, t_i, c(t_{-i}), j} <= 1              (every type profile t, item j)
    maximise sum_t P(t) sum_i pay_{i, t_i, c(t_{-i})}

Prices: an element taken by type t costs pay_t (equal for types taking the same element, by IC
both ways); elements nobody takes are priced out above every value. With the margin eps each
type's assigned element is its unique best element, so the mechanism's hard argmax (any tie
rule) picks exactly the MILP's assignment, and compatibility at every profile follows. Without
big-M terms the LP relaxation is the lottery relaxation over the menu, which keeps it tight.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from infozoo.core.lp import solve
from infozoo.core.progress import progress
from infozoo.envs.auction.metrics import revenue, run_chunked
from infozoo.solvers.gemnet.certify import (
    CheckResult,
    GridCheck,
    all_profiles,
    candidates,
    cell_bounds,
    check_discrete,
    check_grid,
    grid_menus,
    initial_cells,
    lipschitz_bound,
    pair_gaps,
    recheck_grid,
    refine_and_check,
)
from infozoo.solvers.gemnet.model import GemNetMechanism, PriceGrid

EPS = 1e-6
MIN_GRID_BATCH = 250  # piecewise-constant menus: a timed-out batch is split down to this many cells


def solve_milp(prob: Any, cfg: Any) -> Any:
    """``infozoo.core.lp.solve`` with the config's solver and time limit (a run stopped by the
    time limit comes back with status "Time limit", so the certificate is refused)."""
    return solve(prob, cfg.solver, time_limit=cfg.milp_time_limit)


def expected_revenue(mech: GemNetMechanism, n: int = 200_000, seed: int = 12345) -> float:
    """Exact expectation for discrete settings, a fixed Monte Carlo sample otherwise."""
    if mech.setting.discrete:
        values, probs = all_profiles(mech)
        return float((revenue(mech(values)) * probs).sum() / probs.sum())
    v = mech.setting.sample(n, torch.Generator().manual_seed(seed))
    return float(revenue(run_chunked(mech, v)).mean())


def transform(mech: GemNetMechanism, cfg: Any) -> dict[str, Any]:
    """Transform ``mech``'s prices in place and attach the certificate; returns the certificate."""
    t0 = time.perf_counter()
    s = mech.setting
    mech.grid = price_grid(mech, cfg)
    K1 = mech.net.K + 1
    if mech.delta is not None and mech.net.menu_grid:  # prices already set per cell: the warm start's
        start = mech.delta.clone()  # price table (train.snap_prices) or an earlier transform's changes
    else:
        start = torch.zeros(s.bidders, mech.grid.cells, K1, dtype=torch.float64)
    mech.delta = start
    rev_before = expected_revenue(mech)
    cert: dict[str, Any] = {"setting": s.name or s.to_dict(), "solver": cfg.solver,
                            "milp_time_limit": cfg.milp_time_limit, "milps": []}
    if s.discrete:
        if cfg.discrete_reprice:
            status = reprice_discrete(mech, cfg)
            cert["milps"].append(status)
        check = check_discrete(mech)
        cert.update({"grid": "single type profiles", "check": check})
        passed = check["passed"]
    elif mech.net.menu_grid:
        grid_res = check_grid(mech, cfg.own_depth)
        rounds = 0
        ok = True
        while ok and len(grid_res.failing) and rounds < cfg.milp_rounds:
            rounds += 1
            changed = torch.zeros(mech.delta.shape[:2], dtype=torch.bool)  # menus whose prices rose
            fallbacks = cfg.fallbacks if rounds <= cfg.fallback_rounds else 0
            queue = [(b, fallbacks) for b in grid_res.batches(cfg.grid_batch)]  # one MILP per batch
            bar = progress(total=len(queue), desc=f"price transform round {rounds} "
                                                  f"({len(grid_res.failing)} failing cells)", unit="MILP")
            while queue:
                batch, fallbacks = queue.pop(0)
                status, x = milp_grid(mech, batch, cfg, fallbacks)
                status["round"] = rounds
                cert["milps"].append(status)
                bar.update(1)
                big = len(batch.failing) >= 2 * MIN_GRID_BATCH
                if status["status"] == "Time limit" and (big or fallbacks):
                    # discarded unused: its cells are priced in two halves, or a small batch again
                    # without the other allocations' fallbacks
                    status["applied"] = False
                    retry = ([(b, fallbacks) for b in batch.batches((len(batch.failing) + 1) // 2)] if big
                             else [(batch, 0)])
                    queue[:0] = retry
                    bar.total += len(retry)
                    continue
                ok = status["status"] == "Optimal"
                if not ok:
                    break
                mech.delta = mech.delta + x
                changed |= (x > 0).any(-1)
            bar.close()
            ok &= bool(changed.any())  # nothing rose: more rounds cannot help
            if ok:
                grid_res = recheck_grid(mech, grid_res, changed, cfg.own_depth)
        if rounds:  # the certificate's check is a full one
            grid_res = check_grid(mech, cfg.own_depth)
        cert.update(grid_summary(mech, grid_res, cfg))
        passed = not len(grid_res.failing)
    else:
        per_dim = mech.grid.g if s.bidders > 1 else 1
        res = refine_and_check(mech, initial_cells(mech, per_dim), cfg.max_depth, cfg.max_cells,
                               cfg.lookahead_split)
        rounds = 0
        while bool(res.failing.any()) and rounds < cfg.milp_rounds:
            rounds += 1
            status, x = milp_continuous(mech, res, cfg)
            cert["milps"].append(status)
            if status["status"] != "Optimal":
                break
            mech.delta = mech.delta + x
            res = refine_and_check(mech, res.cells, cfg.max_depth, cfg.max_cells, cfg.lookahead_split)
        cert.update(continuous_summary(mech, res, cfg, per_dim))
        passed = not bool(res.failing.any())
    milps_ok = all(m["status"] == "Optimal" for m in cert["milps"] if m.get("applied", True))
    cert["discarded_milps"] = sum(not m.get("applied", True) for m in cert["milps"])
    certified = bool(passed and milps_ok)
    changed = float((mech.delta - start).abs().max())
    if float(mech.delta.abs().max()) == 0.0:
        mech.delta, mech.grid = None, None  # compatible as trained: left unchanged
    rev_after = expected_revenue(mech)
    cert.update({"certified": certified, "passed_condition": bool(passed), "milps_optimal": milps_ok,
                 "n_milps": len(cert["milps"]), "max_price_change": changed,
                 "warm_start_price_table": bool(start.abs().max() > 0),
                 "revenue_before": rev_before, "revenue_after": rev_after,
                 "revenue_estimate": "exact expectation" if s.discrete else "200000 fixed profiles",
                 "wall_time": time.perf_counter() - t0})
    if not certified:
        cert["reason"] = ("a MILP did not finish with status Optimal" if not milps_ok
                          else "condition (*) fails on some cell")
    mech.certified, mech.certificate = certified, cert
    mech.report.update({"certified": certified, "transform_time": cert["wall_time"],
                        "revenue_before_transform": rev_before, "revenue_after_transform": rev_after,
                        "n_milps": len(cert["milps"]), "certificate_cells": cert.get("cells")})
    return cert


def price_grid(mech: GemNetMechanism, cfg: Any) -> PriceGrid:
    """The grid on which price changes are constant: the menu grid for piecewise-constant menus
    (so that every cell of the certificate has one menu and one price change), else ``cfg.grid``
    cells per dimension (discrete settings: one cell per support point)."""
    if mech.net.menu_grid:
        return PriceGrid(mech.net.grid_edges.clone())
    return PriceGrid.build(mech.setting, cfg.grid)


def grid_summary(mech: GemNetMechanism, res: GridCheck, cfg: Any) -> dict[str, Any]:
    s, G = mech.setting, mech.net.menu_grid
    return {
        "grid": {"menu_grid_per_dim": G, "price_grid_per_dim": G, "product_cells": res.cells,
                 "breaks": list(mech.net.grid_breaks) or "uniform",
                 "menus_per_bidder": G ** ((s.bidders - 1) * s.items), "own_depth": cfg.own_depth},
        "cells": res.cells, "failing_cells": len(res.failing),
        "failing_before_refinement": res.failing_unrefined, "own_boxes_refined": res.leaves,
        "worst_slack": res.worst_slack,
        "bound_method": "exact: menus are constant on each cell of the menu grid, so in a product cell "
                        "the bidders choose independently and utilities are affine in own values; "
                        "candidate sets from exact box bounds, own boxes refined where several elements "
                        "are candidates",
        "lipschitz_note": "not needed: the menu network reads b_{-i} only through its grid cell",
        "margin": f"none needed between grid points (menus are constant on cells); eps = {EPS:g} in the MILP",
        "check_time": res.wall_time,
    }


def continuous_summary(mech: GemNetMechanism, res: CheckResult, cfg: Any, per_dim: int) -> dict[str, Any]:
    s = mech.setting
    return {
        "grid": {"initial_per_dim": per_dim, "initial_cells": per_dim ** (s.bidders * s.items),
                 "price_grid_per_dim": per_dim,
                 "menus": "continuous in b_{-i}",
                 "max_depth": cfg.max_depth, "max_cells": cfg.max_cells,
                 "split_rule": "look-ahead (the cut whose halves pass most / shrink the candidate sets most)"
                               if cfg.lookahead_split else "widest dimension",
                 "depth_reached": int(res.cells.depth.max()) if len(res.cells) else 0},
        "cells": len(res.cells), "failing_cells": int(res.failing.sum()),
        "worst_slack": res.worst_slack, "splits": res.splits,
        "bound_method": "interval bound propagation intersected with the mean-value form (interval "
                        "Jacobian) over each cell's box of v_{-i} through the menu MLP; "
                        "exact corner bounds of <v_i, alpha>",
        "lipschitz_constants": lipschitz_bound(mech) if s.bidders > 1 else [0.0],
        "lipschitz_note": "global Lipschitz constants of alpha/beta logits in b_{-i} (inf-norm, product of "
                          "layer norms), reported only; the certificate uses the cell bounds",
        "margin": f"built into the cell bounds (see transform.py); eps = {EPS:g} in the MILP",
        "check_time": res.wall_time,
    }


# ---- continuous settings ---------------------------------------------------------------------------


def too_large(cfg: Any, t0: float, **counts: int) -> dict[str, Any]:
    """The status of a price-change MILP refused for size (the mechanism stays uncertified)."""
    return {"kind": "continuous price change", "status": "Too large", **counts,
            "limit": cfg.milp_max_binaries, "build_time": time.perf_counter() - t0}


@dataclass
class BoxTable:
    """The MILP's input: boxes of one bidder's values inside constraint cells, with bounds at the
    current prices. ``group`` [R] the product cell (the bidders' loads A_ij are per group),
    ``bidder`` [R], ``price_cell`` [R] the cell of b_{-i} whose prices apply, u_lo / u_hi [R, K+1]
    utility bounds over the box, a_hi [R, K+1, m] allocation upper bounds. A continuous cell is
    one group with one box per bidder; a cell of piecewise-constant menus has the refined own boxes."""

    group: torch.Tensor
    bidder: torch.Tensor
    price_cell: torch.Tensor
    u_lo: torch.Tensor
    u_hi: torch.Tensor
    a_hi: torch.Tensor

    def take(self, mask: torch.Tensor) -> BoxTable:
        return BoxTable(*(getattr(self, f)[mask] for f in ("group", "bidder", "price_cell", "u_lo", "u_hi", "a_hi")))


def free_prices(candidates: torch.Tensor, bidder: torch.Tensor, price_cell: torch.Tensor,
                shape: tuple[int, int, int]) -> torch.Tensor:
    """Mask [n, price cells, K+1] of the prices the MILP may change: the candidates (not the null
    element) of bidder i in failing boxes, in the price cell of their b_{-i}."""
    free = torch.zeros(shape, dtype=torch.bool)
    rows, ks = candidates.nonzero(as_tuple=True)
    keep = ks > 0
    free[bidder[rows[keep]], price_cell[rows[keep]], ks[keep]] = True
    return free


def relevant(t: BoxTable, free: torch.Tensor, delta_max: float
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per box: the leader l (largest lower bound), the reference r (the element of largest lower
    bound among those whose price is not free: the null element at worst, so r never moves), which
    prices are free, and R + {l}: the elements that may still be chosen in the box under price
    changes |x| <= delta_max (neither the leader at its lowest price nor r beats them on all of it)."""
    is_free = free[t.bidder, t.price_cell]  # [R, K+1]
    lead = t.u_lo.argmax(-1)
    ref = torch.where(is_free, torch.full_like(t.u_lo, -math.inf), t.u_lo).argmax(-1)
    rows = torch.arange(len(lead))
    thr = torch.maximum(t.u_lo[rows, lead] - delta_max * is_free[rows, lead].to(t.u_lo.dtype), t.u_lo[rows, ref])
    rel = t.u_hi + delta_max * is_free.to(t.u_hi.dtype) >= thr.unsqueeze(-1)
    rel[rows, lead] = True
    return lead, ref, is_free, rel


def constrained(t: BoxTable, free: torch.Tensor, n: int, delta_max: float) -> torch.Tensor:
    """Mask [R] of the boxes in groups that need constraints: (*) may fail there for some price
    change |x| <= delta_max (with every element of R + {l} counted as chosen)."""
    rel = relevant(t, free, delta_max)[-1]
    m = t.a_hi.shape[-1]
    worst = torch.where(rel.unsqueeze(-1), t.a_hi, torch.zeros_like(t.a_hi)).amax(1)  # [R, m]
    groups, gpos = torch.unique(t.group, return_inverse=True)
    per = torch.zeros(len(groups) * n, m, dtype=worst.dtype)
    per.scatter_reduce_(0, (gpos * n + t.bidder).unsqueeze(-1).expand(-1, m), worst, "amax")
    needed = (per.reshape(len(groups), n, m).sum(1) > 1).any(-1)
    return needed[gpos]


def add_load(prob: Any, A: list[Any], alloc: list[float], chosen: Any) -> None:
    """A_ij >= alpha-bar_ij^k c_k for every item j: the bidder's load covers element k if chosen."""
    for j, a in enumerate(alloc):
        if a > 0:
            prob += A[j] >= a * chosen


def price_milp(t: BoxTable, free: torch.Tensor, n: int, cfg: Any, delta_max: float,
               t0: float) -> tuple[dict[str, Any], torch.Tensor]:
    """Build and solve the price-change MILP of the module docstring over the boxes ``t`` with
    free prices ``free`` [n, price cells, K+1]; returns (status, x [n, price cells, K+1])."""
    import pulp

    m = t.a_hi.shape[-1]
    x_out = torch.zeros(free.shape, dtype=torch.float64)
    keep = constrained(t, free, n, delta_max)  # skipping: groups where (*) holds whatever the free prices do
    t = t.take(keep)
    lead, refs, is_free, rel = relevant(t, free, delta_max)
    order = torch.argsort(t.group, stable=True)
    t, lead, refs, is_free, rel = t.take(order), lead[order], refs[order], is_free[order], rel[order]
    fr = sorted(map(tuple, free.nonzero().tolist()))
    xp = {f: pulp.LpVariable(f"xp_{f[0]}_{f[1]}_{f[2]}", 0, delta_max) for f in fr}
    xm = {f: pulp.LpVariable(f"xm_{f[0]}_{f[1]}_{f[2]}", 0, delta_max) for f in fr}
    prob = pulp.LpProblem("gemnet_price_transform", pulp.LpMinimize)
    prob += pulp.lpSum(xp.values()) + pulp.lpSum(xm.values())
    n_bin = 0
    loads: dict[tuple[int, int], list[Any]] = {}
    u_lo, u_hi, a_hi = t.u_lo.tolist(), t.u_hi.tolist(), t.a_hi.tolist()
    for r, (g, i, pc) in enumerate(zip(t.group.tolist(), t.bidder.tolist(), t.price_cell.tolist())):
        def xvar(k: int, i: int = i, pc: int = pc) -> Any:
            f = (i, pc, k)
            return xp[f] - xm[f] if f in xp else 0
        if (g, i) not in loads:
            loads[(g, i)] = [pulp.LpVariable(f"A_{g}_{i}_{j}", 0, 1) for j in range(m)]
        A = loads[(g, i)]
        ulo, uhi, ahi, fr_r = u_lo[r], u_hi[r], a_hi[r], is_free[r].tolist()
        ld, ref = int(lead[r]), int(refs[r])

        if fr_r[ld]:  # the leader may be priced out below the reference r
            cl = pulp.LpVariable(f"c_{r}_{ld}", cat="Binary")
            n_bin += 1
            gap = uhi[ld] - ulo[ref]
            prob += gap - xvar(ld) + EPS <= (abs(gap) + delta_max + 1) * cl
            add_load(prob, A, ahi[ld], cl)
        else:
            add_load(prob, A, ahi[ld], 1)
        for k in rel[r].nonzero()[:, 0].tolist():
            if k == ld:
                continue
            gap = uhi[k] - ulo[ld]
            if not (fr_r[k] or fr_r[ld]):
                if gap >= 0:  # a candidate whatever happens
                    add_load(prob, A, ahi[k], 1)
                continue
            ck = pulp.LpVariable(f"c_{r}_{k}", cat="Binary")
            n_bin += 1
            M = abs(gap) + 2 * delta_max + 1
            if fr_r[k] and fr_r[ld]:  # beaten by the leader (z = 0) or by the reference r (z = 1)
                z = pulp.LpVariable(f"z_{r}_{k}", cat="Binary")
                n_bin += 1
                gap_r = uhi[k] - ulo[ref]
                prob += gap - xvar(k) + xvar(ld) + EPS <= M * (ck + z)
                prob += gap_r - xvar(k) + EPS <= (abs(gap_r) + delta_max + 1) * (ck + 1 - z)
            else:
                prob += gap - xvar(k) + xvar(ld) + EPS <= M * ck
            add_load(prob, A, ahi[k], ck)
        if n_bin > cfg.milp_max_binaries:
            return too_large(cfg, t0, binaries=n_bin, free_prices=len(fr)), x_out
    groups_used = sorted({g for g, _ in loads})
    for g in groups_used:
        for j in range(m):
            prob += pulp.lpSum(loads[(g, i)][j] for i in range(n) if (g, i) in loads) <= 1
    build = time.perf_counter() - t0
    result = solve_milp(prob, cfg)
    status = {"kind": "continuous price change", "status": result.status, "solver": result.solver,
              "objective": result.objective, "free_prices": len(fr), "constraint_cells": len(groups_used),
              "constraint_boxes": len(t.group), "binaries": n_bin, "build_time": build,
              "solve_time": result.wall_time}
    if result.optimal:
        for f in fr:
            x_out[f] = float(xp[f].value() or 0.0) - float(xm[f].value() or 0.0)
    return status, x_out


def milp_continuous(mech: GemNetMechanism, res: CheckResult, cfg: Any) -> tuple[dict[str, Any], torch.Tensor]:
    """The price-change MILP for continuous menus: one box per bidder and certificate cell."""
    t0 = time.perf_counter()
    s = mech.setting
    n = s.bidders
    delta_max = cfg.max_change * float(s.high().max())
    fail = res.cells.take(res.failing)
    if len(fail) > cfg.milp_max_binaries:  # every failing cell needs at least one binary: refuse early
        return too_large(cfg, t0, failing_cells=len(fail)), torch.zeros_like(mech.delta)
    fb = cell_bounds(mech, fail)
    C = len(fail)
    bidder = torch.arange(n).repeat(C)
    free = free_prices(fb.candidates.reshape(C * n, -1), bidder, fb.price_cell.reshape(-1), tuple(mech.delta.shape))
    all_b = cell_bounds(mech, res.cells)
    touch = free.any(-1)[torch.arange(n), all_b.price_cell].any(-1)  # cells touching a free price cell
    if all_b.joint is not None:  # certified by the pair condition (**) at current prices: not constrained;
        touch &= ~((all_b.joint >= 0) & ~res.failing)  # re-certification rechecks them
    q = touch.nonzero()[:, 0]
    Q = len(q)
    t = BoxTable(q.repeat_interleave(n), torch.arange(n).repeat(Q), all_b.price_cell[q].reshape(-1),
                 all_b.u_lo[q].reshape(Q * n, -1), all_b.u_hi[q].reshape(Q * n, -1),
                 all_b.a_hi[q].reshape(Q * n, *all_b.a_hi.shape[2:]))
    return price_milp(t, free, n, cfg, delta_max, t0)


def milp_grid(mech: GemNetMechanism, res: GridCheck, cfg: Any, fallbacks: int = 0
              ) -> tuple[dict[str, Any], torch.Tensor]:
    """One round of the price transform for piecewise-constant menus (the exclusion MILP of the
    module docstring): prices only rise, so that in every failing product cell q the bidders'
    candidate sets stop over-allocating. ``fallbacks``: how many elements of other allocations
    each candidate may be excluded onto, besides its item-wise smaller fallback and the null
    element. Returns (status, x [n, menu cells, K+1] >= 0)."""
    import pulp
    from pulp import LpAffineExpression, LpConstraint, LpConstraintGE, LpConstraintLE

    t0 = time.perf_counter()
    n, m = mech.setting.bidders, mech.setting.items
    x_out = torch.zeros_like(mech.delta)
    menus = grid_menus(mech)
    K1 = menus.alpha.shape[2]
    # exclusion options of k in a box, each a raise of k's price and the allocation the bidder is
    # left with: the fallback among the elements allocating no more than k (the one that needs the
    # smallest raise of k to beat it on the whole box, max over the box of u^k - u^f, exact), the
    # ``fallbacks`` cheapest ones among the other elements, and the null element
    sub_menu = (menus.alpha.unsqueeze(2) <= menus.alpha.unsqueeze(3)).all(-1)  # [n, Cm, k, k']: a^k' <= a^k
    sub_menu &= ~torch.eye(K1, dtype=torch.bool)
    O = 2 + min(fallbacks, K1)  # options per candidate
    keys, stats = [], []
    for st in range(0, len(res.boxes), 16384):
        b = res.boxes.take(torch.arange(st, min(st + 16384, len(res.boxes))))
        cand, u_hi, alpha = candidates(b, menus)
        rows, ks = (cand & (torch.arange(K1) > 0)).nonzero(as_tuple=True)
        sub = sub_menu[b.bidder[rows], b.menu[rows], ks]  # [P, K+1]: the elements allocating no more than k
        gaps = pair_gaps(b, menus, rows, ks)
        need, fb = torch.where(sub, gaps, math.inf).min(-1, keepdim=True)  # [P, 1]
        if fallbacks:
            other = ~sub
            other[:, 0] = False
            other[torch.arange(len(ks)), ks] = False
            more, fb_more = torch.where(other, gaps, math.inf).topk(min(fallbacks, K1), dim=-1, largest=False)
            need, fb = torch.cat([need, more], -1), torch.cat([fb, fb_more], -1)  # [P, 1 + fallbacks]
        raises = torch.cat([need.clamp(min=0), u_hi[rows, ks].clamp(min=0)[:, None]], -1) + EPS
        left = torch.cat([alpha[rows.unsqueeze(-1), fb], torch.zeros(len(rows), 1, m, dtype=alpha.dtype)], 1)
        q = torch.searchsorted(res.failing, b.cell[rows]) * n + b.bidder[rows]
        keys.append((q * K1 + ks) * len(menus.price[0]) + b.menu[rows])
        stats.append(torch.cat([raises, left.flatten(1), alpha[rows, ks]], -1))
    # per (cell, bidder, element): the worst case over the boxes where k is a candidate (an option
    # that is missing in some box, an infinite raise, is dropped)
    uniq, inv = torch.unique(torch.cat(keys), return_inverse=True)
    st_all = torch.cat(stats)
    agg = torch.zeros(len(uniq), st_all.shape[1], dtype=torch.float64).scatter_reduce(
        0, inv.unsqueeze(-1).expand_as(st_all), st_all, "amax", include_self=False)
    Cm = len(menus.price[0])
    menu_of, qk = (uniq % Cm).tolist(), (uniq // Cm)
    q_of, k_of = (qk // K1).tolist(), (qk % K1).tolist()
    prob = pulp.LpProblem("gemnet_grid_exclusion", pulp.LpMinimize)
    xs: dict[tuple[int, int, int], Any] = {}
    chosen: list[tuple[tuple[int, int, int], list[tuple[Any, float]]]] = []
    A = {q: [pulp.LpVariable(f"A_{q}_{j}", 0, 1) for j in range(m)] for q in range(len(res.failing) * n)}
    n_bin = 0
    for q, k, menu, row in zip(q_of, k_of, menu_of, agg.tolist()):
        i = q % n
        f = (i, menu, k)
        if f not in xs:
            xs[f] = pulp.LpVariable(f"x_{i}_{menu}_{k}", 0)
        # e_o = 1: k is excluded by option o (raise row[o]; the bidder is left with allocation left_o)
        opts = [(pulp.LpVariable(f"e_{q}_{k}_{o}", cat="Binary"), row[o], row[O + o * m:O + (o + 1) * m])
                for o in range(O) if math.isfinite(row[o])]
        n_bin += len(opts)
        # written as affine expressions directly: PuLP's operators cost more than the solve here
        prob.addConstraint(LpConstraint(LpAffineExpression([(e, 1) for e, _, _ in opts]), LpConstraintLE, rhs=1))
        prob.addConstraint(LpConstraint(LpAffineExpression([(xs[f], 1)] + [(e, -r) for e, r, _ in opts]),
                                        LpConstraintGE, rhs=0))
        for j in range(m):  # A_qj >= alpha_j^k (1 - sum_o e_o) and A_qj >= left_oj e_o
            a = row[O + O * m + j]
            if a > 0:
                prob.addConstraint(LpConstraint(LpAffineExpression([(A[q][j], 1)] + [(e, a) for e, _, _ in opts]),
                                                LpConstraintGE, rhs=a))
            for e, _, left in opts:
                if left[j] > 0:
                    prob.addConstraint(LpConstraint(LpAffineExpression([(A[q][j], 1), (e, -left[j])]),
                                                    LpConstraintGE, rhs=0))
        chosen.append((f, [(e, r) for e, r, _ in opts]))
        if n_bin > cfg.milp_max_binaries:
            return too_large(cfg, t0, binaries=n_bin, failing_cells=len(res.failing)), x_out
    for c in range(len(res.failing)):
        for j in range(m):
            prob += pulp.lpSum(A[c * n + i][j] for i in range(n)) <= 1
    prob += pulp.lpSum(xs.values())
    build = time.perf_counter() - t0
    result = solve_milp(prob, cfg)
    status = {"kind": "grid exclusion (prices rise)", "status": result.status, "solver": result.solver,
              "objective": result.objective, "failing_cells": len(res.failing), "price_variables": len(xs),
              "binaries": n_bin, "fallbacks": fallbacks, "build_time": build, "solve_time": result.wall_time}
    if result.optimal:  # the raises the chosen exclusions need, exactly (not up to the solver's tolerance)
        for f, opts in chosen:
            need = max([r for e, r in opts if (e.value() or 0) > 0.5], default=0.0)
            x_out[f] = max(float(x_out[f]), need, float(xs[f].value() or 0.0))
    return status, x_out


# ---- discrete settings ----------------------------------------------------------------------------


def reprice_discrete(mech: GemNetMechanism, cfg: Any) -> dict[str, Any]:
    """Re-price a discrete setting's menus by the revenue MILP of the module docstring."""
    import pulp

    t0 = time.perf_counter()
    s = mech.setting
    n, m = s.bidders, s.items
    types, _ = s.type_space()  # [T, m]
    T = types.shape[0]
    values, probs = all_profiles(mech)  # [P, n, m]
    vmax = float(s.high().sum(-1).max())
    p_max, p_out = vmax, 10 * vmax + 1
    eps = cfg.margin * float(s.high().max())
    with torch.no_grad():
        alpha, beta = mech.net(values)  # menus at every profile, [P, n, K+1, m]
    K1 = alpha.shape[2]
    grid = mech.grid
    assert grid is not None
    cells = torch.stack([grid.cell(values, i) for i in range(n)], 1)  # [P, n]
    type_index = {tuple(types[t].tolist()): t for t in range(T)}
    tix = torch.tensor([[type_index[tuple(values[p, i].tolist())] for i in range(n)]
                        for p in range(values.shape[0])])
    prob = pulp.LpProblem("gemnet_discrete_reprice", pulp.LpMaximize)
    menus: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor, list[int]]] = {}
    z: dict[tuple[int, int, int, int], Any] = {}
    pay: dict[tuple[int, int, int], Any] = {}
    X: dict[tuple[int, int, int], list[Any]] = {}
    n_bin = 0
    for p in range(values.shape[0]):
        for i in range(n):
            key = (i, int(cells[p, i]))
            if key in menus:
                continue
            a = alpha[p, i]
            keep: list[int] = []
            seen: set[tuple[int, ...]] = set()
            for k in range(K1):  # skip elements: one per allocation (to merge_tol), copies priced out
                sig = tuple(round(float(x) / cfg.merge_tol) for x in a[k])
                if sig not in seen:
                    seen.add(sig)
                    keep.append(k)
            menus[key] = (a, beta[p, i], keep)
            i_, c = key
            for t in range(T):
                zs = {k: pulp.LpVariable(f"z_{i}_{c}_{t}_{k}", cat="Binary") for k in keep}
                n_bin += len(zs)
                z.update({(i, c, t, k): v for k, v in zs.items()})
                prob += pulp.lpSum(zs.values()) == 1
                pay[(i, c, t)] = pulp.LpVariable(f"pay_{i}_{c}_{t}", 0, p_max)
                X[(i, c, t)] = [pulp.lpSum(float(a[k, j]) * zs[k] for k in keep) for j in range(m)]

            def util(t: int, u: int, i: int = i, c: int = c) -> Any:  # type t reporting like type u
                return pulp.lpSum(float(types[t, j]) * X[(i, c, u)][j] for j in range(m)) - pay[(i, c, u)]

            for t in range(T):
                prob += util(t, t) >= eps * (1 - z[(i, c, t, 0)])
                for u in range(T):
                    if u == t:
                        continue
                    d = pulp.LpVariable(f"d_{i}_{c}_{t}_{u}", cat="Binary")
                    n_bin += 1
                    for k in keep:
                        prob += d >= z[(i, c, t, k)] + z[(i, c, u, k)] - 1
                        prob += d <= 1 - z[(i, c, t, k)] + z[(i, c, u, k)]
                    prob += util(t, t) >= util(t, u) + eps * (1 - d)
    objective = []
    for p in range(values.shape[0]):
        for i in range(n):
            objective.append(float(probs[p]) * pay[(i, int(cells[p, i]), int(tix[p, i]))])
        for j in range(m):
            prob += pulp.lpSum(X[(i, int(cells[p, i]), int(tix[p, i]))][j] for i in range(n)) <= 1
    prob += pulp.lpSum(objective)
    build = time.perf_counter() - t0
    result = solve_milp(prob, cfg)
    if result.optimal:
        assert mech.delta is not None
        for (i, c), (_, b, keep) in menus.items():
            new = torch.full((K1,), p_out, dtype=torch.float64)  # nobody takes it: priced out
            new[0] = 0.0
            for t in range(T):
                for k in keep:
                    if k > 0 and float(z[(i, c, t, k)].value()) > 0.5:
                        new[k] = float(pay[(i, c, t)].value())
            mech.delta[i, c] = new - b.to(torch.float64)
    return {"kind": "discrete revenue re-pricing", "status": result.status, "solver": result.solver,
            "objective": result.objective, "binaries": n_bin, "build_time": build,
            "solve_time": result.wall_time, "margin": eps, "merge_tol": cfg.merge_tol}
