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
bound (the *leader*, fixed from the current prices), and R the elements that may still beat it:
u-high^k + Delta [k free] >= u-low^l - Delta [l free]. Variables and constraints per (Q, i):

    c_k in {0, 1}   (k in R + {l}, k may be chosen in Q)
    u-high^k - x^k - (u-low^l - x^l) + eps <= M c_k           (k != l: c_k = 0 only if l beats k on Q)
    u-high^l - x^l - u-low^r + eps <= M c_l                   (c_l = 0 only if r beats l on Q)
    A_ij >= alpha-bar_ij^k c_k                                (A_ij bounds bidder i's load)
    sum_i A_ij <= 1                                           (condition (*), every item j)

where r is the element of largest lower bound among those whose price is not free (the null
element at worst, u = 0), so a leader that truly over-allocates with the other bidder's choice
can be priced out (a leader whose price is not free has c_l = 1 fixed). Every exclusion is
by an element that beats the excluded one on all of Q, so the soundness argument below holds
whether or not the beating element itself stays a candidate.

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
from typing import Any

import torch

from infozoo.core.lp import solve
from infozoo.envs.auction.metrics import revenue, run_chunked
from infozoo.solvers.gemnet.certify import (
    CheckResult,
    all_profiles,
    cell_bounds,
    check_discrete,
    initial_cells,
    lipschitz_bound,
    refine_and_check,
)
from infozoo.solvers.gemnet.model import GemNetMechanism, PriceGrid

EPS = 1e-6


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
    mech.grid = PriceGrid.build(s, cfg.grid)
    K1 = mech.net.K + 1
    mech.delta = torch.zeros(s.bidders, mech.grid.cells, K1, dtype=torch.float64)
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
    else:
        per_dim = cfg.grid if s.bidders > 1 else 1
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
    milps_ok = all(m["status"] == "Optimal" for m in cert["milps"])
    certified = bool(passed and milps_ok)
    changed = float(mech.delta.abs().max())
    if changed == 0.0:
        mech.delta, mech.grid = None, None  # compatible as trained: left unchanged
    rev_after = expected_revenue(mech)
    cert.update({"certified": certified, "passed_condition": bool(passed), "milps_optimal": milps_ok,
                 "n_milps": len(cert["milps"]), "max_price_change": changed,
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


def continuous_summary(mech: GemNetMechanism, res: CheckResult, cfg: Any, per_dim: int) -> dict[str, Any]:
    s = mech.setting
    return {
        "grid": {"initial_per_dim": per_dim, "initial_cells": per_dim ** (s.bidders * s.items),
                 "price_grid_per_dim": cfg.grid if s.bidders > 1 else 1,
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


def milp_continuous(mech: GemNetMechanism, res: CheckResult, cfg: Any) -> tuple[dict[str, Any], torch.Tensor]:
    """Build and solve the price-change MILP of the module docstring; returns (status, x)."""
    import pulp

    t0 = time.perf_counter()
    s = mech.setting
    n, m = s.bidders, s.items
    delta_max = cfg.max_change * float(s.high().max())
    x_out = torch.zeros_like(mech.delta)
    fail = res.cells.take(res.failing)
    if len(fail) > cfg.milp_max_binaries:  # every failing cell needs at least one binary: refuse early
        return too_large(cfg, t0, failing_cells=len(fail)), x_out
    fb = cell_bounds(mech, fail)
    free: set[tuple[int, int, int]] = set()
    for i in range(n):
        for c, k in zip(fb.price_cell[:, i].tolist(), fb.candidates[:, i, :].tolist()):
            free.update((i, c, kk) for kk, on in enumerate(k) if on and kk > 0)
    free_cells = {(i, c) for i, c, _ in free}
    # constraint cells: every cell touching a free price cell
    all_b = cell_bounds(mech, res.cells)
    touch = torch.zeros(len(res.cells), dtype=torch.bool)
    for i in range(n):
        pcs = torch.tensor(sorted(c for ii, c in free_cells if ii == i), dtype=torch.long)
        touch |= torch.isin(all_b.price_cell[:, i], pcs)
    idx = touch.nonzero()[:, 0].tolist()
    prob = pulp.LpProblem("gemnet_price_transform", pulp.LpMinimize)
    xp = {f: pulp.LpVariable(f"xp_{f[0]}_{f[1]}_{f[2]}", 0, delta_max) for f in sorted(free)}
    xm = {f: pulp.LpVariable(f"xm_{f[0]}_{f[1]}_{f[2]}", 0, delta_max) for f in sorted(free)}
    prob += pulp.lpSum(xp.values()) + pulp.lpSum(xm.values())
    n_bin = n_cells = 0
    pair_ok = (all_b.joint >= 0) if all_b.joint is not None else torch.zeros(len(res.cells), dtype=torch.bool)
    for q in idx:
        if bool(pair_ok[q]) and not bool(res.failing[q]):
            continue  # certified by the pair condition (**) at current prices; re-certification rechecks it
        loads: list[list[Any]] = []
        worst = torch.zeros(m, dtype=torch.float64)
        terms = []
        for i in range(n):
            pc = int(all_b.price_cell[q, i])
            ulo, uhi, ahi = all_b.u_lo[q, i], all_b.u_hi[q, i], all_b.a_hi[q, i]
            lead = int(ulo.argmax())
            is_free = torch.tensor([(i, pc, k) in free for k in range(ulo.shape[0])])
            slack_up = uhi + delta_max * is_free
            rel = (slack_up >= ulo[lead] - delta_max * float(is_free[lead])).nonzero()[:, 0].tolist()
            rel = [k for k in rel if k != lead]
            worst += torch.stack([ahi[k] for k in rel + [lead]]).amax(0)
            terms.append((i, pc, ulo, uhi, ahi, lead, is_free, rel))
        if bool((worst <= 1).all()):
            continue  # skipping: (*) holds here whatever the free prices do
        n_cells += 1
        for i, pc, ulo, uhi, ahi, lead, is_free, rel in terms:
            def xvar(k: int, i: int = i, pc: int = pc) -> Any:
                f = (i, pc, k)
                return xp[f] - xm[f] if f in xp else 0
            A = [pulp.LpVariable(f"A_{q}_{i}_{j}", 0, 1) for j in range(m)]
            if bool(is_free[lead]):  # the leader may be priced out below the best fixed-price element r
                fixed = torch.where(is_free, torch.full_like(ulo, -math.inf), ulo)
                ref = int(fixed.argmax())
                cl = pulp.LpVariable(f"c_{q}_{i}_{lead}", cat="Binary")
                n_bin += 1
                if n_bin > cfg.milp_max_binaries:
                    return too_large(cfg, t0, binaries=n_bin, free_prices=len(free)), x_out
                gap = float(uhi[lead] - ulo[ref])
                prob += gap - xvar(lead) + EPS <= (abs(gap) + delta_max + 1) * cl
                for j in range(m):
                    if float(ahi[lead, j]) > 0:
                        prob += A[j] >= float(ahi[lead, j]) * cl
            else:
                for j in range(m):
                    prob += A[j] >= float(ahi[lead, j])
            for k in rel:
                gap = float(uhi[k] - ulo[lead])
                if not (bool(is_free[k]) or bool(is_free[lead])):
                    if gap >= 0:  # a candidate whatever happens
                        for j in range(m):
                            prob += A[j] >= float(ahi[k, j])
                    continue
                ck = pulp.LpVariable(f"c_{q}_{i}_{k}", cat="Binary")
                n_bin += 1
                if n_bin > cfg.milp_max_binaries:
                    return too_large(cfg, t0, binaries=n_bin, free_prices=len(free)), x_out
                M = abs(gap) + 2 * delta_max + 1
                prob += gap - xvar(k) + xvar(lead) + EPS <= M * ck
                for j in range(m):
                    if float(ahi[k, j]) > 0:
                        prob += A[j] >= float(ahi[k, j]) * ck
            loads.append(A)
        for j in range(m):
            prob += pulp.lpSum(A[j] for A in loads) <= 1
    build = time.perf_counter() - t0
    result = solve_milp(prob, cfg)
    status = {"kind": "continuous price change", "status": result.status, "solver": result.solver,
              "objective": result.objective, "free_prices": len(free), "constraint_cells": n_cells,
              "binaries": n_bin, "build_time": build, "solve_time": result.wall_time}
    if result.optimal:
        for f in free:
            x_out[f[0], f[1], f[2]] = float(xp[f].value() or 0.0) - float(xm[f].value() or 0.0)
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
