"""AMenuNet-style affine maximizer (Duan, Sun, Chen & Deng, NeurIPS 2023, "A scalable neural
network for DSIC affine maximizer auction design").

The AMA parameters — the allocation menu A (s elements), bidder weights w and boosts lambda — are
*produced by a permutation-equivariant network* from bidder and item representations, so the
number of parameters does not depend on n, m, and one network can emit a mechanism for settings
of another size (``transfer``). The mechanism itself is the AMA of
``infozoo.baselines.auction.ama`` (exactly SP and IR with the hard argmax).

Network (following the paper's schematic; sizes are ours):
- input tensor E [(n+1), m, d]: for every (bidder, item) cell, the bidder representation x_i
  (n real bidders plus a dummy bidder that stands for "unsold") concatenated with the item
  representation y_j. Our settings are non-contextual, so the representations are fixed: a
  random code per bidder index and per item index (drawn once from a fixed generator; bidders
  with identical distributions would otherwise be indistinguishable and every menu element would
  split items evenly), the cell's value range (low/scale, high/scale) and a dummy flag.
- two 1x1 convolutions (a per-cell MLP) to width h, then ``blocks`` interaction modules: per
  bidder a self-attention over its items, per item a self-attention over the bidders, and a
  global mean, merged by a per-cell MLP with a residual connection.
- heads J_A [(n+1), m, s], J_w [(n+1), m], J_lambda [(n+1), m, s]:
      A^k_ij = softmax_i over the n+1 bidders of J_A[i, j, k]      (dummy row dropped)
      w_i    = sigmoid(mean_j J_w[i, j])
      lambda_k = mean_{i,j} J_lambda[i, j, k] + r * (m - sum_{ij} A^k_ij)
  (r: one learned scalar, a reserve per unsold item, started at 1/2 of the value range; our
  addition, size-independent like the rest, which starts training from VCG with reserves)
  (unit-demand: an extra head gives a per-bidder softmax over items plus a dummy item and the
  menu takes the elementwise minimum, so each element is feasible).
Training: the softmax relaxation of the argmax with temperature 500 (AMenuNet's value, per unit
of value range) on revenue, Adam, hard argmax at test (see ``ama.train_ama``). Two steps come
from the authors' public code: Adam's step size is 3e-4 after a linear warm-up of 100 steps
(the code warms up over 100 of its training rounds), and training starts from a chosen menu:
``fit_initial_menu`` first fits the generated elements to the cycled deterministic allocations
that Lottery AMA starts from, so both AMAs start from VCG with reserves.

Why both are needed (measured on additive-2x2-yao, values {3, 7}; LP optimum 10.75):
- On a two-point support the affine scores of the 16 profiles are separated by finite gaps,
  so softmax(T S / scale) is one-hot at every profile: a menu element that is nowhere (near)
  best gets no gradient. In Lottery AMA such an element keeps its own parameters. Here every
  element is an output of the shared network, so it drifts with every step taken for the
  others, and once the network had moved the mass onto the two grand-bundle elements
  (by step 200 at the former step size 3e-3) the empty and single-item elements never came
  back: the hard revenue stayed at 8.50 = E[min of the two bundle values], the grand-bundle
  second-price auction, whatever the menu size or the number of steps.
- The random start is itself bundle-heavy: with bidder and item codes entering the per-cell
  MLP additively (and the row attention averaging over a bidder's items), the ranking of the
  bidders for item 1 and item 2 is mostly the same, so about 2/3 of the initial elements give
  both items to the same owner (1/3 for independent owners); single-item elements are rare.
- Step size 3e-4 with warm-up alone: 10.07 (single-item elements missing from the used menu);
  with the menu fitted to the cycled allocations first: 10.42 (exact, 4,000 steps), against
  Lottery AMA's 10.29 and item-wise Myerson's 10.50.

Weight normalisation (ours). An AMA is unchanged when the weights w and all boosts are multiplied
by one positive constant (same argmax, same payments (1/w_i)[...]); its softmax relaxation is not,
and training exploits that. With S_k the affine welfare of element k and pi = softmax(T S / scale),
bidder i's relaxed utility is (E_pi S - max_k S^{-i}_k) / w_i and its hard one
(max S - max_k S^{-i}_k) / w_i, so the relaxation charges it (max S - E_pi S) / w_i more than the
hard mechanism would, and T (max S - E_pi S) / scale <= H(pi) <= log s (log-sum-exp >= max). A
weight that falls inflates this overcharge without bound while the hard mechanism gains nothing,
and training found it twice. With free weights, at the authors' step size 3e-4, all weights went
towards 0 on continuous settings (on 2x2-uniform and unit-2x2 the hard revenue fell to 0 after
500-1,500 steps). With the weights normalised to max_i w_i = 1 the smaller one fell from 0.41 at
step 1,200 to 2e-21 at step 1,463 in the full profile on unit-2x2 (20,000 steps of 8,192
profiles, seed 0), and the relaxed revenue was NaN at step 1,464 (a floor w_i >= 0.05 kept it
finite, but the validation revenue fell to 0.386). So the network emits the AMA with
max_i w_i = 1 (w_i = sigmoid(.)_i / max_l sigmoid(.)_l, boosts as emitted) and hands training the
same AMA rescaled to min_i w_i = 1 (weights and boosts divided by min_l w_l): the mechanism is the
one emitted, and the relaxation's overcharge is at most scale log s / T per bidder whatever the
weights (0.008 for s = 64, T = 500). Emitting min_i w_i = 1 directly (w_i / min_l w_l with the
boosts unscaled, another parametrisation of the same AMAs) also ran to the end but lost on Yao
(exact revenue 10.30, 10.31, 10.25 for seeds 0-2).
Measured (2-core CPU, one thread; paired revenue difference to the Lottery AMA of the same profile
and seed on the same 10^6 profiles, seed 123, ``infozoo eval --baseline``; before -> after): full
profile on unit-2x2 trains to its end (validation 0.7148 at step 20,000 against 0.7136 at the kept
step 500): 0.7129 -> 0.7140 +- 0.0004 on the 10^6 profiles, equal to the quick profile's (-0.00002
+- 0.00004); quick profile, seed 0: unit-2x2 -0.0003 +- 0.0001 -> +0.0001 +- 0.0001, 2x2 +0.0001 +-
0.0001 -> -0.0002 +- 0.0001, 2x3 +0.0018 -> +0.0018, 2x5 +0.0092 -> +0.0086 (full profile, against
the unrescaled full Lottery AMA, +0.0019 -> +0.0013; against today's, +0.0015), 3x10 +0.3097 ->
+0.3087, 5x10 +0.5707 -> +0.5739; Yao (exact; Lottery AMA 10.2885, 10.3135, 10.2929 for seeds 0-2)
10.4174, 10.2829, 10.4175 -> 10.4361, 10.4373, 10.4364; seeds 1 and 2 (each paired with the Lottery
AMA of its seed): 2x2 +0.0007 and +0.0001, unit-2x2 +0.0000 and +0.0001 (+- 0.0001; before: -0.0005
and -0.0004).

Also in the authors' code, not adopted: allocation logits scaled by 10 before the softmax (our
``sharp`` initialisation plays that part), the temperature 500 applied to raw values, boosts
from a small MLP over the pooled J_lambda, a null element (nothing allocated, boost 0) appended
to every menu, and learned embeddings per bidder and item index; the code's "train step" is a
pass over 16 minibatches of 2,048 profiles, so its 2,000-3,000 steps are 32k-48k Adam updates.
Its constant temperature (500 from the first step, ``temperature_start=500``, instead of our
geometric rise from 100) only moved the small gaps around (quick profile, seed 0, with max_i w_i =
1, paired with the quick Lottery AMA on 10^6 profiles, seed 123): unit-2x2 +0.00001 +- 0.00004
(annealed -0.0003), but 2x2 -0.00012 +- 0.00006 (annealed +0.0001), 2x3 +0.0016 (annealed
+0.0018), Yao 10.4108 (annealed 10.4174), so the annealing is kept. Neither the menu size
(unit-2x2, 128 elements: -0.0010; 48: -0.0017) nor lr 1e-3 (-0.0004) closed the unit-2x2 gap
that the weight rescaling closed.

Registered as solver ``amenunet``: ``Config``, ``default_config``, ``fit``, ``load``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from infozoo.baselines.auction.ama import (
    AffineMaximizer,
    AMATrainConfig,
    cycled_allocations,
    default_device,
    feasible_lottery,
    load_ama,
    min_weight_one,
    train_ama,
)
from infozoo.core.checkpoint import load_checkpoint
from infozoo.core.torch_utils import mlp, set_threads
from infozoo.envs.auction.settings import AuctionSetting

KIND = "amenunet"
CODE_SEED = 20230520  # fixed generator of the bidder / item codes (shared by every setting size)
MAX_INDEX = 256  # codes exist for up to this many bidders and items


@dataclass
class Config(AMATrainConfig):
    """AMenuNet hyper-parameters (the shared training fields are in ``AMATrainConfig``)."""

    menu_size: int = 32  # s menu elements produced by the network
    hidden: int = 64  # width h of the per-cell features
    blocks: int = 2  # interaction modules
    heads: int = 4  # attention heads
    code_dim: int = 8  # size of the random bidder and item codes
    lr: float = 3e-4  # Adam learning rate (network parameters; the authors' value)
    warmup: int = 100  # steps of linear learning-rate warm-up (the authors' code)
    sharp: float = 5.0  # std of the initial allocation logits (large: near-deterministic menus)
    reserve_init: float = 0.5  # initial per-unsold-item boost r (value-range units), learned
    menu_init_steps: int = 300  # Adam steps fitting the generated menu to the cycled deterministic allocations


def default_config(setting: AuctionSetting, profile: str = "quick", seed: int = 0) -> Config:
    """Menu sizes as in the paper (32 for 2x2, 256 for larger; twice that for unit-demand) except
    for 7-10 valuations: 128 rather than 64 in the quick profile (2x5, 100k test profiles, before
    the weight normalisation: 2.3506 with 128 against 2.3210 with 64 and Lottery AMA's 2.3415 with
    its 128) and 256 in the full one. With the min_i w_i = 1 rescaling (10^6 profiles, seed 123,
    paired with Lottery AMA of the same profile): 2x5 quick 2.3495, +0.0086 +- 0.0003; full (20k
    steps on one CPU thread, 35 min beside other jobs) 2.3573, +0.0013 +- 0.0002. Quick is
    CPU-sized."""
    if profile not in ("quick", "full"):
        raise ValueError(f"unknown profile {profile!r}; valid: 'quick', 'full'")
    size = setting.bidders * setting.items
    s = 32 if size <= 4 else 64 if size <= 6 else 128 if size <= 10 else 256
    if setting.unit_demand:  # random unit-demand menus are sparser: twice the elements (unit 2x2: 0.656 -> 0.713)
        s *= 2
    if profile == "quick":  # 8,000 steps: training runs to its end since the weight normalisation
        return Config(seed=seed, steps=8000, batch=2048, menu_size=s)
    if 6 < size <= 10:
        s = max(s, 256)
    return Config(seed=seed, steps=20000, batch=8192, menu_size=s, hidden=128, blocks=3,
                  val_size=65536, eval_every=500, threads=0, device=default_device())


class Interaction(torch.nn.Module):
    """One interaction module over the (bidder, item) grid: row and column attention + global mean."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.row = torch.nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.col = torch.nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.merge = mlp([3 * hidden, hidden, hidden], activation=torch.nn.ReLU)
        self.norm = torch.nn.LayerNorm(hidden)

    def forward(self, L: torch.Tensor) -> torch.Tensor:  # L [(n+1), m, h]
        row, _ = self.row(L, L, L)  # each bidder attends over its items
        Lt = L.transpose(0, 1)
        col, _ = self.col(Lt, Lt, Lt)  # each item attends over the bidders
        glob = L.mean(dim=(0, 1), keepdim=True).expand_as(L)
        return self.norm(L + self.merge(torch.cat([row, col.transpose(0, 1), glob], dim=-1)))


class AMenuNet(torch.nn.Module):
    """Maps a setting's representations to AMA parameters (menu [s, n, m], weights [n], boosts [s])."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        h, s = config.hidden, config.menu_size
        d_in = 2 * config.code_dim + 3
        self.embed = mlp([d_in, h, h], activation=torch.nn.ReLU)  # the two 1x1 convolutions
        self.blocks = torch.nn.ModuleList(Interaction(h, config.heads) for _ in range(config.blocks))
        self.head_alloc = torch.nn.Linear(h, s)
        self.head_item = torch.nn.Linear(h, s)  # used for unit-demand only
        self.head_weight = torch.nn.Linear(h, 1)
        self.head_boost = torch.nn.Linear(h, s)
        # start near deterministic allocations and with zero boosts, so the argmax is not
        # saturated on one element (which would give zero revenue and no gradient)
        for head in (self.head_alloc, self.head_item):
            torch.nn.init.normal_(head.weight, std=config.sharp / h**0.5)
        torch.nn.init.zeros_(self.head_boost.weight)
        torch.nn.init.zeros_(self.head_boost.bias)
        torch.nn.init.constant_(self.head_weight.bias, 3.0)
        self.reserve = torch.nn.Parameter(torch.tensor(float(config.reserve_init)))
        g = torch.Generator().manual_seed(CODE_SEED)
        self.register_buffer("bidder_codes", torch.randn(MAX_INDEX + 1, config.code_dim, generator=g))
        self.register_buffer("item_codes", torch.randn(MAX_INDEX, config.code_dim, generator=g))

    def representations(self, setting: AuctionSetting) -> torch.Tensor:
        """E [(n+1), m, d]: bidder code, item code, value range of the cell, dummy flag."""
        n, m = setting.shape
        if n > MAX_INDEX or m > MAX_INDEX:
            raise ValueError(f"AMenuNet supports up to {MAX_INDEX} bidders and items, got {n}x{m}")
        scale = float(setting.high().max())
        codes = torch.cat([self.bidder_codes[:n], self.bidder_codes[MAX_INDEX:]])  # dummy: last code
        x = codes.unsqueeze(1).expand(n + 1, m, -1)
        y = self.item_codes[:m].unsqueeze(0).expand(n + 1, m, -1)
        low = torch.cat([setting.low(torch.float32), torch.zeros(1, m)]) / scale
        high = torch.cat([setting.high(torch.float32), torch.zeros(1, m)]) / scale
        dummy = torch.zeros(n + 1, m)
        dummy[n] = 1.0
        cell = torch.stack([low, high, dummy], dim=-1).to(x.device)
        return torch.cat([x, y, cell], dim=-1)

    def forward(self, setting: AuctionSetting) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        L = self.embed(self.representations(setting))
        for block in self.blocks:
            L = block(L)
        n = setting.bidders
        JA = self.head_alloc(L).permute(2, 0, 1)  # [s, n+1, m]
        item_logits = None
        if setting.unit_demand:
            JB = self.head_item(L[:n]).permute(2, 0, 1)  # [s, n, m]
            item_logits = torch.cat([JB, torch.zeros_like(JB[..., :1])], dim=-1)
        menu = feasible_lottery(JA, item_logits)
        raw = torch.sigmoid(self.head_weight(L[:n]).squeeze(-1).mean(-1))
        weights = raw / raw.max()
        unsold = setting.items - menu.sum(dim=(1, 2))  # [s]
        boosts = self.head_boost(L).mean(dim=(0, 1)) + self.reserve * unsold
        # the AMA with max_i w_i = 1, rescaled to min_i w_i = 1 (the same mechanism, a sharper
        # relaxation): see "Weight normalisation" in the module docstring
        return (menu, *min_weight_one(weights, boosts))


def fit(setting: AuctionSetting, config: Config | None = None) -> AffineMaximizer:
    """Train AMenuNet on ``setting``; returns the hard-argmax AMA it generates (exactly SP)."""
    config = config or default_config(setting)
    if config.menu_size < 1:
        raise ValueError(f"menu_size must be at least 1, got {config.menu_size}")
    set_threads(config.threads)  # before the menu fit too: thread count changes float sums
    torch.manual_seed(config.seed)
    net = AMenuNet(config)
    fit_initial_menu(net, setting, config)
    return train_ama(setting, net, lambda: net(setting), config, KIND, keep_module=True)


def fit_initial_menu(net: AMenuNet, setting: AuctionSetting, config: Config) -> None:
    """Start the network at the menu Lottery AMA starts from: ``menu_init_steps`` Adam steps on
    the cross-entropy between each generated element A^k (owner of item j: bidder i with
    probability A^k_ij, nobody with 1 - sum_i A^k_ij) and the k-th of the cycled deterministic
    allocations D^k (``ama.cycled_allocations``). Only the parameters the menu depends on move;
    the boosts stay r * (number of unsold items), so training starts from VCG with reserves.
    Settings with more than 4s deterministic allocations keep the random start."""
    target = cycled_allocations(setting, config.menu_size)
    if target is None or config.menu_init_steps <= 0:
        return
    target = target.to(torch.float32)
    unsold = 1 - target.sum(1)  # [s, m]
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    for _ in range(config.menu_init_steps):
        menu = net(setting)[0]
        nobody = (1 - menu.sum(1)).clamp(min=1e-12)
        loss = -(target * menu.clamp(min=1e-12).log()).sum() - (unsold * nobody.log()).sum()
        opt.zero_grad()
        (loss / config.menu_size).backward()
        opt.step()


def load(directory: str | Path) -> AffineMaximizer:
    """Load a trained AMenuNet checkpoint (the generated AMA, plus the network in ``extra``)."""
    return load_ama(directory, KIND)


def transfer(directory: str | Path, setting: AuctionSetting) -> AffineMaximizer:
    """Generate the AMA for another ``setting`` (e.g. a different n x m) from a trained network."""
    tensors, config = load_checkpoint(directory, kind=KIND)
    cfg = Config(**config["config"])
    net = AMenuNet(cfg)
    net.load_state_dict({k.removeprefix("net."): v for k, v in tensors.items() if k.startswith("net.")})
    with torch.no_grad():
        menu, w, lam = net(setting)
    scale = float(setting.high().max())
    return AffineMaximizer(setting, menu, w, lam * scale, kind=KIND, config=asdict(cfg),
                           report={"transferred_from": config["setting"]})
