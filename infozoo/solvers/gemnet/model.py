"""GemNet's menu networks and the hard-argmax menu mechanism (RochetNet when n = 1).

GemNet (Wang, Jiang, Parkes: "GemNet: Menu-Based, Strategy-Proof Multi-Bidder Auctions Through
Deep Learning") extends RochetNet (Duetting et al., "Optimal Auctions through Deep Learning")
from one bidder to many. Bidder i faces a menu that depends only on the *other* bids b_{-i}
("self-bid independence"):

    menu_i(b_{-i}) = {(alpha_i^k(b_{-i}), beta_i^k(b_{-i})) : k = 0..K},

with k = 0 the fixed null element (alpha = 0, beta = 0), so opting out is always possible (IR).
Bidder i takes the element of highest utility

    k_i* = argmax_k u_i^k,  u_i^k = <b_i, alpha_i^k(b_{-i})> - beta_i^k(b_{-i}) - delta_i^k(b_{-i}),

which makes truthful bidding a dominant strategy whatever the menus are (the taxation principle):
a misreport can only make the bidder pick a different element of the same menu. ``delta`` is the
price change of the post-training transform (``transform.py``): a function of b_{-i} alone,
piecewise constant on a rectilinear grid of the others' value space, so SP is untouched.

Parametrisation (ours, following RochetNet's public recipe where it applies):
- n = 1 (RochetNet): the menu is a learned constant, K allocation logits and K price parameters.
- n > 1: one MLP per bidder maps the normalised others' bids (b_{-i} - low) / (high - low) to
  K * A allocation logits and K price logits.
- additive: alpha_ij^k = sigmoid(s * logit); unit-demand: softmax over the m items and a dummy
  (so sum_j alpha_ij^k <= 1 by construction). ``s`` (``alloc_sharpness``) and ``alloc_init``
  (allocation-logit biases started at random corners +-alloc_init) let discrete settings start
  from, and keep, deterministic 0/1 bundles, which the re-pricing MILP then prices exactly.
- prices: beta^k = scale * softplus(price logit) >= 0, scale = the largest value of the setting.
- ``menu_grid`` G > 0 (piecewise-constant menus): the MLP reads b_{-i} at the centre of its cell
  in a grid of G half-open cells per value dimension (uniform, or cut at ``grid_breaks``, fractions
  of the value range), menu_i(b_{-i}) = MLP_i(centre(cell(b_{-i}))).
  The menu is then one finite menu per cell of the others' values, still a function of b_{-i}
  alone (so SP is untouched), and feasibility can be checked exactly cell by cell (``certify.
  check_grid``) instead of through Lipschitz bounds; the price grid of the transform is the same
  grid. The cost is resolution: a menu cannot react to b_{-i} within a cell.

Mechanism: the hard argmax with ties going to the lowest index (the null element first). Menus
alone decide the outcome, so ``menus(bids)`` and ``__call__(bids)`` share one code path. Discrete
settings snap every bid item-wise to the nearest support point first (as the LP baseline does),
so the certificate over the finite type space covers every possible bid.

``interval_menu`` propagates a box of b_{-i} through the network, giving sound bounds on alpha
and beta over the box (exact for piecewise-constant menus: the box must lie in one grid cell);
``certify.py`` uses them. Two bounds are intersected: interval bound
propagation (for an affine layer, centre c -> W c + b and radius r -> |W| r; monotone
activations map the end points) and the mean-value form f(c) +- |J(box)| r with an interval
Jacobian (``mean_value_forward``), which is ~20x tighter on small cells of trained menus.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from infozoo.core.checkpoint import save_checkpoint
from infozoo.core.torch_utils import mlp
from infozoo.envs.auction.mechanism import Outcome, check_bids
from infozoo.envs.auction.settings import AuctionSetting, DiscreteValues

CERTIFICATE = "certificate.json"
SNAP = 1e-9  # allocations within SNAP of 0 or 1 are exactly 0 or 1
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


class MenuNetwork(nn.Module):
    """Menus for every bidder: ``forward(bids) -> (alpha [B, n, K+1, m], beta [B, n, K+1])``.

    Element 0 is the null element (alpha = 0, beta = 0). Bidder i's menu is computed from the
    bids of the others only.
    """

    def __init__(self, bidders: int, items: int, menu_size: int, unit_demand: bool,
                 low: torch.Tensor, high: torch.Tensor, hidden: tuple[int, ...] = (128, 128),
                 activation: str = "relu", alloc_sharpness: float = 1.0, alloc_init: float = 0.0,
                 alloc_snap: float = SNAP, menu_grid: int = 0, grid_breaks: tuple[float, ...] = ()) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
        self.n, self.m, self.K = bidders, items, menu_size
        self.unit_demand = unit_demand
        self.A = items + 1 if unit_demand else items  # logits per element
        self.alloc_sharpness = float(alloc_sharpness)
        if not 0 < alloc_snap < 0.5:
            raise ValueError(f"alloc_snap must lie in (0, 0.5), got {alloc_snap}")
        self.snap = float(alloc_snap)
        self.register_buffer("low", low.clone().to(torch.get_default_dtype()))
        self.register_buffer("high", high.clone().to(torch.get_default_dtype()))
        self.price_scale = float(high.max())
        if menu_grid < 0:
            raise ValueError(f"menu_grid must be 0 (continuous menus) or >= 1 cells per dimension, got {menu_grid}")
        self.menu_grid = int(menu_grid) if bidders > 1 else 0
        if self.menu_grid:  # piecewise-constant menus: b_{-i} is read at the centre of its grid cell
            # float64 attributes, not buffers: the grid must not move when the module changes dtype
            # (pass low / high in float64 so that training, certificate and reload share the grid)
            lo64, hi64 = low.to(torch.float64), high.to(torch.float64)
            self.grid_breaks = tuple(float(t) for t in grid_breaks)
            self.grid_edges = grid_edges(lo64, hi64, self.menu_grid, self.grid_breaks)  # [n, m, G-1]
            self.grid_bounds = torch.cat([lo64[..., None], self.grid_edges, hi64[..., None]], -1)  # [n, m, G+1]
        out = menu_size * (self.A + 1)
        if bidders == 1:
            # RochetNet: a constant menu
            self.alloc_logits = nn.Parameter(torch.randn(1, menu_size, self.A))
            self.price_logits = nn.Parameter(torch.rand(1, menu_size) * 2 - 1)
            self.nets = nn.ModuleList()
        else:
            d_in = (bidders - 1) * items
            self.nets = nn.ModuleList(
                mlp([d_in, *hidden, out], activation=ACTIVATIONS[activation]) for _ in range(bidders))
            if alloc_init > 0:  # start from deterministic bundles: logits at random corners +-alloc_init
                with torch.no_grad():
                    for seq in self.nets:
                        signs = torch.randint(0, 2, (menu_size * self.A,)).to(seq[-1].bias) * 2 - 1
                        seq[-1].bias[: menu_size * self.A] = alloc_init * signs

    # -- pieces ---------------------------------------------------------------------------
    def others(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """x [B, n, m] -> the other bidders' rows, flattened [B, (n-1) m]."""
        idx = [j for j in range(self.n) if j != i]
        return x[:, idx, :].reshape(x.shape[0], -1)

    def normalise(self, bids: torch.Tensor) -> torch.Tensor:
        return (bids - self.low) / (self.high - self.low)

    def quantise(self, bids: torch.Tensor) -> torch.Tensor:
        """Bids [B, n, m] moved to the centre of their menu-grid cell (identity for continuous
        menus). Cells are half-open, [e_k, e_{k+1}), the last one closed at ``high`` (``grid_index``)."""
        if not self.menu_grid:
            return bids
        lo, hi = self.cell_box(bids)
        return (lo + hi) / 2

    def cell_box(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper ends [B, n, m] of the menu-grid cell that holds each value of x [B, n, m]."""
        return cell_ends(self.grid_bounds.to(x.dtype), grid_index(x, self.grid_edges))

    def inputs(self, bids: torch.Tensor, i: int) -> torch.Tensor:
        """The input of bidder i's menu MLP: the others' (quantised) bids, normalised to [0, 1]."""
        return self.others(self.normalise(self.quantise(bids)), i)

    def heads(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw outputs [..., K (A + 1)] -> alpha [..., K, m], beta [..., K]."""
        logits = raw[..., : self.K * self.A].reshape(*raw.shape[:-1], self.K, self.A)
        return self.alloc(logits), self.price(raw[..., self.K * self.A:])

    def alloc(self, logits: torch.Tensor) -> torch.Tensor:
        z = self.alloc_sharpness * logits
        if self.unit_demand:
            return self.snapped(torch.softmax(z, dim=-1)[..., : self.m])
        return self.snapped(torch.sigmoid(z))

    def snapped(self, a: torch.Tensor) -> torch.Tensor:
        """a in [0, 1] with its last ``snap`` of either end snapped to exactly 0 / 1:
        clamp((a - snap) / (1 - 2 snap), 0, 1). Monotone, so interval bounds still apply, and
        saturated elements are exact bundles that never over-allocate by rounding (e.g. 1 - 1e-13
        for one bidder plus 2e-12 for another). Unit-demand shares keep sum_j <= 1: with k >= 2
        shares above snap the sum is at most (1 - k snap) / (1 - 2 snap) <= 1, with one it is
        clamped at 1."""
        return ((a - self.snap) / (1 - 2 * self.snap)).clamp(0, 1)

    def price(self, logits: torch.Tensor) -> torch.Tensor:
        return self.price_scale * nn.functional.softplus(logits)

    @staticmethod
    def with_null(alpha: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prepend the null element (index 0) along the element axis."""
        a0 = torch.zeros_like(alpha[..., :1, :])
        b0 = torch.zeros_like(beta[..., :1])
        return torch.cat([a0, alpha], dim=-2), torch.cat([b0, beta], dim=-1)

    # -- forward --------------------------------------------------------------------------
    def constant_menu(self) -> tuple[torch.Tensor, torch.Tensor]:
        """n = 1 only: the menu with its null element, alpha [K+1, m], beta [K+1]."""
        return self.with_null(self.alloc(self.alloc_logits[0]), self.price(self.price_logits[0]))

    def forward(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B = bids.shape[0]
        if self.n == 1:
            a, b = self.constant_menu()
            return a.expand(B, 1, -1, -1), b.expand(B, 1, -1)
        x = self.normalise(self.quantise(bids))
        alphas, betas = [], []
        for i, net in enumerate(self.nets):
            alpha, beta = self.heads(net(self.others(x, i)))
            alphas.append(alpha)
            betas.append(beta)
        a, b = self.with_null(torch.stack(alphas, 1), torch.stack(betas, 1))
        return a, b

    # -- interval bounds over a box of the others' bids -------------------------------------
    def interval_menu(self, i: int, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Sound bounds of bidder i's menu over boxes of profiles lo/hi [C, n, m] (only the
        others' rows matter): alpha_lo, alpha_hi [C, K+1, m], beta_lo, beta_hi [C, K+1]."""
        C = lo.shape[0]
        if self.n == 1:
            a, b = self.forward(lo[:1])
            a, b = a[0, 0].expand(C, -1, -1), b[0, 0].expand(C, -1)
            return a, a, b, b
        if self.menu_grid:  # the menu is constant on a grid cell: exact bounds
            centre = self.in_one_cell(lo, hi)
            a, b = self.with_null(*self.heads(self.nets[i](self.inputs(centre, i))))
            return a, a, b, b
        xl, xh = self.others(self.normalise(lo), i), self.others(self.normalise(hi), i)
        return self.head_bounds(*interval_forward(self.nets[i], xl, xh))

    def in_one_cell(self, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """Boxes lo/hi [C, n, m] that each lie in one menu-grid cell (its closure); returns their
        centres. Points on a box's upper face that belong to the next cell are covered by that
        cell's boxes, so the cell's menu is the exact menu of every point the box is used for."""
        centre = (lo + hi) / 2
        cell_lo, cell_hi = self.cell_box(centre)
        if not bool(((lo >= cell_lo) & (hi <= cell_hi)).all()):
            raise ValueError("certificate cells must each lie in one menu-grid cell (menu_grid > 0)")
        return centre

    def head_bounds(self, zl: torch.Tensor, zh: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Bounds of the menu (with the null element) from bounds zl, zh [C, K (A + 1)] of the raw
        MLP outputs: alpha_lo, alpha_hi [C, K+1, m], beta_lo, beta_hi [C, K+1] (heads are monotone
        per logit; the unit-demand softmax by ``softmax_bounds``)."""
        C, KA = zl.shape[0], self.K * self.A
        ll = zl[:, :KA].reshape(C, self.K, self.A)
        lh = zh[:, :KA].reshape(C, self.K, self.A)
        if self.unit_demand:
            a_lo, a_hi = softmax_bounds(self.alloc_sharpness * ll, self.alloc_sharpness * lh)
            a_lo, a_hi = self.snapped(a_lo[..., : self.m]), self.snapped(a_hi[..., : self.m])
        else:
            a_lo, a_hi = self.alloc(ll), self.alloc(lh)
        b_lo, b_hi = self.price(zl[:, KA:]), self.price(zh[:, KA:])
        a_lo, b_lo = self.with_null(a_lo, b_lo)
        a_hi, b_hi = self.with_null(a_hi, b_hi)
        return a_lo, a_hi, b_lo, b_hi

    def utility_linearisation(self, i: int, lo: torch.Tensor, hi: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Additive menus: bidder i's utilities u_i^k(v) = <v_i, alpha_i^k(v_{-i})> - beta_i^k(v_{-i})
        at the centre c of each box of profiles lo/hi [C, n, m], and an interval [G_lo, G_hi]
        [C, K+1, n m] containing their gradient in the whole profile v (flattened bidder-major) at
        every point of the box: own values have d u / d v_ij = alpha_ij in its interval bounds;
        the others' values go through the interval Jacobian of the MLP (``interval_jacobian``), the
        slope ranges of the heads (sigmoid' over the logit interval, softplus' = sigmoid) and the
        interval products with v_i. Returns u(c) [C, K+1], G_lo, G_hi (the null element: 0)."""
        if self.unit_demand or self.n == 1 or self.menu_grid:
            raise ValueError("utility_linearisation supports continuous additive menus with several bidders")
        C, n, m = lo.shape
        KA = self.K * self.A
        centre = (lo + hi) / 2
        rng_all = self.high - self.low
        xl, xh = self.others(self.normalise(lo), i), self.others(self.normalise(hi), i)
        jac = interval_jacobian(self.nets[i], xl, xh)  # f(c) [C, out], J_lo, J_hi [C, out, d_in]
        fc, jl, jh = jac
        zl, zh = interval_forward(self.nets[i], xl, xh, jac)
        d_in = xl.shape[-1]
        s = self.alloc_sharpness
        # allocation heads: alpha = clamp((sigmoid(s z) - snap) / (1 - 2 snap), 0, 1),
        # slope in [0, s max sigmoid' / (1 - 2 snap)]
        sig_near = torch.sigmoid(closest_to_zero(s * zl[:, :KA], s * zh[:, :KA]))
        a_slope_hi = s * sig_near * (1 - sig_near) / (1 - 2 * self.snap)
        ja_l, ja_h = slope_times(torch.zeros_like(a_slope_hi), a_slope_hi, jl[:, :KA], jh[:, :KA])
        ja_l, ja_h = ja_l.reshape(C, self.K, m, d_in), ja_h.reshape(C, self.K, m, d_in)
        # price heads: beta = scale softplus(z), slope scale sigmoid(z), increasing in z
        sl, sh = self.price_scale * torch.sigmoid(zl[:, KA:]), self.price_scale * torch.sigmoid(zh[:, KA:])
        jb_l, jb_h = slope_times(sl, sh, jl[:, KA:], jh[:, KA:])  # [C, K, d_in]
        # d u / d x_-i = sum_j v_ij d alpha_ij - d beta, with v_ij in [lo_ij, hi_ij] (interval products)
        pl, ph = interval_product(lo[:, i][:, None, :, None], hi[:, i][:, None, :, None], ja_l, ja_h)
        go_l, go_h = pl.sum(2) - jb_h, ph.sum(2) - jb_l
        scale = self.others(rng_all.expand(1, n, m), i)[0]  # d x / d v for the others' values
        go_l, go_h = go_l / scale, go_h / scale
        # own values: d u / d v_ij = alpha_ij in [a_lo, a_hi]
        a_lo, a_hi, _, _ = self.head_bounds(zl, zh)
        gl = torch.zeros(C, self.K + 1, n, m, dtype=lo.dtype)
        gh = torch.zeros_like(gl)
        gl[:, :, i], gh[:, :, i] = a_lo, a_hi
        rows = [j for j in range(n) if j != i]
        gl[:, 1:, rows] = go_l.reshape(C, self.K, n - 1, m)
        gh[:, 1:, rows] = go_h.reshape(C, self.K, n - 1, m)
        alpha_c, beta_c = self.with_null(*self.heads(fc))
        u_c = (centre[:, i].unsqueeze(1) * alpha_c).sum(-1) - beta_c
        return u_c, gl.reshape(C, self.K + 1, n * m), gh.reshape(C, self.K + 1, n * m)


def interval_forward(net: nn.Sequential, lo: torch.Tensor, hi: torch.Tensor,
                     jacobian: tuple[torch.Tensor, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sound elementwise bounds of the output of a Sequential of Linear layers and ReLU / tanh
    over the box [lo, hi]: the intersection of plain interval bound propagation (IBP) and the
    mean-value form f(c) +- |J|_box r of ``mean_value_forward`` (both contain f(box), so does
    their intersection). IBP is loose by products of |W| for deep boxes; the mean-value form is
    tight to second order in the box radius, which is what small certificate cells need.
    ``jacobian``: ``interval_jacobian(net, lo, hi)`` when the caller already has it."""
    il, ih = ibp_forward(net, lo, hi)
    ml, mh = mean_value_forward(net, lo, hi, jacobian)
    return torch.maximum(il, ml), torch.minimum(ih, mh)


def mean_value_forward(net: nn.Sequential, lo: torch.Tensor, hi: torch.Tensor,
                       jacobian: tuple[torch.Tensor, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean-value bounds f(x) in f(c) + J(box) (x - c), c the box centre, r its radius, with the
    interval Jacobian of ``interval_jacobian`` (or ``jacobian``, its precomputed result):
    |f(x) - f(c)| <= sum_d max(|J_lo|, |J_hi|)_{.d} r_d for every x in the box."""
    fc, jl, jh = jacobian if jacobian is not None else interval_jacobian(net, lo, hi)
    rad = (torch.maximum(jl.abs(), jh.abs()) * ((hi - lo) / 2).unsqueeze(1)).sum(-1)
    return fc - rad, fc + rad


def interval_jacobian(net: nn.Sequential, lo: torch.Tensor, hi: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """f(c) at the box centre and an interval [J_lo, J_hi] [C, out, d_in] containing the Jacobian
    of f at every point of the box: the chain rule with every activation slope replaced by its
    range over the pre-activation interval (from IBP): tanh' = 1 - tanh^2 lies in
    [1 - tanh(max|z|)^2, 1 - tanh(min|z|)^2]; ReLU's (Clarke) slope in [1[z_lo > 0], 1[z_hi > 0]]."""
    d = lo.shape[-1]
    jl = torch.eye(d, dtype=lo.dtype).expand(lo.shape[0], d, d)  # [C, width, d_in], interval Jacobian
    jh = jl
    zl, zh, fc = lo, hi, (lo + hi) / 2
    for layer in net:
        if isinstance(layer, nn.Linear):
            w = layer.weight
            jc, jr = (jl + jh) / 2, (jh - jl) / 2
            jc, jr = w @ jc, w.abs() @ jr
            jl, jh = jc - jr, jc + jr
            zc, zr = (zl + zh) / 2, (zh - zl) / 2
            zc, zr = zc @ w.T + layer.bias, zr @ w.abs().T
            zl, zh = zc - zr, zc + zr
            fc = layer(fc)
        elif isinstance(layer, nn.Tanh):
            near, far = closest_to_zero(zl, zh).abs(), torch.maximum(zl.abs(), zh.abs())
            sl, sh = 1 - torch.tanh(far) ** 2, 1 - torch.tanh(near) ** 2
            jl, jh = slope_times(sl, sh, jl, jh)
            zl, zh, fc = torch.tanh(zl), torch.tanh(zh), torch.tanh(fc)
        elif isinstance(layer, nn.ReLU):
            sl, sh = (zl > 0).to(zl.dtype), (zh > 0).to(zh.dtype)
            jl, jh = slope_times(sl, sh, jl, jh)
            zl, zh, fc = layer(zl), layer(zh), layer(fc)
        else:
            raise ValueError(f"interval bounds: unsupported layer {type(layer).__name__}")
    return fc, jl, jh


def closest_to_zero(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """The point of each interval [lo, hi] nearest 0 (where sigmoid' and tanh' peak)."""
    return torch.where((lo <= 0) & (hi >= 0), torch.zeros_like(lo), torch.where(lo > 0, lo, hi))


def interval_product(al: torch.Tensor, ah: torch.Tensor, bl: torch.Tensor,
                     bh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Elementwise bounds of a * b for a in [al, ah], b in [bl, bh] (extremes at the corners)."""
    corners = torch.stack(torch.broadcast_tensors(al * bl, al * bh, ah * bl, ah * bh))
    return corners.amin(0), corners.amax(0)


def slope_times(sl: torch.Tensor, sh: torch.Tensor, jl: torch.Tensor,
                jh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Interval product diag([sl, sh]) [jl, jh] for slopes 0 <= sl <= sh ([C, w] and [C, w, d])."""
    sl, sh = sl.unsqueeze(-1), sh.unsqueeze(-1)
    return torch.minimum(sl * jl, sh * jl), torch.maximum(sl * jh, sh * jh)


def ibp_forward(net: nn.Sequential, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Interval bound propagation of the box [lo, hi] through a Sequential of Linear layers and
    monotone activations; returns elementwise bounds of the output."""
    for layer in net:
        if isinstance(layer, nn.Linear):
            c, r = (lo + hi) / 2, (hi - lo) / 2
            c = c @ layer.weight.T + layer.bias
            r = r @ layer.weight.abs().T
            lo, hi = c - r, c + r
        elif isinstance(layer, nn.ReLU | nn.Tanh | nn.Sigmoid):
            lo, hi = layer(lo), layer(hi)
        else:
            raise ValueError(f"interval bounds: unsupported layer {type(layer).__name__}")
    return lo, hi


def softmax_bounds(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of softmax(z) over z in [lo, hi] (last axis): each output is increasing in its own
    logit and decreasing in the others, so the extremes sit at opposite corners."""
    # upper: own logit high, others low; lower: own low, others high (computed stably)
    el, eh = torch.exp(lo - hi.amax(-1, keepdim=True)), torch.exp(hi - hi.amax(-1, keepdim=True))
    sum_l, sum_h = el.sum(-1, keepdim=True), eh.sum(-1, keepdim=True)
    upper = eh / (eh + sum_l - el)
    lower = el / (el + sum_h - eh)
    return lower.clamp(0, 1), upper.clamp(0, 1)


# ---- the mechanism ---------------------------------------------------------------------------


def grid_edges(low: torch.Tensor, high: torch.Tensor, per_dim: int, breaks: tuple[float, ...] = ()
               ) -> torch.Tensor:
    """Inner break points [n, m, per_dim - 1] of a grid with ``per_dim`` cells per value dimension
    on the box [low, high] (the menu grid and the price grid of continuous settings): uniform, or
    at ``breaks`` (per_dim - 1 strictly increasing fractions of each value range in (0, 1))."""
    check_breaks(breaks, per_dim)
    t = (torch.tensor(breaks, dtype=torch.float64) if breaks
         else torch.linspace(0, 1, per_dim + 1, dtype=torch.float64)[1:-1])
    return low[..., None] + t * (high - low)[..., None]


def check_breaks(breaks: tuple[float, ...], per_dim: int) -> None:
    """Refuse grid break points that do not define ``per_dim`` cells of positive width."""
    if not breaks:
        return
    if len(breaks) != per_dim - 1:
        raise ValueError(f"grid_breaks must hold menu_grid - 1 = {per_dim - 1} inner break points, "
                         f"got {len(breaks)}")
    t = [0.0, *breaks, 1.0]
    if any(not b > a for a, b in zip(t, t[1:])):
        raise ValueError(f"grid_breaks must increase strictly inside (0, 1) (fractions of each value "
                         f"range), got {list(breaks)}")


def grid_index(x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Per-dimension cell index [B, n, m] in 0..g-1 of values x [B, n, m] on a grid with inner
    break points ``edges`` [n, m, g-1]; cells are half-open [e_k, e_{k+1})."""
    return (x.unsqueeze(-1) >= edges.to(x.dtype)).sum(-1)


def grid_number(digits: torch.Tensor, g: int) -> torch.Tensor:
    """Flat cell numbers [B] of per-dimension cell indices ``digits`` [B, D] on a grid with ``g``
    cells per dimension (the first dimension most significant; ``grid_digits`` inverts it)."""
    return (digits * g ** torch.arange(digits.shape[-1] - 1, -1, -1)).sum(-1)


def grid_digits(flat: torch.Tensor, G: int, D: int) -> torch.Tensor:
    """Base-G digits [C, D] of flat cell numbers (the first digit most significant)."""
    w = G ** torch.arange(D - 1, -1, -1)
    return (flat.unsqueeze(-1) // w) % G


def cell_ends(bounds: torch.Tensor, digits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper ends (shaped like ``digits``) of the grid cells with indices ``digits`` on
    the cell ends ``bounds`` [..., G+1] (broadcast against ``digits`` [...])."""
    b = bounds.expand(*digits.shape, bounds.shape[-1])
    return b.gather(-1, digits.unsqueeze(-1)).squeeze(-1), b.gather(-1, (digits + 1).unsqueeze(-1)).squeeze(-1)


def menu_cell_profiles(net: MenuNetwork, bidder: int, own: torch.Tensor) -> torch.Tensor:
    """One profile [C, n, m] per cell of bidder ``bidder``'s menu grid, in the grid's numbering
    (``PriceGrid.cell``): the others' bids at their cell centres (what the network reads anywhere
    in the cell), the bidder's own at ``own`` [m] (its menu does not depend on it)."""
    n, m, G = net.n, net.m, net.menu_grid
    rows = [j for j in range(n) if j != bidder]
    digits = grid_digits(torch.arange(G ** ((n - 1) * m)), G, (n - 1) * m).reshape(-1, n - 1, m)
    lo, hi = cell_ends(net.grid_bounds[rows], digits)
    prof = torch.zeros(digits.shape[0], n, m, dtype=torch.float64)
    prof[:, rows] = (lo + hi) / 2
    prof[:, bidder] = own.to(torch.float64)
    return prof


class PriceGrid:
    """A rectilinear grid on each bidder's value box: ``edges[d]`` are the inner break points of
    value dimension d (the same for every bidder and item in our named settings, stored per
    (bidder, item)). Bidder i's price change delta_i is constant on the cells of the grid of
    V_{-i}; ``cell(bids, i)`` gives the flat cell index of b_{-i}."""

    def __init__(self, edges: torch.Tensor) -> None:
        self.edges = edges  # [n, m, g-1] inner break points
        n, m, g1 = edges.shape
        self.n, self.m, self.g = n, m, g1 + 1
        self.cells = self.g ** ((n - 1) * m)

    @staticmethod
    def build(setting: AuctionSetting, per_dim: int) -> PriceGrid:
        if isinstance(setting.values, DiscreteValues):
            s = torch.tensor(setting.values.support, dtype=torch.float64)
            inner = (s[1:] + s[:-1]) / 2
            return PriceGrid(inner.expand(setting.bidders, setting.items, -1).clone())
        return PriceGrid(grid_edges(setting.low(), setting.high(), per_dim))

    def index(self, x: torch.Tensor) -> torch.Tensor:
        """Per-dimension cell index [B, n, m] of values x [B, n, m] (``grid_index``)."""
        return grid_index(x, self.edges)

    def cell(self, x: torch.Tensor, i: int) -> torch.Tensor:
        idx = self.index(x)
        rows = [j for j in range(self.n) if j != i]
        return grid_number(idx[:, rows, :].reshape(x.shape[0], -1), self.g)


class GemNetMechanism:
    """The trained menu mechanism: ``__call__(bids) -> Outcome``, ``menus(bids)``.

    ``strategyproof`` is True by construction (self-bid independent menus, utility-maximising
    choice, null element). ``certified`` is True when the price transform's certificate proves
    that no item is over-allocated anywhere in the value space, False when it failed, None when
    no transform was run.
    """

    strategyproof = True

    def __init__(self, setting: AuctionSetting, net: MenuNetwork, config: dict[str, Any],
                 grid: PriceGrid | None = None, delta: torch.Tensor | None = None) -> None:
        self.setting = setting
        self.net = net.double().eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.config = config
        self.grid = grid
        self.delta = delta  # [n, cells, K+1] price changes, or None
        self.certified: bool | None = None
        self.certificate: dict[str, Any] | None = None
        self.report: dict[str, Any] = {}
        self.name = config.get("kind", "gemnet")

    def snap(self, bids: torch.Tensor) -> torch.Tensor:
        s = self.setting
        if isinstance(s.values, DiscreteValues):
            support = torch.tensor(s.values.support, dtype=bids.dtype)
            return support[(bids.unsqueeze(-1) - support).abs().argmin(-1)]
        return bids

    def price_change(self, bids: torch.Tensor) -> torch.Tensor | None:
        if self.delta is None or self.grid is None:
            return None
        return torch.stack([self.delta[i][self.grid.cell(bids, i)] for i in range(self.setting.bidders)], 1)

    def menus(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """alpha [B, n, K+1, m] and prices [B, n, K+1] (transformed prices if transformed)."""
        b = self.snap(check_bids(bids, self.setting.bidders, self.setting.items).to(torch.float64))
        with torch.no_grad():
            alpha, beta = self.net(b)
            d = self.price_change(b)
        return alpha, beta if d is None else beta + d

    def choose(self, bids: torch.Tensor, alpha: torch.Tensor, price: torch.Tensor) -> torch.Tensor:
        """Index [B, n] of the utility-maximising element (ties -> lowest index)."""
        u = (bids.unsqueeze(2) * alpha).sum(-1) - price
        return u.argmax(-1)

    def __call__(self, bids: torch.Tensor) -> Outcome:
        b = self.snap(check_bids(bids, self.setting.bidders, self.setting.items).to(torch.float64))
        alpha, price = self.menus(b)
        k = self.choose(b, alpha, price)
        x = alpha.gather(2, k[:, :, None, None].expand(-1, -1, 1, alpha.shape[-1])).squeeze(2)
        p = price.gather(2, k[:, :, None]).squeeze(2)
        return Outcome(x.to(bids.dtype), p.to(bids.dtype))

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def save(self, directory: str | Path) -> Path:
        """weights.safetensors (network + price changes) + config.json + certificate.json."""
        tensors = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        if self.delta is not None and self.grid is not None:
            tensors["price.delta"] = self.delta
            tensors["price.edges"] = self.grid.edges
        config = dict(self.config)
        config.setdefault("kind", "gemnet")
        config["report"] = self.report
        config["certified"] = self.certified
        cert = self.certificate if self.certificate is not None else {
            "certified": None, "reason": "no price transform was run"}
        return save_checkpoint(directory, tensors, config, {CERTIFICATE: cert})
