"""Classic auction mechanisms: VCG, item-wise Myerson, grand bundle, first price.

All take bids b [B, n, m] and return an ``Outcome``; ties go to the lowest bidder index.

- **VCG.** Additive: each item goes to its highest bidder at the second-highest bid. Unit-demand:
  the welfare-maximising assignment (each bidder at most one item) with Clarke pivot payments
  p_i = max_a sum_{k != i} v_k(a) - sum_{k != i} v_k(a*). Revenue for n additive U[0,1] bidders:
  (n-1)/(n+1) per item.
- **Item-wise Myerson.** Each item sold separately by Myerson's optimal auction for the item's
  value distributions: the item goes to the highest virtual value phi_i(b_i) if it is >= 0, at the
  winner's threshold price. Uniform U[a, b]: phi(v) = 2v - b, so for i.i.d. U[0,1] this is second
  price with reserve 1/2 (revenue 2n/(n+1)(1 - 2^-(n+1)) - (1 - 2^-n) per item). Discrete values:
  phi_k = v_k - (v_{k+1} - v_k)(1 - F_k)/f_k, ironed (pool-adjacent-violators) where not monotone;
  off-support bids are snapped to the nearest support point (still DSIC: every bid acts as some
  support report). Unit-demand bidders are not covered by selling items separately (a bidder
  could win two): the item-wise rule is applied to additive settings only.
- **Grand bundle.** All items sold as one bundle by a second-price auction with a reserve r on
  the bundle value (sum_j b_ij; unit-demand: max_j b_ij, and the winner receives its favourite
  item, which is worth the same to it). r maximises expected revenue, found numerically on the
  setting's distribution (exact for discrete settings, 2^17 Monte-Carlo draws otherwise).
- **First price** (not strategy-proof): highest bid wins each item (unit-demand: the
  bid-maximising assignment) and pays its bid.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import torch

from infozoo.core.seeding import torch_generator
from infozoo.envs.auction.mechanism import Outcome, check_bids
from infozoo.envs.auction.settings import AuctionSetting, DiscreteValues, UniformValues

ASSIGNMENT_LIMIT = 20_000  # unit-demand assignments enumerated up to this many


# ---- helpers ------------------------------------------------------------------------------------


def _top2(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per item: highest bid, its (lowest-index) bidder and the second-highest bid; b [B, n, m]."""
    first, winner = b.max(dim=1)  # torch.max returns the first maximal index
    if b.shape[1] == 1:
        return first, winner, torch.zeros_like(first)
    masked = b.scatter(1, winner.unsqueeze(1), -math.inf)
    return first, winner, masked.max(dim=1).values


def _one_hot_winner(winner: torch.Tensor, wins: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    """Allocation [B, n, m] giving item j to ``winner[:, j]`` where ``wins[:, j]``."""
    alloc = torch.nn.functional.one_hot(winner, n).to(dtype).transpose(1, 2)  # [B, n, m]
    return alloc * wins.unsqueeze(1).to(dtype)


@functools.lru_cache(maxsize=32)
def unit_demand_assignments(n: int, m: int) -> torch.Tensor:
    """Every feasible unit-demand assignment as 0/1 tensors [A, n, m] (bidder -> item or none)."""
    count = sum(math.perm(m, k) * math.comb(n, k) for k in range(min(n, m) + 1))
    if count > ASSIGNMENT_LIMIT:
        raise ValueError(f"{n}x{m} unit-demand has {count} assignments; enumeration is limited to "
                         f"{ASSIGNMENT_LIMIT}")
    rows = []
    for choice in itertools.product(range(m + 1), repeat=n):  # m means 'nothing'
        taken = [c for c in choice if c < m]
        if len(taken) == len(set(taken)):
            a = torch.zeros(n, m)
            for i, c in enumerate(choice):
                if c < m:
                    a[i, c] = 1.0
            rows.append(a)
    return torch.stack(rows)


def _best_assignment(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Welfare-maximising unit-demand assignment of bids b [B, n, m].

    Returns the per-bidder contributions C [B, A, n] of every assignment and the chosen index [B]
    (ties: first in enumeration order, which starts from the empty assignment)."""
    A = unit_demand_assignments(b.shape[1], b.shape[2]).to(b.dtype)
    contrib = torch.einsum("bnm,anm->ban", b, A)
    return contrib, contrib.sum(-1).argmax(dim=1)


def _snap(b: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Index of the nearest support point of each bid (ties to the lower point)."""
    return (b.unsqueeze(-1) - support).abs().argmin(dim=-1)


# ---- VCG -----------------------------------------------------------------------------------------


@dataclass
class VCG:
    """Vickrey–Clarke–Groves: welfare-maximising allocation, Clarke pivot payments."""

    setting: AuctionSetting
    strategyproof: bool = field(default=True, init=False)
    name: str = field(default="vcg", init=False)

    def __call__(self, bids: torch.Tensor) -> Outcome:
        s = self.setting
        b = check_bids(bids, s.bidders, s.items)
        if s.unit_demand:
            contrib, best = _best_assignment(b)
            A = unit_demand_assignments(s.bidders, s.items).to(b.dtype)
            alloc = A[best]
            others = contrib.sum(-1, keepdim=True) - contrib  # [B, A, n] welfare without i
            chosen = others.gather(1, best.view(-1, 1, 1).expand(-1, 1, s.bidders)).squeeze(1)
            return Outcome(alloc, others.amax(dim=1) - chosen)
        _, winner, second = _top2(b)
        alloc = _one_hot_winner(winner, torch.ones_like(second, dtype=torch.bool), s.bidders, b.dtype)
        return Outcome(alloc, (alloc * second.unsqueeze(1)).sum(-1))


def vcg(setting: AuctionSetting) -> VCG:
    return VCG(setting)


# ---- first price ---------------------------------------------------------------------------------


@dataclass
class FirstPrice:
    """First-price auction: the bid-maximising allocation, winners pay their bids (not SP)."""

    setting: AuctionSetting
    strategyproof: bool = field(default=False, init=False)
    name: str = field(default="first-price", init=False)

    def __call__(self, bids: torch.Tensor) -> Outcome:
        s = self.setting
        b = check_bids(bids, s.bidders, s.items)
        if s.unit_demand:
            _, best = _best_assignment(b.detach())
            alloc = unit_demand_assignments(s.bidders, s.items).to(b.dtype)[best]
        else:
            winner = b.detach().argmax(dim=1)
            alloc = _one_hot_winner(winner, torch.ones_like(winner, dtype=torch.bool),
                                    s.bidders, b.dtype)
        return Outcome(alloc, (alloc * b).sum(-1))


def first_price(setting: AuctionSetting) -> FirstPrice:
    return FirstPrice(setting)


# ---- item-wise Myerson ---------------------------------------------------------------------------


def discrete_virtual_values(support: list[float], probs: list[float]) -> list[float]:
    """Ironed virtual values of a discrete distribution (pool-adjacent-violators on phi)."""
    K = len(support)
    F = list(itertools.accumulate(probs))
    phi = [support[k] - (support[k + 1] - support[k]) * (1 - F[k]) / probs[k] if k < K - 1
           else support[k] for k in range(K)]
    blocks: list[list[float]] = []  # [value, weight, count]
    for k in range(K):
        blocks.append([phi[k], probs[k], 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            w = w1 + w2
            blocks.append([(v1 * w1 + v2 * w2) / w if w > 0 else max(v1, v2), w, c1 + c2])
    return [v for v, _, c in blocks for _ in range(int(c))]


@dataclass
class ItemwiseMyerson:
    """Each item sold separately by Myerson's optimal auction (virtual values, threshold prices)."""

    setting: AuctionSetting
    strategyproof: bool = field(default=True, init=False)
    name: str = field(default="myerson", init=False)

    def __post_init__(self) -> None:
        if self.setting.unit_demand:
            raise ValueError("item-wise Myerson sells items separately and is defined for additive "
                             "settings; for unit-demand use 'vcg' or 'bundle'")

    def __call__(self, bids: torch.Tensor) -> Outcome:
        s = self.setting
        b = check_bids(bids, s.bidders, s.items)
        if isinstance(s.values, UniformValues):
            low, high = s.low(b.dtype), s.high(b.dtype)
            phi = 2 * b - high  # [B, n, m]
            top, winner, second = _top2(phi)
            wins = top >= 0
            alloc = _one_hot_winner(winner, wins, s.bidders, b.dtype)
            hi_w = high.unsqueeze(0).expand_as(b).gather(1, winner.unsqueeze(1)).squeeze(1)
            lo_w = low.unsqueeze(0).expand_as(b).gather(1, winner.unsqueeze(1)).squeeze(1)
            threshold = torch.maximum(lo_w, (second.clamp(min=0) + hi_w) / 2)
            return Outcome(alloc, (alloc * threshold.unsqueeze(1)).sum(-1))
        assert isinstance(s.values, DiscreteValues)
        support = torch.tensor(s.values.support, dtype=b.dtype)
        phis = torch.tensor(discrete_virtual_values(list(s.values.support), list(s.values.probs)),
                            dtype=b.dtype)
        k = _snap(b.detach(), support)  # [B, n, m]
        phi = phis[k]
        top, winner, _ = _top2(phi)
        wins = top >= 0
        alloc = _one_hot_winner(winner, wins, s.bidders, b.dtype)
        # threshold: the lowest support point at which the winner still wins (lowest-index ties)
        idx = torch.arange(s.bidders).view(1, -1, 1)
        beat = torch.where(idx < winner.unsqueeze(1), phi, torch.full_like(phi, -math.inf))
        tie = torch.where(idx > winner.unsqueeze(1), phi, torch.full_like(phi, -math.inf))
        need_gt = beat.amax(dim=1)  # must beat strictly the lower-index bidders
        need_ge = torch.maximum(tie.amax(dim=1), torch.zeros_like(need_gt))  # ties with later ok
        ok = (phis.view(1, 1, -1) > need_gt.unsqueeze(-1)) & (phis.view(1, 1, -1) >= need_ge.unsqueeze(-1))
        first_ok = ok.to(torch.int8).argmax(dim=-1)  # [B, m]
        price = support[first_ok] * wins
        return Outcome(alloc, (alloc * price.unsqueeze(1)).sum(-1))


def myerson(setting: AuctionSetting) -> ItemwiseMyerson:
    return ItemwiseMyerson(setting)


def myerson_uniform_revenue(n: int) -> float:
    """Closed form: revenue per item of Myerson with n i.i.d. U[0,1] bidders (reserve 1/2)."""
    return 2 * n / (n + 1) * (1 - 2.0 ** -(n + 1)) - (1 - 2.0 ** -n)


# ---- grand bundle --------------------------------------------------------------------------------


def _bundle_values(s: AuctionSetting, b: torch.Tensor) -> torch.Tensor:
    return b.amax(-1) if s.unit_demand else b.sum(-1)


def _second_price_revenue(values: torch.Tensor, reserves: torch.Tensor,
                          weights: torch.Tensor | None = None) -> torch.Tensor:
    """Expected revenue of second price with each reserve; values [N, n], reserves [R]."""
    top2 = values.topk(min(2, values.shape[1]), dim=1).values
    first = top2[:, 0:1]
    second = top2[:, 1:2] if values.shape[1] > 1 else torch.zeros_like(first)
    rev = (first >= reserves) * torch.maximum(second, reserves)  # [N, R]
    if weights is None:
        return rev.mean(0)
    return (rev * weights.unsqueeze(1)).sum(0) / weights.sum()


@functools.lru_cache(maxsize=64)
def optimal_bundle_reserve(setting: AuctionSetting, samples: int = 2**17, seed: int = 0) -> float:
    """The reserve on the bundle value that maximises second-price bundle revenue."""
    s = setting
    if isinstance(s.values, DiscreteValues):
        types, probs = s.type_space()
        grid = torch.cartesian_prod(*[torch.arange(types.shape[0])] * s.bidders).reshape(-1, s.bidders)
        vals, w = _bundle_values(s, types[grid]), probs[grid].prod(1)
        cands = torch.unique(vals.flatten())
        return float(cands[_second_price_revenue(vals, cands, w).argmax()])
    vals = _bundle_values(s, s.sample(samples, torch_generator(seed)))
    lo, hi = float(vals.min()), float(vals.max())
    # coarse search on the first 2^14 draws, then a fine search around it on all of them
    grid = torch.linspace(lo, hi, 401, dtype=vals.dtype)
    best = float(grid[_second_price_revenue(vals[: 2**14], grid).argmax()])
    step = 4 * (hi - lo) / 400
    fine = torch.linspace(max(lo, best - step), min(hi, best + step), 161, dtype=vals.dtype)
    return float(fine[_second_price_revenue(vals, fine).argmax()])


@dataclass
class GrandBundle:
    """All items as one bundle, second price with the revenue-optimal reserve r."""

    setting: AuctionSetting
    reserve: float | None = None
    strategyproof: bool = field(default=True, init=False)
    name: str = field(default="bundle", init=False)

    def __post_init__(self) -> None:
        if self.reserve is None:
            self.reserve = optimal_bundle_reserve(self.setting)

    def __call__(self, bids: torch.Tensor) -> Outcome:
        s = self.setting
        b = check_bids(bids, s.bidders, s.items)
        value = _bundle_values(s, b)  # [B, n]
        first, winner = value.max(dim=1)
        second = (value.scatter(1, winner.unsqueeze(1), -math.inf).amax(1) if s.bidders > 1
                  else torch.zeros_like(first))
        r = torch.as_tensor(self.reserve, dtype=b.dtype)
        wins = first >= r
        who = torch.nn.functional.one_hot(winner, s.bidders).to(b.dtype) * wins.unsqueeze(1)
        if s.unit_demand:
            fav = torch.nn.functional.one_hot(b.argmax(-1), s.items).to(b.dtype)  # [B, n, m]
            alloc = who.unsqueeze(-1) * fav
        else:
            alloc = who.unsqueeze(-1).expand(-1, -1, s.items).clone()
        return Outcome(alloc, who * torch.maximum(second, r).unsqueeze(1))


def bundle(setting: AuctionSetting, reserve: float | None = None) -> GrandBundle:
    return GrandBundle(setting, reserve)
