"""The feasibility certificate of a menu mechanism, and independent checks of over-allocation.

Construction (``shared/notes/gemnet-certificate.md``): partition the value space into product
boxes Q = Q_1 x ... x Q_n. For bidder i and element k bound, over Q,

    alpha-bar_ij^k(Q) >= alpha_ij^k(v_{-i})                      for all v_{-i} in Q_{-i},
    u-low_i^k(Q) <= <v_i, alpha_i^k(v_{-i})> - beta_i^k(v_{-i}) - delta_i^k <= u-high_i^k(Q),

with alpha and beta bounded over the box Q_{-i} through bidder i's menu MLP
(``MenuNetwork.interval_menu``: the intersection of interval bound propagation and the
mean-value form f(c) +- |J(Q_{-i})| r with an interval Jacobian, both sound) and the bilinear
term bounded exactly from the corner products v * alpha. delta_i (the transform's price change)
is constant on Q because cells refine the price grid. The candidate set

    S_i(Q) = {k : u-high_i^k(Q) >= max_k' u-low_i^k'(Q)}

contains whatever element bidder i takes anywhere in Q (under any tie rule), so if for every
item j

    sum_i max_{k in S_i(Q)} alpha-bar_ij^k(Q) <= 1                                   (*)

no item is over-allocated anywhere in Q. Cells cover the value box, so (*) on all cells proves
feasibility on the whole value space.

Pair condition (two additive bidders; ``uses_pair_condition``). (*) treats the two choices as
independent, but both depend on the same v: where item j changes hands across a thin slab
v_1j ~ v_2j, every cell meeting the slab has "buy j" in both candidate sets, however small, so
(*) needs cells thinner than the slab's width. The pair condition uses the joint dependence.
``MenuNetwork.utility_linearisation`` gives u_i^k(c) at the centre c and an interval [G_lo, G_hi]
containing the gradient of u_i^k in v on all of Q; with G_mid, G_rad its centre and radius and r
the radius of Q, the mean-value theorem along the segment from c to v = c + y gives

    u_i^k(v) - u_i^ref(v) <= u_i^k(c) - u_i^ref(c) + (G_mid^k - G_mid^ref) . y + (G_rad^k + G_rad^ref) . r,

ref_i the element bidder i takes at c. If bidder i takes k at v then u_i^k(v) >= u_i^ref(v), so
y lies in the half-space H_i^k = {a_i^k . y >= b_i^k}. A pair (k, l) is *excluded* when
H_1^k and H_2^l do not meet in the box |y| <= r: by weak duality that holds as soon as, for some
lambda in [0, 1], phi(lambda) = sum_d |lambda a_1d + (1 - lambda) a_2d| r_d - lambda b_1 -
(1 - lambda) b_2 < 0 (for feasible y, lambda a_1.y + (1 - lambda) a_2.y >= the right side, while
the left side is at most the sum); phi is convex and piecewise linear, so its minimum is at
lambda in {0, 1} or a break point a_2d / (a_2d - a_1d), all of which are checked. Then

    max_j max_{k in S_1, l in S_2, (k, l) not excluded} (alpha-bar_1j^k + alpha-bar_2j^l) <= 1     (**)

proves Q feasible: the pair actually chosen at any v in Q is never excluded. (**) is at least as
tight as (*) (its maximum runs over a subset of S_1 x S_2) and on a slab it only needs cells small
enough for the linearisation error (second order in the cell width) to stay below the menus'
margin, not thinner than the slab. It is checked on the cells that fail (*).

(Unit-demand: each element's own allocation sums to at most one by the softmax-with-dummy head.)
Bounds are computed in float64 and the network is evaluated in float64 at test time; the proof is
exact up to float64 rounding (~1e-15).

Adaptive grid: a cell failing (*) is cut in half along one dimension (``split``: by default the
widest; optionally the cut, among all dimensions, whose halves pass most or shrink the candidate
sets most) until it passes, reaches ``max_depth`` cuts, or the total reaches ``max_cells``;
cells still failing go to the transform's MILP. A failing cell of at least half the maximum depth
that over-allocates at a probe point (its centre or a corner, ``truly_conflicting``) is not split:
the menus are truly incompatible there, prices must change, and splitting would only fill the
conflict region with ever smaller cells (shallower cells are split on, so the MILP sees bounds
tight enough to price the conflict out). Skipping elements: elements outside S_i(Q)
never enter the check of Q.

Piecewise-constant menus (``menu_grid`` G > 0, ``check_grid``): the network reads b_{-i} only
through its cell of a G-per-dimension grid, so in a product cell Q = Q_1 x ... x Q_n of that grid
every bidder's menu is constant and its choice depends on v_i in Q_i alone: the bidders choose
independently, and (*) with the exact sets S_i(Q) = {elements taken somewhere in Q_i} is
necessary and sufficient. Utilities are affine in v_i, so u-low = <lo, alpha> - p and
u-high = <hi, alpha> - p over a box are exact per element; where several elements are candidates
the own box is cut (``refine_own``) until the cell passes, its conflict is certain, or
``own_depth`` cuts. No Lipschitz bound enters: the certificate is exact up to that refinement.
Computation: bidder i's part of the load of a product cell depends only on its own cell and the
menu it faces, so it is one table per bidder (``own_loads``: one row per distinct menu, shared by
the cells whose menus are bit for bit the same; uint8 for 0/1 menus), and the loads of all
G^(n m) product cells are sums of the n tables viewed on the product grid (``grid_failing``).
For 0/1 menus the pairwise candidate test is two batched products (``BILINEAR_TOL``).

Discrete settings: cells are the single type profiles, bounds are exact, and (*) is "the
chosen elements never over-allocate at any profile", checked by enumeration.

Independent verification, separate from the certificate: ``verify_random`` (over-allocation of
the hard-argmax mechanism on many random profiles) and ``adversarial_search`` (random restarts
followed by coordinate search over profiles, maximising max_j sum_i x_ij).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from infozoo.core.progress import progress
from infozoo.core.seeding import torch_generator
from infozoo.envs.auction.mechanism import over_allocation
from infozoo.solvers.gemnet.model import (
    GemNetMechanism,
    PriceGrid,
    cell_ends,
    grid_digits,
    grid_number,
    interval_product,
    menu_cell_profiles,
)

CHUNK = 8192
PAIR_CHUNK = 256  # cells per batch of the pair test ((K+1)^2 pairs each)
PAIR_TOL = 1e-12  # a pair is excluded only if the duality bound is below -PAIR_TOL
TOLERANCE = 1e-9  # discrete check: allowed float excess of sum_i x_ij over 1


@dataclass
class Cells:
    """Product boxes of the profile space: lo, hi [C, n, m]; ``depth`` = splits so far."""

    lo: torch.Tensor
    hi: torch.Tensor
    depth: torch.Tensor

    def __len__(self) -> int:
        return self.lo.shape[0]

    def take(self, mask: torch.Tensor) -> Cells:
        return Cells(self.lo[mask], self.hi[mask], self.depth[mask])

    @staticmethod
    def cat(parts: list[Cells]) -> Cells:
        return Cells(torch.cat([p.lo for p in parts]), torch.cat([p.hi for p in parts]),
                     torch.cat([p.depth for p in parts]))


@dataclass
class CellBounds:
    """Per cell and bidder: candidate sets and bounds (what the certificate and the MILP need)."""

    a_hi: torch.Tensor  # [C, n, K+1, m] upper bounds of alpha
    u_lo: torch.Tensor  # [C, n, K+1] lower utility bounds at the current prices
    u_hi: torch.Tensor  # [C, n, K+1] upper utility bounds at the current prices
    price_cell: torch.Tensor  # [C, n] index of the price-grid cell of Q_{-i}
    joint: torch.Tensor | None = None  # [C] slack of the pair condition (**) (n = 2, additive), else None
    candidates: torch.Tensor = field(init=False)  # [C, n, K+1] bool, S_i(Q)
    load: torch.Tensor = field(init=False)  # [C, m] sum_i max_{k in S_i} alpha-bar_ij^k

    def __post_init__(self) -> None:
        self.candidates = self.u_hi >= self.u_lo.amax(-1, keepdim=True)
        a = torch.where(self.candidates.unsqueeze(-1), self.a_hi, torch.zeros_like(self.a_hi))
        self.load = a.amax(2).sum(1)

    @property
    def excess(self) -> torch.Tensor:
        """sum_i sum_{k in S_i} (u-high_i^k - max_k' u-low_i^k') per cell: how far the candidate
        sets are from single elements (0 only when every bidder's choice is pinned down)."""
        gap = self.u_hi - self.u_lo.amax(-1, keepdim=True)
        return gap.clamp(min=0).sum((1, 2))

    @property
    def per_bidder_slack(self) -> torch.Tensor:
        """1 - max_j sum_i max_{k in S_i} alpha-bar_ij^k per cell; (*) holds iff it is >= 0."""
        return 1 - self.load.amax(-1)

    @property
    def slack(self) -> torch.Tensor:
        """The certificate's slack per cell: (*) or, where computed, the tighter (**) holds iff >= 0."""
        per = self.per_bidder_slack
        return per if self.joint is None else torch.maximum(per, self.joint)


INITIAL_CELL_LIMIT = 5_000_000  # most cells of the continuous-menu certificate's starting grid


def check_initial_grid(per_dim: int, dims: int) -> None:
    """Refuse a starting grid of ``per_dim`` cells in each of ``dims`` value dimensions that has
    more than ``INITIAL_CELL_LIMIT`` cells (``train.fit`` asks before training)."""
    if per_dim ** dims > INITIAL_CELL_LIMIT:
        raise ValueError(
            f"the continuous-menu certificate starts from grid^(n m) = {per_dim}^{dims} = {per_dim ** dims:,} "
            f"cells, over its limit of {INITIAL_CELL_LIMIT:,} (grid=2 reaches 22 value dimensions); "
            "lower 'grid' (1: refine adaptively from the whole value box) or set transform=False "
            "for a mechanism that is not certified")


def initial_cells(mech: GemNetMechanism, per_dim: int) -> Cells:
    """The grid with ``per_dim`` cells per value dimension, built from the same break points as the
    price grid (``PriceGrid.build``), so that no cell straddles a price boundary (continuous menus;
    piecewise-constant ones are checked on their own grid by ``check_grid``)."""
    s = mech.setting
    D = s.bidders * s.items
    check_initial_grid(per_dim, D)
    edges = PriceGrid.build(s, per_dim).edges
    bounds = torch.cat([s.low()[..., None], edges, s.high()[..., None]], -1)
    idx = torch.cartesian_prod(*[torch.arange(per_dim)] * D).reshape(-1, s.bidders, s.items)
    b = bounds.to(torch.float64).expand(idx.shape[0], -1, -1, -1)
    lo = b.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
    hi = b.gather(-1, (idx + 1).unsqueeze(-1)).squeeze(-1)
    return Cells(lo, hi, torch.zeros(lo.shape[0], dtype=torch.long))


def bilinear_bounds(v_lo: torch.Tensor, v_hi: torch.Tensor, a_lo: torch.Tensor,
                    a_hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact bounds of sum_j v_j a_j over independent boxes v in [v_lo, v_hi], a in [a_lo, a_hi]
    (each term's extremes sit at corners). v: [C, m]; a: [C, K, m]."""
    lo, hi = interval_product(v_lo.unsqueeze(1), v_hi.unsqueeze(1), a_lo, a_hi)
    return lo.sum(-1), hi.sum(-1)


def cell_bounds(mech: GemNetMechanism, cells: Cells) -> CellBounds:
    """Bounds of every bidder's menu and utilities over each cell (chunked)."""
    s, net = mech.setting, mech.net
    parts: list[tuple[torch.Tensor, ...]] = []
    for st in range(0, len(cells), CHUNK):
        lo, hi = cells.lo[st:st + CHUNK], cells.hi[st:st + CHUNK]
        centre = (lo + hi) / 2
        a_his, u_los, u_his, pcs = [], [], [], []
        with torch.no_grad():
            for i in range(s.bidders):
                a_lo, a_hi, b_lo, b_hi = net.interval_menu(i, lo, hi)
                if mech.delta is not None and mech.grid is not None:
                    pc = mech.grid.cell(centre, i)
                    d = mech.delta[i][pc].to(torch.float64)
                else:
                    pc = torch.zeros(lo.shape[0], dtype=torch.long)
                    d = torch.zeros_like(b_lo)
                p_lo, p_hi = bilinear_bounds(lo[:, i], hi[:, i], a_lo, a_hi)
                a_his.append(a_hi)
                u_los.append(p_lo - b_hi - d)
                u_his.append(p_hi - b_lo - d)
                pcs.append(pc)
        a_hi, u_lo, u_hi = torch.stack(a_his, 1), torch.stack(u_los, 1), torch.stack(u_his, 1)
        pc = torch.stack(pcs, 1)
        joint = None
        if uses_pair_condition(mech):
            b = CellBounds(a_hi, u_lo, u_hi, pc)
            joint = b.per_bidder_slack.clone()
            fail = (joint < 0).nonzero()[:, 0]
            for st2 in range(0, len(fail), PAIR_CHUNK):
                rows = fail[st2:st2 + PAIR_CHUNK]
                joint[rows] = pair_slack(mech, lo[rows], hi[rows], a_hi[rows], b.candidates[rows])
        parts.append((a_hi, u_lo, u_hi, pc, joint))
    joint_all = None if not parts or parts[0][4] is None else torch.cat([p[4] for p in parts])
    return CellBounds(*(torch.cat([p[k] for p in parts]) for k in range(4)), joint=joint_all)


def uses_pair_condition(mech: GemNetMechanism) -> bool:
    """The pair condition (**) applies to two additive bidders (and is on unless configured off)."""
    s = mech.setting
    return (s.bidders == 2 and not s.unit_demand and not mech.net.menu_grid
            and bool(mech.config.get("pair_condition", True)))


def pair_slack(mech: GemNetMechanism, lo: torch.Tensor, hi: torch.Tensor, a_hi: torch.Tensor,
               candidates: torch.Tensor) -> torch.Tensor:
    """Slack of the pair condition (**) on cells lo/hi [C, 2, m] (module docstring): pairs (k, l)
    of the two bidders' elements that cannot both be chosen at one profile of the cell are
    excluded by the affine utility bounds and the two-constraint duality test; returns
    1 - max_j max_{(k, l) not excluded, k in S_1, l in S_2} (alpha-bar_1j^k + alpha-bar_2j^l)."""
    C = lo.shape[0]
    r = ((hi - lo) / 2).reshape(C, -1)  # [C, D]
    centre = (lo + hi) / 2
    A, B = [], []
    for i in range(2):
        u_c, g_lo, g_hi = mech.net.utility_linearisation(i, lo, hi)
        if mech.delta is not None and mech.grid is not None:
            u_c = u_c - mech.delta[i][mech.grid.cell(centre, i)].to(u_c)
        g_mid, g_rad = (g_lo + g_hi) / 2, (g_hi - g_lo) / 2
        ref = u_c.argmax(-1)  # the element bidder i takes at the centre
        rows = torch.arange(C)
        # chosen k at v = c + y  =>  (g_mid^k - g_mid^ref) . y >= u^ref(c) - u^k(c) - (g_rad^k + g_rad^ref) . r
        A.append(g_mid - g_mid[rows, ref].unsqueeze(1))
        B.append(u_c[rows, ref].unsqueeze(1) - u_c - ((g_rad + g_rad[rows, ref].unsqueeze(1)) * r.unsqueeze(1)).sum(-1))
    a1, a2 = A[0][:, :, None, :], A[1][:, None, :, :]  # [C, K+1, 1, D], [C, 1, K+1, D]
    b1, b2 = B[0][:, :, None], B[1][:, None, :]
    denom = a2 - a1
    safe = torch.where(denom == 0, torch.ones_like(denom), denom)
    breaks = torch.where(denom == 0, torch.zeros_like(denom), (a2 / safe).clamp(0, 1))  # [C, K+1, K+1, D]
    ends = torch.zeros_like(breaks[..., :2])
    ends[..., 1] = 1
    lam = torch.cat([ends, breaks], -1)  # [C, K+1, K+1, D+2]
    comb = lam.unsqueeze(-1) * a1.unsqueeze(3) + (1 - lam.unsqueeze(-1)) * a2.unsqueeze(3)  # [..., D+2, D]
    phi = (comb.abs() * r[:, None, None, None, :]).sum(-1) - (lam * b1.unsqueeze(-1) + (1 - lam) * b2.unsqueeze(-1))
    excluded = phi.amin(-1) < -PAIR_TOL
    possible = candidates[:, 0, :, None] & candidates[:, 1, None, :] & ~excluded  # [C, K+1, K+1]
    load = a_hi[:, 0, :, None, :] + a_hi[:, 1, None, :, :]  # [C, K+1, K+1, m]
    load = torch.where(possible.unsqueeze(-1), load, torch.full_like(load, -math.inf))
    return 1 - load.amax(dim=(1, 2)).amax(-1)


def halves(cells: Cells, dim: torch.Tensor) -> tuple[Cells, Cells]:
    """The two halves of each cell when cut at its midpoint along dimension ``dim`` [C]
    (dimensions flattened as bidder * m + item)."""
    C, n, m = cells.lo.shape
    mid = ((cells.lo + cells.hi) / 2).reshape(C, -1).gather(1, dim[:, None])[:, 0]
    rows = torch.arange(C)
    lo1, hi1 = cells.lo.reshape(C, -1).clone(), cells.hi.reshape(C, -1).clone()
    lo2, hi2 = lo1.clone(), hi1.clone()
    hi1[rows, dim] = mid
    lo2[rows, dim] = mid
    depth = cells.depth + 1
    return (Cells(lo1.reshape(C, n, m), hi1.reshape(C, n, m), depth),
            Cells(lo2.reshape(C, n, m), hi2.reshape(C, n, m), depth))


def split(cells: Cells, mech: GemNetMechanism, lookahead: bool = False) -> Cells:
    """Halve each cell along one dimension (any cut is sound: the halves cover the cell).

    ``lookahead=False`` (default): the widest dimension (relative to the value range).
    ``lookahead=True``: try every dimension and keep the cut whose halves do best: most halves passing
    condition (*), then the largest relative drop of ``CellBounds.excess`` (the width of the
    candidate sets), then the widest. The switching surfaces of trained menus are thin slabs
    (e.g. where item j changes hands, v_1j ~ v_2j) along which the bounds barely depend on the
    other coordinates, so cutting only the dimensions that drive the utility spread needs fewer
    cells than cutting all of them evenly. Costs 2 D + 1 bound evaluations per split. With
    condition (*) alone, on a synthetic 2x2 slab of width 0.03 / 0.009 it needs 184 / 336 cells
    against 11,976 / 130,056 for the widest cut; on a trained 2x2 menu with the pair condition it
    needed ~1.5x fewer cells per refinement level but processed ~7x fewer cells per second, so it
    is off by default."""
    s = mech.setting
    rng = (s.high() - s.low()).to(torch.float64).reshape(-1)
    C, n, m = cells.lo.shape
    rel = ((cells.hi - cells.lo).reshape(C, -1) / rng)
    if not lookahead or C == 0:
        dim = rel.argmax(-1)
    else:
        def bounds(c: Cells) -> tuple[torch.Tensor, torch.Tensor]:
            parts = [cell_bounds(mech, Cells(c.lo[st:st + CHUNK], c.hi[st:st + CHUNK], c.depth[st:st + CHUNK]))
                     for st in range(0, len(c), CHUNK)]
            return torch.cat([b.slack for b in parts]), torch.cat([b.excess for b in parts])

        parent = bounds(cells)[1].clamp(min=1e-12)
        score = 1e-3 * rel / rel.amax(-1, keepdim=True)  # tie-break: the wider dimension
        for d in range(n * m):
            (sa, ea), (sb, eb) = (bounds(h) for h in halves(cells, torch.full((C,), d, dtype=torch.long)))
            drop = (1 - (ea + eb) / (2 * parent)).clamp(0, 1)
            score[:, d] += (sa >= 0).double() + (sb >= 0).double() + 0.5 * drop
        dim = score.argmax(-1)
    first, second = halves(cells, dim)
    return Cells.cat([first, second])


@dataclass
class CheckResult:
    """Cells after adaptive refinement, which of them fail (*), and statistics."""

    cells: Cells
    failing: torch.Tensor  # [C] bool
    worst_slack: float
    splits: int
    wall_time: float


def probe_points(cells: Cells, corners: int = 16) -> torch.Tensor:
    """The centre and ``corners`` corners of every cell, [C, 1 + corners, n, m]: all 2^d corners
    when 2^d <= ``corners``, else a fixed pseudo-random subset (the same for every cell)."""
    lo, hi = cells.lo, cells.hi
    d = lo[0].numel()
    if 2 ** d <= corners:
        bits = torch.tensor([[(c >> j) & 1 for j in range(d)] for c in range(2 ** d)], dtype=lo.dtype)
    else:
        bits = torch.randint(0, 2, (corners, d), generator=torch.Generator().manual_seed(0)).to(lo.dtype)
    bits = bits.reshape(-1, *lo.shape[1:])
    pts = lo.unsqueeze(1) + bits * (hi - lo).unsqueeze(1)
    return torch.cat([((lo + hi) / 2).unsqueeze(1), pts], 1)


def truly_conflicting(mech: GemNetMechanism, cells: Cells) -> torch.Tensor:
    """Cells [C] (bool) in which the mechanism over-allocates at a probe point (the centre or a
    corner, ``probe_points``): no refinement can certify them, only a price change can."""
    pts = probe_points(cells)
    C, P = pts.shape[:2]
    flat = pts.reshape(C * P, *pts.shape[2:])
    excess = over_allocation(mech(flat).allocation, mech.setting.unit_demand).reshape(C, P)
    return (excess > TOLERANCE).any(1)


def refine_and_check(mech: GemNetMechanism, cells: Cells, max_depth: int, max_cells: int,
                     lookahead: bool = False) -> CheckResult:
    """Check (*) on every cell, splitting failing cells (``split``) until they pass or hit the limits."""
    t0 = time.perf_counter()
    done: list[Cells] = []
    done_fail: list[torch.Tensor] = []
    slack_min = math.inf
    todo, splits = cells, 0
    bar = progress(desc="certificate cells", unit="cell")
    while len(todo):
        bounds = cell_bounds(mech, todo)
        sl = bounds.slack
        ok = sl >= 0
        bar.update(len(todo))
        total = sum(len(c) for c in done) + len(todo)
        can_split = (~ok) & (todo.depth < max_depth)
        if can_split.any():  # a small truly incompatible cell goes to the MILP, not to more splits
            rows = (can_split & (todo.depth >= max_depth // 2)).nonzero()[:, 0]
            if len(rows):
                can_split[rows[truly_conflicting(mech, todo.take(rows))]] = False
        room = max_cells - total
        if int(can_split.sum()) > room:  # not enough room: split nothing more
            can_split = torch.zeros_like(can_split)
        keep = ~can_split
        done.append(todo.take(keep))
        done_fail.append(~ok[keep])
        if keep.any():
            slack_min = min(slack_min, float(sl[keep].min()))
        splits += int(can_split.sum())
        todo = split(todo.take(can_split), mech, lookahead) if can_split.any() else Cells(
            todo.lo[:0], todo.hi[:0], todo.depth[:0])
    bar.close()
    return CheckResult(Cells.cat(done), torch.cat(done_fail), slack_min, splits, time.perf_counter() - t0)


# ---- piecewise-constant menus (menu_grid > 0): exact check per grid cell ---------------------------


@dataclass
class GridMenus:
    """Every bidder's menu on every cell of the menu grid: allocations alpha [n, Cm, K+1, m] and
    current prices (network price plus the transform's change) [n, Cm, K+1], Cm = G^((n-1) m)
    cells of b_{-i}, numbered like ``PriceGrid.cell``."""

    alpha: torch.Tensor
    price: torch.Tensor
    binary: bool = field(init=False)  # every allocation exactly 0 or 1 (bundle menus)

    def __post_init__(self) -> None:
        self.binary = bool(((self.alpha == 0) | (self.alpha == 1)).all())


def grid_menus(mech: GemNetMechanism) -> GridMenus:
    """Evaluate every bidder's menu once per cell of the others' grid (at the cell centre, which is
    what the network reads anywhere in the cell)."""
    s, net = mech.setting, mech.net
    grid = PriceGrid(net.grid_edges)
    alphas, prices = [], []
    for i in range(s.bidders):
        prof = menu_cell_profiles(net, i, s.low()[i])
        if not torch.equal(grid.cell(prof, i), torch.arange(prof.shape[0])):
            raise RuntimeError("menu-grid numbering does not match the price grid")  # a bug, never input
        with torch.no_grad():
            a, b_ = net(prof)
        price = b_[:, i].to(torch.float64)
        if mech.delta is not None:
            price = price + mech.delta[i].to(torch.float64)
        alphas.append(a[:, i].to(torch.float64))
        prices.append(price)
    return GridMenus(torch.stack(alphas), torch.stack(prices))


@dataclass
class OwnBoxes:
    """Boxes of one bidder's own values, each with the menu it faces (its product cell's menu):
    ``cell`` [R] product cell, ``bidder`` [R], ``menu`` [R] menu-grid cell of b_{-i}, lo / hi [R, m]."""

    cell: torch.Tensor
    bidder: torch.Tensor
    menu: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor

    def __len__(self) -> int:
        return self.cell.shape[0]

    def take(self, mask: torch.Tensor) -> OwnBoxes:
        return OwnBoxes(self.cell[mask], self.bidder[mask], self.menu[mask], self.lo[mask], self.hi[mask])

    @staticmethod
    def cat(parts: list[OwnBoxes]) -> OwnBoxes:
        return OwnBoxes(*(torch.cat([getattr(p, f) for p in parts]) for f in ("cell", "bidder", "menu", "lo", "hi")))

    def bounds(self, menus: GridMenus) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Exact utility bounds of every element over each box (utilities are affine in own
        values with alpha >= 0): u_lo = <lo, alpha> - p, u_hi = <hi, alpha> - p [R, K+1], and
        alpha [R, K+1, m]."""
        alpha = menus.alpha[self.bidder, self.menu]
        price = menus.price[self.bidder, self.menu]
        u_lo = torch.bmm(alpha, self.lo.unsqueeze(-1)).squeeze(-1) - price
        u_hi = torch.bmm(alpha, self.hi.unsqueeze(-1)).squeeze(-1) - price
        return u_lo, u_hi, alpha


def candidates_of(u_lo: torch.Tensor, u_hi: torch.Tensor) -> torch.Tensor:
    """S(box) [R, K+1]: elements whose upper bound reaches the best lower bound."""
    return u_hi >= u_lo.amax(-1, keepdim=True)


def box_max(lo: torch.Tensor, hi: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """max over the box [lo, hi] of <v, d>, exactly: each term at the end of its side that the
    sign of d picks (lo, hi and d broadcast; the last dimension is the item)."""
    return torch.maximum(lo * d, hi * d).sum(-1)


def pair_gaps(boxes: OwnBoxes, menus: GridMenus, rows: torch.Tensor, ks: torch.Tensor) -> torch.Tensor:
    """max over box ``rows`` [P] of u^k(v) - u^k'(v), k = ``ks`` [P], for every element k', [P, K+1]:
    the difference is affine in v with slope alpha^k - alpha^k', so its maximum over the box is
    exact (each term at the end of its side that its sign picks). k' beats k on the whole box iff
    the gap is < 0."""
    b, c = boxes.bidder[rows], boxes.menu[rows]
    alpha, price = menus.alpha[b, c], menus.price[b, c]  # [P, K+1, m], [P, K+1]
    d = alpha[torch.arange(len(rows)), ks].unsqueeze(1) - alpha  # [P, K+1, m]
    top = box_max(boxes.lo[rows].unsqueeze(1), boxes.hi[rows].unsqueeze(1), d)
    return top - (price.gather(1, ks.unsqueeze(1)) - price)


# 0/1 menus: for alpha^k, alpha^k' in {0, 1}^m, max over a box [lo, hi] of <v, alpha^k - alpha^k'> =
# <hi, alpha^k (1 - alpha^k')> - <lo, alpha^k' (1 - alpha^k)> (each item contributes hi_j, -lo_j
# or 0, as in ``box_max``); summed in another order, so an element counts as beaten only by more
# than this (keeping a few more candidates can only make the check stricter)
BILINEAR_TOL = 1e-12


def candidates(boxes: OwnBoxes, menus: GridMenus,
               chunk: int = 16384) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """S(box) [R, K+1]: the elements that no single element beats on the whole box (exact pairwise
    test, ``pair_gaps``' formula), which contains every element the bidder takes anywhere in the
    box and is never larger than ``candidates_of``'s set C (computed first; the pairwise test runs
    only on the boxes where C has several elements, and only against the elements of C: an element
    k' outside C is beaten on the whole box by the element k* with the best lower bound, so
    whatever k' beats on the whole box k* beats too). Returns (S, u_hi [R, K+1], alpha [R, K+1, m])
    with ``OwnBoxes.bounds``' upper utility bounds and allocations."""
    u_lo, u_hi, alpha = boxes.bounds(menus)
    cand = candidates_of(u_lo, u_hi)
    count = cand.sum(-1)
    multi = (count > 1).nonzero().squeeze(-1)
    K1, m = alpha.shape[1], alpha.shape[2]
    flat_alpha, flat_price = alpha.reshape(-1, m), menus.price.reshape(-1)
    for st in range(0, len(multi), chunk):
        r = multi[st:st + chunk]
        cr = cand[r]
        # the candidates of each box, padded with its first candidate (a repeat changes nothing)
        order = cr.to(torch.int8).argsort(dim=-1, descending=True, stable=True)[:, :int(count[r].max())]
        valid = cr.gather(1, order)
        ks = torch.where(valid, order, order[:, :1])  # [B, W]
        a = flat_alpha[r.unsqueeze(1) * K1 + ks]  # [B, W, m]
        menu_row = boxes.bidder[r] * menus.price.shape[1] + boxes.menu[r]
        p = flat_price[menu_row.unsqueeze(1) * K1 + ks]  # [B, W]
        if menus.binary:  # 0/1 allocations: the same maximum as two batched products (5x faster)
            lo, hi = boxes.lo[r].unsqueeze(1), boxes.hi[r].unsqueeze(1)  # [B, 1, m]
            top = torch.bmm(a * hi, (1 - a).transpose(1, 2)) - torch.bmm(1 - a, (a * lo).transpose(1, 2))
            gap = top - (p.unsqueeze(2) - p.unsqueeze(1))
            keep = (gap >= -BILINEAR_TOL).all(-1) & valid
        else:
            lo, hi = boxes.lo[r][:, None, None], boxes.hi[r][:, None, None]
            # max over the box of u^k - u^k', k = row, k' = column (as in ``pair_gaps``)
            gap = box_max(lo, hi, a.unsqueeze(2) - a.unsqueeze(1)) - (p.unsqueeze(2) - p.unsqueeze(1))
            keep = (gap >= 0).all(-1) & valid
        cand[r] = False
        cand.view(-1)[(r.unsqueeze(1) * K1 + ks)[keep]] = True
    return cand, u_hi, alpha


def own_box(mech: GemNetMechanism, bidder: int, digits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Corners lo, hi [C, m] (float64) of bidder ``bidder``'s own grid cells with per-item cell
    indices ``digits`` [C, m]."""
    return cell_ends(mech.net.grid_bounds[bidder].to(torch.float64), digits)


def cell_parts(mech: GemNetMechanism, cells: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bidder i's own cell [C, n] (flat over its m items) and the menu cell it faces [C, n] (flat
    over the others' (n - 1) m dimensions) in each product cell of ``cells`` [C]."""
    n, m, G = mech.setting.bidders, mech.setting.items, mech.net.menu_grid
    digits = grid_digits(cells, G, n * m).reshape(-1, n, m)
    own = torch.stack([grid_number(digits[:, i], G) for i in range(n)], 1)
    menu = torch.stack([grid_number(digits[:, [j for j in range(n) if j != i]].reshape(len(cells), (n - 1) * m), G)
                        for i in range(n)], 1)
    return own, menu


def product_boxes(mech: GemNetMechanism, cells: torch.Tensor) -> OwnBoxes:
    """Every bidder's own box in the product grid cells ``cells`` [C] (flat numbers over all n m
    value dimensions, the first bidder's first item most significant): rows bidder-major."""
    n, m, G = mech.setting.bidders, mech.setting.items, mech.net.menu_grid
    own, menu = cell_parts(mech, cells)
    parts = []
    for i in range(n):
        lo, hi = own_box(mech, i, grid_digits(own[:, i], G, m))
        parts.append(OwnBoxes(cells, torch.full_like(cells, i), menu[:, i], lo, hi))
    return OwnBoxes.cat(parts)


def own_loads(mech: GemNetMechanism, menus: GridMenus, bidder: int, menu_cells: torch.Tensor,
              chunk: int = 32768, desc: str = "") -> torch.Tensor:
    """max_{k in S_i} alpha_ij^k [len(menu_cells), G^m, m] of bidder i = ``bidder`` facing the menus
    of ``menu_cells`` in each of its whole own grid cells (S_i from ``candidates``): bidder i's part
    of the load of every product cell with those others' cells. It depends only on bidder i's menu
    there, so a price change recomputes only the rows of the menus it touched. Menus that are bit
    for bit the same (all allocations and prices) share one computed row: the grid Myerson's menus
    depend on the others' cells only through each item's competing threshold (3x3, G = 7: 343
    distinct menus in 117,649 cells). The table is uint8 when every allocation of the menus is
    exactly 0 or 1 (bundle menus: 8 times less memory than float64, and the same sums), float64
    otherwise. ``desc``: show a progress bar with this label."""
    m, G = mech.setting.items, mech.net.menu_grid
    own = torch.arange(G ** m)
    lo, hi = own_box(mech, bidder, grid_digits(own, G, m))
    alpha, price = menus.alpha[bidder, menu_cells], menus.price[bidder, menu_cells]  # [M, K+1, m], [M, K+1]
    K1 = alpha.shape[1]
    key, inverse = torch.unique(torch.cat([alpha.flatten(1), price], 1), dim=0, return_inverse=True)
    distinct = GridMenus(key[:, :K1 * m].reshape(1, -1, K1, m), key[:, K1 * m:].unsqueeze(0))
    out = torch.empty(len(key), len(own), m, dtype=torch.uint8 if distinct.binary else torch.float64)
    per = max(chunk // len(own), 1)
    steps = range(0, len(key), per)
    for st in progress(steps, desc=desc, unit="chunk") if desc else steps:
        mc = torch.arange(st, min(st + per, len(key)))
        menu = mc.repeat_interleave(len(own))
        boxes = OwnBoxes(menu, torch.zeros_like(menu), menu, lo.repeat(len(mc), 1), hi.repeat(len(mc), 1))
        cand, _, a = candidates(boxes, distinct)
        out[st:st + per] = torch.where(cand.unsqueeze(-1), a, 0.0).amax(1).reshape(len(mc), len(own), m)
    return out[inverse]


def refine_own(boxes: OwnBoxes, menus: GridMenus, cells: torch.Tensor, n: int, max_depth: int) -> OwnBoxes:
    """Split the own boxes of the product cells ``cells`` [C] (sorted) while that can still
    certify the cell; returns the leaves. Each round cuts the widest side of every box whose
    candidate set holds elements that differ on an over-allocated item of its cell, and stops
    refining a cell once it passes (*), once its conflict is certain (the elements that are the
    only candidate of some box already over-allocate), or after ``max_depth`` cuts. The leaves of
    a box cover it, so the union of their candidate sets still contains every element the bidder
    takes anywhere in the box, and it shrinks towards the exact set."""
    done: list[OwnBoxes] = []
    m = boxes.lo.shape[-1]
    load_done = torch.zeros(len(cells) * n, m, dtype=torch.float64)  # max candidate alpha of done boxes
    sure_done = torch.zeros_like(load_done)  # the same over done boxes with a single candidate
    todo = boxes
    for depth in range(max_depth + 1):
        if not len(todo):
            break
        cand, _, alpha = candidates(todo, menus)
        a_max = torch.where(cand.unsqueeze(-1), alpha, torch.zeros_like(alpha)).amax(1)  # [R, m]
        a_min = torch.where(cand.unsqueeze(-1), alpha, torch.full_like(alpha, math.inf)).amin(1)
        single = cand.sum(-1) == 1
        pos = torch.searchsorted(cells, todo.cell)
        slot = (pos * n + todo.bidder).unsqueeze(-1).expand(-1, m)
        load = load_done.scatter_reduce(0, slot, a_max, "amax")
        sure = sure_done.scatter_reduce(0, slot, torch.where(single.unsqueeze(-1), a_max, 0.0), "amax")
        over = load.reshape(-1, n, m).sum(1) > 1  # [C, m] items over-allocated per cell
        certain = (sure.reshape(-1, n, m).sum(1) > 1).any(-1)
        useful = ((a_max > a_min) & over[pos]).any(-1) & ~certain[pos] & ~single
        if depth == max_depth:
            useful[:] = False
        stop = ~useful
        finished = todo.take(stop)
        done.append(finished)
        fs = slot[stop]
        load_done.scatter_reduce_(0, fs, a_max[stop], "amax")
        sure_done.scatter_reduce_(0, fs, torch.where(single[stop].unsqueeze(-1), a_max[stop], 0.0), "amax")
        todo = todo.take(useful)
        if not len(todo):
            break
        width = todo.hi - todo.lo
        dim = width.argmax(-1)
        rows = torch.arange(len(todo))
        mid = (todo.lo[rows, dim] + todo.hi[rows, dim]) / 2
        lo2, hi1 = todo.lo.clone(), todo.hi.clone()
        hi1[rows, dim] = mid
        lo2[rows, dim] = mid
        todo = OwnBoxes.cat([OwnBoxes(todo.cell, todo.bidder, todo.menu, todo.lo, hi1),
                             OwnBoxes(todo.cell, todo.bidder, todo.menu, lo2, todo.hi)])
    return OwnBoxes.cat(done) if done else boxes


def box_loads(boxes: OwnBoxes, menus: GridMenus, cells: torch.Tensor, n: int) -> torch.Tensor:
    """sum_i max_{k in S_i} alpha_ij^k per product cell ``cells`` [C] -> [C, m], with S_i the union
    of the candidate sets of bidder i's boxes in that cell."""
    cand, _, alpha = candidates(boxes, menus)
    a = torch.where(cand.unsqueeze(-1), alpha, torch.zeros_like(alpha)).amax(1)  # [R, m]
    pos = torch.searchsorted(cells, boxes.cell)
    per = torch.zeros(len(cells) * n, a.shape[-1], dtype=a.dtype)
    per.scatter_reduce_(0, (pos * n + boxes.bidder).unsqueeze(-1).expand_as(a), a, "amax")
    return per.reshape(len(cells), n, -1).sum(1)


@dataclass
class GridCheck:
    """Result of the exact check of piecewise-constant menus: failing product cells (sorted flat
    numbers) with the refined own boxes of their bidders, and statistics."""

    failing: torch.Tensor  # [F] flat product-cell numbers that fail (*)
    boxes: OwnBoxes  # the refined own boxes of the failing cells
    cells: int  # product cells checked
    failing_unrefined: int  # cells failing with whole own boxes, before refinement
    worst_slack: float
    leaves: int  # own boxes after refinement (failing cells)
    wall_time: float
    table: list[torch.Tensor] = field(default_factory=list)  # per bidder ``own_loads`` of every menu cell

    def batches(self, size: int) -> list[GridCheck]:
        """The failing cells in groups of at most ``size`` (the transform prices them in turn)."""
        boxes = self.boxes.take(torch.argsort(self.boxes.cell, stable=True))  # a batch's boxes are one slice
        out = []
        for st in range(0, len(self.failing), size):
            cells = self.failing[st:st + size]
            first = int(torch.searchsorted(boxes.cell, cells[:1]))
            last = int(torch.searchsorted(boxes.cell, cells[-1:], side="right"))
            part = boxes.take(torch.arange(first, last))
            out.append(GridCheck(cells, part.take(torch.isin(part.cell, cells)), self.cells,
                                 self.failing_unrefined, self.worst_slack, self.leaves, self.wall_time, self.table))
        return out


def grid_failing(table: list[torch.Tensor], C: int, block: int = 1 << 22) -> tuple[torch.Tensor, float]:
    """Condition (*) with whole own cells on every product cell at once: the failing flat product
    cells (sorted) and the smallest slack 1 - load of the passing ones. With C own cells per bidder
    and ``cell_parts``' numbering (bidder i's menu cell = the others' own cells in bidder order),
    ``own_loads``' table [C^(n-1), C, m] of bidder i, viewed as [C]*n + [m] with its own axis moved
    to position i, is bidder i's load on the whole product grid (a strided view, no copy); the n
    views are summed a block of the first bidder's own cells at a time."""
    n, m = len(table), table[0].shape[-1]
    views = [t.view(*[C] * n, m).movedim(n - 1, i) for i, t in enumerate(table)]
    rest = C ** (n - 1)
    step = max(block // (rest * m), 1)
    fails, worst = [], math.inf
    for a in range(0, C, step):
        top = sum(v[a:a + step] for v in views).amax(-1).reshape(-1)  # [step * rest]
        bad = top > 1
        fails.append(bad.nonzero().squeeze(-1) + a * rest)
        if not bool(bad.all()):
            worst = min(worst, 1 - float(top[~bad].max()))
    return torch.cat(fails), worst


def check_grid(mech: GemNetMechanism, max_depth: int, chunk: int = 32768,
               cells: torch.Tensor | None = None, table: list[torch.Tensor] | None = None,
               menus: GridMenus | None = None) -> GridCheck:
    """Condition (*) on every product cell of the menu grid (or on the sorted flat product-cell
    numbers ``cells``), exactly: in a product cell Q = Q_1 x ... x Q_n every bidder's menu is
    constant (it reads only the others' cells), so bidder i's choice depends on v_i in Q_i alone
    and the bidders choose independently; (*) with S_i(Q) = the elements bidder i takes somewhere
    in Q_i is then necessary and sufficient. S_i is computed from exact affine utility bounds over
    own boxes, refined where several elements are candidates (``refine_own``), so it can only be
    larger than the exact set. The whole-own-cell loads come from the per-bidder ``own_loads``
    tables (``table``: already computed for the current menus, as ``recheck_grid`` passes them,
    with the ``grid_menus`` they came from); only the failing cells' own boxes are refined."""
    t0 = time.perf_counter()
    s = mech.setting
    n, m, G = s.bidders, s.items, mech.net.menu_grid
    menus = grid_menus(mech) if menus is None else menus
    P = G ** (n * m)
    todo = torch.arange(P) if cells is None else cells
    if table is None:
        table = [own_loads(mech, menus, i, torch.arange(G ** ((n - 1) * m)), chunk,
                           desc=f"grid certificate, bidder {i + 1} of {n}") for i in range(n)]
    if cells is None:
        failing, worst = grid_failing(table, G ** m)
    else:
        fails, worst = [], math.inf
        for st in range(0, len(todo), chunk):
            part = todo[st:st + chunk]
            own, menu = cell_parts(mech, part)
            load = sum(table[i][menu[:, i], own[:, i]] for i in range(n)).amax(-1)
            fails.append(part[load > 1])
            if bool((load <= 1).any()):
                worst = min(worst, 1 - float(load[load <= 1].max()))
        failing = torch.cat(fails) if fails else todo
    unrefined = len(failing)
    still, leaves = [], []
    for st in progress(range(0, unrefined, chunk // 4), desc=f"refining {unrefined} failing cells",
                       unit="chunk"):  # refine the failing cells' own boxes
        part = failing[st:st + chunk // 4]
        boxes = refine_own(product_boxes(mech, part), menus, part, n, max_depth)
        load = box_loads(boxes, menus, part, n).amax(-1)
        worst = min(worst, float(1 - load.max()))
        still.append(part[load > 1])
        leaves.append(boxes.take(torch.isin(boxes.cell, still[-1])))
    failing = torch.cat(still) if still else failing
    boxes = OwnBoxes.cat(leaves) if leaves else product_boxes(mech, failing)
    return GridCheck(failing, boxes, len(todo), unrefined, worst, len(boxes), time.perf_counter() - t0, table)


def cells_facing(mech: GemNetMechanism, changed: torch.Tensor) -> torch.Tensor:
    """The sorted product cells in which some bidder faces a menu marked in ``changed``
    [n, G^((n-1) m)] (bidder i's menu of cell c_{-i} is used in every product cell with those
    others' cells, whatever bidder i's own cell)."""
    s = mech.setting
    n, m, G = s.bidders, s.items, mech.net.menu_grid
    own = grid_digits(torch.arange(G ** m), G, m)  # [G^m, m]
    out = []
    for i in range(n):
        menu = changed[i].nonzero().squeeze(-1)
        if not len(menu):
            continue
        others = grid_digits(menu, G, (n - 1) * m).reshape(-1, n - 1, m)
        digits = torch.empty(len(menu), len(own), n, m, dtype=torch.long)
        digits[:, :, [j for j in range(n) if j != i]] = others.unsqueeze(1)
        digits[:, :, i] = own
        out.append(grid_number(digits.reshape(-1, n * m), G))
    return torch.cat(out).unique() if out else torch.zeros(0, dtype=torch.long)


def recheck_grid(mech: GemNetMechanism, prev: GridCheck, changed: torch.Tensor, max_depth: int) -> GridCheck:
    """``check_grid`` after a price change that touched only the menus marked in ``changed``
    [n, G^((n-1) m)]: the cells facing none of them keep their previous result exactly (their
    menus, hence their check, are unchanged), the others are checked again. The failing cells
    and their boxes are exact; ``worst_slack`` and the counts mix both checks (the transform runs
    one full ``check_grid`` for the certificate)."""
    t0 = time.perf_counter()
    again = cells_facing(mech, changed)
    menus = grid_menus(mech)
    table = None  # without a previous table check_grid computes every row
    if prev.table:
        table = [t.clone() for t in prev.table]
        for i, raised in enumerate(changed):
            rows = raised.nonzero().squeeze(-1)
            if len(rows):
                table[i][rows] = own_loads(mech, menus, i, rows, desc=f"re-check, bidder {i + 1}'s raised menus")
    res = check_grid(mech, max_depth, cells=again, table=table, menus=menus)
    kept = ~torch.isin(prev.failing, again)
    failing = torch.cat([prev.failing[kept], res.failing]).sort().values
    boxes = OwnBoxes.cat([prev.boxes.take(~torch.isin(prev.boxes.cell, again)), res.boxes])
    return GridCheck(failing, boxes, prev.cells, int(kept.sum()) + res.failing_unrefined,
                     min(prev.worst_slack, res.worst_slack), len(boxes), time.perf_counter() - t0, table)


# ---- discrete settings: exact, by enumeration ----------------------------------------------------


def all_profiles(mech: GemNetMechanism) -> tuple[torch.Tensor, torch.Tensor]:
    """Every type profile [P, n, m] of a discrete setting and its probability [P]."""
    s = mech.setting
    types, probs = s.type_space()
    T = types.shape[0]
    grid = torch.cartesian_prod(*[torch.arange(T)] * s.bidders).reshape(-1, s.bidders)
    return types[grid], probs[grid].prod(1)


def check_discrete(mech: GemNetMechanism) -> dict[str, Any]:
    """Condition (*) with single-profile cells: the chosen elements at every type profile."""
    t0 = time.perf_counter()
    values, _ = all_profiles(mech)
    ovr = over_allocation(mech(values).allocation, mech.setting.unit_demand)
    worst = float(ovr.max())
    return {"cells": int(values.shape[0]), "bound_method": "exact (cells are single type profiles)",
            "worst_excess": worst, "tolerance": TOLERANCE, "passed": worst <= TOLERANCE,
            "wall_time": time.perf_counter() - t0}


# ---- independent verification ------------------------------------------------------------------


def verify_random(mech: GemNetMechanism, n: int = 1_000_000, seed: int = 0, chunk: int = 100_000) -> float:
    """Largest over-allocation of the hard-argmax mechanism on ``n`` random profiles."""
    g = torch_generator(seed)
    worst = 0.0
    for st in range(0, n, chunk):
        v = mech.setting.sample(min(chunk, n - st), g)
        worst = max(worst, float(over_allocation(mech(v).allocation, mech.setting.unit_demand).max()))
    return worst


def adversarial_search(mech: GemNetMechanism, restarts: int = 2000, rounds: int = 40,
                       seed: int = 0) -> dict[str, Any]:
    """Search for an over-allocating profile: ``restarts`` random profiles, then coordinate
    search (each value moved by +-step, the best move kept, step halved when stuck) on the
    objective max_j sum_i x_ij, which is informative even where the profile is feasible.
    Returns the largest over-allocation found and the search budget."""
    s = mech.setting
    g = torch_generator(seed)
    low, high = s.low(), s.high()
    v = s.sample(restarts, g)

    def score(x: torch.Tensor) -> torch.Tensor:
        a = mech(x).allocation
        load = a.sum(1).amax(-1)
        if s.unit_demand:
            load = torch.maximum(load, a.sum(2).amax(-1))
        return load

    best = score(v)
    step = torch.full((restarts,), 0.25, dtype=torch.float64)
    D = s.bidders * s.items
    for _ in range(rounds):
        improved = torch.zeros(restarts, dtype=torch.bool)
        for d in range(D):
            for sign in (1.0, -1.0):
                cand = v.clone().reshape(restarts, D)
                span = (high - low).reshape(-1)[d]
                cand[:, d] = cand[:, d] + sign * step * span
                cand = torch.maximum(torch.minimum(cand.reshape_as(v), high), low)
                sc = score(cand)
                better = sc > best
                v = torch.where(better[:, None, None], cand, v)
                best = torch.where(better, sc, best)
                improved |= better
        step = torch.where(improved, step, step / 2)
        if s.discrete:
            break
    return {"max_over_allocation": float((best - 1).clamp(min=0).max()), "max_load": float(best.max()),
            "budget": f"{restarts} random restarts x {rounds} rounds of coordinate search "
                      f"({2 * D} moves per round, step halving from 0.25 of the range)"}


def lipschitz_bound(mech: GemNetMechanism) -> list[float]:
    """A global Lipschitz constant of each bidder's menu network in b_{-i} (inf-norm in, per
    output): product of the layers' induced infinity norms, activation slopes 1, times the input
    scaling 1/(high - low). Reported for information; the certificate uses the cell bounds."""
    net = mech.net
    out = []
    rng = float((mech.setting.high() - mech.setting.low()).min())
    for seq in net.nets:
        L = 1.0 / rng
        for layer in seq:
            if isinstance(layer, torch.nn.Linear):
                L *= float(layer.weight.abs().sum(1).max())
        out.append(L)
    return out


def recheck(mech: GemNetMechanism, profiles: int = 1_000_000, restarts: int = 2000,
            seed: int = 0) -> dict[str, Any]:
    """Re-derive the certificate of a saved mechanism from scratch (independent of the stored
    JSON and of any MILP) and run the independent checks; used by ``infozoo certify DIR``."""
    cfg = mech.config
    t0 = time.perf_counter()
    if mech.setting.discrete:
        check = check_discrete(mech)
        passed = check["passed"]
    elif mech.net.menu_grid:
        grid = check_grid(mech, int(cfg.get("own_depth", 8)))
        check = {"cells": grid.cells, "failing_cells": len(grid.failing), "worst_slack": grid.worst_slack,
                 "failing_before_refinement": grid.failing_unrefined, "menu_grid": mech.net.menu_grid}
        passed = not len(grid.failing)
    else:
        per_dim = int(cfg.get("grid", 1)) if mech.setting.bidders > 1 else 1
        res = refine_and_check(mech, initial_cells(mech, per_dim), int(cfg.get("max_depth", 8)),
                               int(cfg.get("max_cells", 400_000)), bool(cfg.get("lookahead_split", False)))
        check = {"cells": len(res.cells), "failing_cells": int(res.failing.sum()),
                 "worst_slack": res.worst_slack, "splits": res.splits}
        passed = not bool(res.failing.any())
    stored = mech.certificate or {}
    out = {"stored_certified": mech.certified, "recomputed_condition_holds": bool(passed), "check": check,
           "check_time": time.perf_counter() - t0,
           "milp_statuses": [m.get("status") for m in stored.get("milps", []) if m.get("applied", True)],
           "discarded_milps": sum(not m.get("applied", True) for m in stored.get("milps", []))}
    out["certified"] = bool(passed and mech.certified is not False
                            and all(s == "Optimal" for s in out["milp_statuses"]))
    if profiles:
        out["over_allocation_random"] = verify_random(mech, profiles, seed=seed)
        out["random_profiles"] = profiles
    if restarts:
        out["adversarial"] = adversarial_search(mech, restarts=restarts, seed=seed)
    return out
