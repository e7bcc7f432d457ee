"""Affine maximizer auctions (AMA): the shared core of Lottery AMA and AMenuNet-style AMA.

An AMA is given by a menu of K (possibly randomised) allocations a^1..a^K, bidder weights
w_i > 0 and boosts lambda(a^k). With bids b and v_i(a) = <b_i, a_i> (additive; for unit-demand
lotteries with at most one item per bidder in expectation this is the usual linear extension):

    a*  = argmax_k  sum_i w_i v_i(a^k) + lambda(a^k)                    (ties: lowest k)
    p_i = (1/w_i) [ max_k ( sum_{j!=i} w_j v_j(a^k) + lambda(a^k) )
                    - ( sum_{j!=i} w_j v_j(a*) + lambda(a*) ) ].

It is exactly strategy-proof (a weighted VCG over a restricted, boosted range) and ex post IR
(p_i <= v_i(a*) because a* maximises the full affine welfare), with p_i >= 0. Equivalently it is a
menu mechanism: given the other bids, bidder i faces the menu {(a^k_i, price_i^k)} with
price_i^k = (1/w_i)[max_k' S^{-i}_{k'} - S^{-i}_k], S^{-i}_k = sum_{j!=i} w_j v_j(a^k) + lambda(a^k),
and the AMA picks bidder i's utility-maximising element; ``menus`` exposes this so that the
shared evaluator computes regret exactly by best response over the menu.

Training (Curry, Sandholm & Dickerson 2023 "Differentiable economics for randomized affine
maximizer auctions"; Duan et al. 2023 AMenuNet) relaxes the argmax into a softmax with a large
temperature over the affine-welfare scores, pi = softmax(T * S / scale) (T = 500, as AMenuNet, with
the scores measured in units of the value range ``scale``), and ascends the expected revenue of
the relaxed mechanism; the hard argmax is used at test time. We anneal T geometrically from 100
to 500 over training (a softer start lets more menu elements receive gradient; in our 2x2 runs,
before the reserve initialisation of the variants, it gave +0.002 for Lottery AMA and +0.07 for
AMenuNet over a fixed T = 500) and decay Adam's step size by a cosine.
The relaxed mechanism is not SP, so the checkpoint that is kept is the one with the best *hard*
revenue on a held-out sample.

This module holds the mechanism (``AffineMaximizer``), the allocation heads shared with RegretNet
(``feasible_lottery``), the hand-set VVCA-style baseline (``vvca``), and the training loop that
both trainable variants (``lottery_ama``, ``amenunet``) call with their own parametrisation.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from infozoo.core.checkpoint import load_checkpoint, save_checkpoint
from infozoo.core.progress import progress
from infozoo.core.seeding import seed_everything, torch_generator
from infozoo.core.torch_utils import hard_argmax, set_threads, soft_argmax
from infozoo.envs.auction.mechanism import Outcome, check_bids
from infozoo.envs.auction.settings import AuctionSetting, from_dict

# ---- allocation heads -------------------------------------------------------------------------


def feasible_lottery(bidder_logits: torch.Tensor, item_logits: torch.Tensor | None = None) -> torch.Tensor:
    """A feasible randomised allocation x [..., n, m] from logits.

    ``bidder_logits`` [..., n+1, m]: per item, a softmax over the n bidders and a dummy bidder
    (the item stays unsold), so sum_i x_ij <= 1 (RegretNet's additive allocation head).
    ``item_logits`` [..., n, m+1] (unit-demand): per bidder, a softmax over the m items and a
    dummy item; the allocation is the elementwise minimum of the two softmaxes, so also
    sum_j x_ij <= 1 (RegretNet's doubly-stochastic-style unit-demand head).
    """
    x = torch.softmax(bidder_logits, dim=-2)[..., :-1, :]
    if item_logits is not None:
        x = torch.minimum(x, torch.softmax(item_logits, dim=-1)[..., :, :-1])
    return x


def deterministic_allocations(n: int, m: int, unit_demand: bool = False, limit: int = 4096) -> torch.Tensor:
    """Every deterministic feasible allocation [A, n, m] (each item to one bidder or nobody)."""
    count = (n + 1) ** m
    if count > limit:
        raise ValueError(f"{n}x{m} has {count} deterministic allocations; the limit is {limit}")
    rows = []
    for owners in itertools.product(range(n + 1), repeat=m):  # n means 'unsold'
        a = torch.zeros(n, m, dtype=torch.float64)
        for j, i in enumerate(owners):
            if i < n:
                a[i, j] = 1.0
        if unit_demand and (a.sum(1) > 1).any():
            continue
        rows.append(a)
    return torch.stack(rows)


def cycled_allocations(setting: AuctionSetting, K: int) -> torch.Tensor | None:
    """K starting menu elements [K, n, m] that cycle through every deterministic feasible
    allocation, or None when there are more than 4K of them (then no element can be favoured).
    The common start of both trainable AMAs: with a boost per unsold item it is VCG with reserves."""
    n, m = setting.shape
    if (n + 1) ** m > 4 * K:
        return None
    det = deterministic_allocations(n, m, setting.unit_demand)
    return det[torch.arange(K) % det.shape[0]].float()


# ---- the mechanism ----------------------------------------------------------------------------


def affine_scores(bids: torch.Tensor, menu: torch.Tensor, weights: torch.Tensor,
                  boosts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """v [B, K, n] = v_i(a^k) and the affine welfare S [B, K] = sum_i w_i v_i(a^k) + lambda_k."""
    v = torch.einsum("bnm,knm->bkn", bids, menu)
    return v, (v * weights).sum(-1) + boosts


def min_weight_one(weights: torch.Tensor, boosts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The same AMA with its weights and boosts divided by min_i w_i (so min_i w_i = 1): the argmax
    and the payments are unchanged, and the softmax relaxation's overcharge (max S - E_pi S) / w_i
    is at most scale log K / T per bidder whatever the weights (``amenunet.py``, "Weight
    normalisation")."""
    low = weights.min()
    return weights / low, boosts / low


def ama_outcome(bids: torch.Tensor, menu: torch.Tensor, weights: torch.Tensor, boosts: torch.Tensor,
                temperature: float | None = None) -> Outcome:
    """The AMA outcome for bids [B, n, m]; menu [K, n, m], weights [n], boosts [K].

    ``temperature=None``: hard argmax (the mechanism). Otherwise the softmax relaxation used in
    training, pi = softmax(temperature * S); payments use the same pi for the chosen element and
    the exact max for the bidder-independent term.
    """
    v, S = affine_scores(bids, menu, weights, boosts)
    pick = hard_argmax(S) if temperature is None else soft_argmax(S, temperature)  # [B, K]
    others = S.unsqueeze(-1) - v * weights  # S^{-i}_k, [B, K, n]
    chosen = (pick.unsqueeze(-1) * others).sum(1)  # [B, n]
    payment = (others.amax(dim=1) - chosen) / weights
    allocation = torch.einsum("bk,knm->bnm", pick, menu)
    return Outcome(allocation, payment)


@dataclass
class AffineMaximizer:
    """An AMA with a fixed menu [K, n, m], weights [n] and boosts [K]; exactly SP and IR.

    ``kind`` is the registry name the checkpoint is saved under (``lottery-ama``, ``amenunet``,
    ``vvca``); ``extra`` holds further tensors to save (e.g. the AMenuNet network).
    """

    setting: AuctionSetting
    menu: torch.Tensor
    weights: torch.Tensor
    boosts: torch.Tensor
    kind: str = "ama"
    report: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    strategyproof: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        K = self.menu.shape[0]
        n, m = self.setting.shape
        if tuple(self.menu.shape) != (K, n, m) or tuple(self.weights.shape) != (n,) or \
                tuple(self.boosts.shape) != (K,):
            raise ValueError(f"AMA needs menu [K, {n}, {m}], weights [{n}], boosts [K]; got "
                             f"{tuple(self.menu.shape)}, {tuple(self.weights.shape)}, {tuple(self.boosts.shape)}")
        if not (self.weights > 0).all():
            raise ValueError("AMA bidder weights must be positive")
        self.menu, self.weights, self.boosts = (t.detach().cpu().to(torch.float64) for t in
                                                (self.menu, self.weights, self.boosts))
        # menus trained in float32 can over-allocate by ~1e-7: rescale so every element is exactly
        # feasible in float64 (any fixed menu keeps the AMA strategy-proof)
        self.menu = self.menu.clamp(min=0) / self.menu.sum(1, keepdim=True).clamp(min=1)
        if self.setting.unit_demand:
            self.menu = self.menu / self.menu.sum(2, keepdim=True).clamp(min=1)

    @property
    def name(self) -> str:
        return self.kind

    def _params(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.menu.to(dtype), self.weights.to(dtype), self.boosts.to(dtype)

    def __call__(self, bids: torch.Tensor) -> Outcome:
        b = check_bids(bids, *self.setting.shape)
        return ama_outcome(b, *self._params(b.dtype))

    def menus(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bidder i's menu given the others' bids: alloc [B, n, K, m], price [B, n, K]."""
        b = check_bids(bids, *self.setting.shape)
        menu, w, lam = self._params(b.dtype)
        v, S = affine_scores(b, menu, w, lam)
        others = S.unsqueeze(-1) - v * w  # [B, K, n]
        price = ((others.amax(dim=1, keepdim=True) - others) / w).transpose(1, 2)
        alloc = menu.permute(1, 0, 2).unsqueeze(0).expand(b.shape[0], -1, -1, -1)
        return alloc, price

    def save(self, directory: str | Path) -> Path:
        tensors = {"menu": self.menu, "weights": self.weights, "boosts": self.boosts, **self.extra}
        config = {"kind": self.kind, "setting": self.setting.to_dict(), "config": self.config,
                  "report": self.report}
        return save_checkpoint(directory, tensors, config)


def load_ama(directory: str | Path, kind: str) -> AffineMaximizer:
    """Load an AMA checkpoint of ``kind`` (written by ``AffineMaximizer.save``)."""
    tensors, config = load_checkpoint(directory, kind=kind)
    setting = from_dict(config["setting"])
    extra = {k: v for k, v in tensors.items() if k not in ("menu", "weights", "boosts")}
    return AffineMaximizer(setting, tensors["menu"], tensors["weights"], tensors["boosts"], kind=kind,
                           report=config.get("report", {}), config=config.get("config", {}), extra=extra)


# ---- hand-set VVCA-style baseline -----------------------------------------------------------------


def vvca(setting: AuctionSetting, weights: list[float] | None = None,
         bundle_boosts: dict[int, float] | None = None, unsold_boost: float = 0.5) -> AffineMaximizer:
    """A hand-set VVCA-style affine maximizer (Likhodedov & Sandholm's virtual-valuations
    combinatorial auction): the AMA over every deterministic allocation with boosts that depend
    only on bundle sizes, symmetric across bidders and items.

    Default: weights 1 and lambda(a) = ``unsold_boost`` * scale * (number of unsold items). With
    0.5 on U[0,1] additive this is exactly second price with reserve 1/2 per item (item-wise
    Myerson), a check of the AMA core against a closed form. ``bundle_boosts`` {bundle size:
    boost, in value-range units} adds sum_i lambda(|bundle_i(a)|) on top (the VVCA family; the
    best symmetric-boost AMA on 2x2 reaches 0.862, REFERENCE.md).
    """
    n, m = setting.shape
    menu = deterministic_allocations(n, m, setting.unit_demand)
    scale = float(setting.high().max())
    w = torch.tensor(weights if weights is not None else [1.0] * n, dtype=torch.float64)
    lam = unsold_boost * scale * (m - menu.sum(dim=(1, 2)))
    if bundle_boosts:
        sizes = menu.sum(-1).long()  # [A, n]
        table = torch.tensor([bundle_boosts.get(k, 0.0) for k in range(m + 1)], dtype=torch.float64)
        lam = lam + scale * table[sizes].sum(-1)
    return AffineMaximizer(setting, menu, w, lam, kind="vvca")


# ---- training ------------------------------------------------------------------------------------


@dataclass
class AMATrainConfig:
    """Fields shared by both trainable AMA variants (each variant's ``Config`` extends these)."""

    seed: int = 0  # seeds parameters, training draws and the validation sample
    steps: int = 2000  # Adam steps
    batch: int = 4096  # valuation profiles per step
    lr: float = 0.03  # Adam learning rate (cosine-decayed to lr * lr_final)
    lr_final: float = 0.05  # final learning rate as a fraction of lr
    warmup: int = 0  # steps of linear learning-rate warm-up before the cosine decay
    temperature: float = 500.0  # softmax temperature over affine welfare in value-range units
    temperature_start: float = 100.0  # initial temperature, raised geometrically to ``temperature``
    val_size: int = 16384  # held-out profiles for picking the best hard-argmax checkpoint
    eval_every: int = 100  # steps between validations
    threads: int = 1  # torch CPU threads (0: torch default)
    device: str = "cpu"  # torch device for training ("cuda" on a GPU machine; CPU runs are deterministic)


def default_device() -> str:
    """The device the full profile trains on: a GPU when torch sees one, else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def step_size_factor(step: int, config: AMATrainConfig) -> float:
    """Adam's step size at ``step`` as a fraction of ``config.lr``: a linear warm-up over
    ``config.warmup`` steps (AMenuNet's recipe), then a cosine decay to ``config.lr_final``."""
    warm = min(1.0, (step + 1) / config.warmup) if config.warmup > 0 else 1.0
    cosine = 0.5 * (1 + math.cos(math.pi * min(step, config.steps) / max(config.steps, 1)))
    return warm * (config.lr_final + (1 - config.lr_final) * cosine)


AMAParams = Callable[[], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # -> menu, weights, boosts


def train_ama(setting: AuctionSetting, module: torch.nn.Module, params: AMAParams, config: AMATrainConfig,
              kind: str, desc: str = "", keep_module: bool = False) -> AffineMaximizer:
    """Ascend the relaxed AMA revenue; return the hard-argmax AMA that did best on validation.

    ``params()`` maps ``module``'s parameters to (menu [K, n, m], weights [n], boosts [K]) in
    value-range units (boosts are multiplied by the value range ``scale`` here). With
    ``keep_module`` the module's state at the best validation is saved in the checkpoint too
    (tensors ``net.*``). A non-finite relaxed revenue ends training early (AMenuNet at 16,000
    quick steps on unit-2x2 reached NaN); the best validated checkpoint before it is returned and
    the report names the step (``stopped_non_finite_at_step``).
    """
    set_threads(config.threads)
    seed_everything(config.seed)
    g_train, g_val = torch_generator(config.seed), torch_generator(config.seed + 7919)
    scale = float(setting.high().max())
    device = torch.device(config.device)
    module.to(device)
    val = setting.sample(config.val_size, g_val, dtype=torch.float32).to(device)
    opt = torch.optim.Adam(module.parameters(), lr=config.lr)
    if config.warmup > 0:
        sched: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda t: step_size_factor(t, config))
    else:  # torch's recursive cosine: keeps runs without warm-up bit-identical to earlier versions
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(config.steps, 1),
                                                           eta_min=config.lr * config.lr_final)
    best: tuple[float, Any] = (-math.inf, None)
    stopped: int | None = None
    t0 = time.perf_counter()
    history = []

    def snapshot() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            menu, w, lam = params()
            return menu.detach().clone(), w.detach().clone(), (lam * scale).detach().clone()

    def validate(step: int) -> None:
        nonlocal best
        menu, w, lam = snapshot()
        with torch.no_grad():
            rev = float(ama_outcome(val, menu, w, lam).payment.sum(-1).mean())
        history.append((step, rev))
        if rev > best[0]:
            state = ({f"net.{k}": v.detach().cpu().clone() for k, v in module.state_dict().items()}
                     if keep_module else {})
            best = (rev, (menu.cpu(), w.cpu(), lam.cpu(), state))

    for step in progress(range(config.steps), desc=desc or f"{kind} {setting.name}"):
        if step % config.eval_every == 0:
            validate(step)
        bids = setting.sample(config.batch, g_train, dtype=torch.float32).to(device)
        frac = step / max(config.steps - 1, 1)
        temp = config.temperature_start ** (1 - frac) * config.temperature ** frac
        menu, w, lam = params()
        out = ama_outcome(bids, menu, w, lam * scale, temperature=temp / scale)
        loss = -out.payment.sum(-1).mean()
        if not torch.isfinite(loss):  # Adam would carry the NaN into every parameter: keep the best so far
            stopped = step
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    if stopped is None:
        validate(config.steps)
    if best[1] is None:
        raise FloatingPointError(f"{kind} training on {setting.name or 'this setting'}: no finite validation "
                                 "revenue (the relaxed revenue was non-finite from the start)")
    menu, w, lam, state = best[1]
    report = {"train_time": time.perf_counter() - t0, "val_revenue": best[0],
              "val_revenue_history": history[-5:], "menu_size": int(menu.shape[0])}
    if stopped is not None:
        report["stopped_non_finite_at_step"] = stopped
    return AffineMaximizer(setting, menu, w, lam, kind=kind, report=report, config=asdict(config), extra=state)
