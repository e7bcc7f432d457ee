"""Lottery AMA (Curry, Sandholm & Dickerson 2023): an affine maximizer over a learned menu of
lotteries, with the menu, bidder weights and boosts as free parameters.

Parametrisation (see ``infozoo.baselines.auction.ama`` for the mechanism and the relaxation):
- menu element k: a randomised allocation a^k = feasible_lottery(logits^k) (per item a softmax
  over bidders plus "unsold"; unit-demand adds a per-bidder softmax over items and takes the
  minimum, so every element is feasible);
- weights w_i = sigmoid(omega_i) in (0, 1) (``learn_weights=False`` fixes w = 1);
- boosts lambda_k (in units of the value range).
Every element starts near a deterministic allocation (sharp logits plus noise, cycling through
the (n+1)^m of them when there are few enough) with a boost of ``reserve_init`` per unsold item,
so the initial mechanism is VCG with per-item reserves (item-wise Myerson for U[0,1] at 1/2);
training then moves the elements into lotteries and reshapes weights and boosts. Trained by Adam on the revenue of the
softmax-relaxed AMA (temperature 500 per unit of value range), evaluated with the hard argmax.

Weight rescaling (``rescale_weights``; on in the full profile of continuous settings, off in the
quick profile and on discrete settings). Used as they are, the weights leave the relaxation's
overcharge (max S - E_pi S) / w_i of ``amenunet.py`` ("Weight normalisation") free to grow as they
fall: in the full profile on unit-2x2 (seed 0, one CPU thread) the hard validation revenue is 0
from step 18,000 on and the best checkpoint (0.7107 on validation) is kept, 0.7112 +- 0.0003 on
10^6 profiles. With ``rescale_weights`` training sees the same AMA divided by min_i w_i
(``ama.min_weight_one``), whose overcharge is at most scale log K / T per bidder, and the mechanism
saved is that same AMA. Measured (2-core CPU, one thread, 10^6 profiles, seed 123): in the full
profile on unit-2x2 it trains to its end, 0.7140 +- 0.0003 (+0.0028 +- 0.0001 paired with the
unrescaled run above; 36 min beside other jobs), and on 2x5 it gives 2.3559 +- 0.0006, a tie with
the unrescaled 2.3561 (-0.0002 +- 0.0002; 33 min); in the quick profile (an experiment script,
paired with the unrescaled quick runs) unit-2x2 +0.0001, 2x2 -0.0003, 2x3 -0.0000, 2x5 +0.0018,
3x10 +0.0030 (+- 0.0001 to 0.0003), Yao -0.0108 (exact). The quick profile keeps the weights as
they are: its table numbers and the teachers GemNet distils on 2x2 and unit-2x2 are measured with
them, and on Yao (discrete) the rescaling lost 0.0108.

Registered as solver ``lottery-ama``: ``Config``, ``default_config``, ``fit``, ``load``.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from infozoo.envs.auction.settings import AuctionSetting

KIND = "lottery-ama"


@dataclass
class Config(AMATrainConfig):
    """Lottery AMA hyper-parameters (the shared training fields are in ``AMATrainConfig``)."""

    menu_size: int = 64  # K lotteries in the menu
    learn_weights: bool = True  # learn bidder weights w (else w = 1)
    init_scale: float = 1.0  # std of the random initial logits
    sharp: float = 6.0  # logit margin of the deterministic initial elements
    reserve_init: float = 0.5  # initial boost per unsold item, in units of the value range
    rescale_weights: bool = False  # train the AMA rescaled to min_i w_i = 1 (module docstring)


def default_config(setting: AuctionSetting, profile: str = "quick", seed: int = 0) -> Config:
    """Budgets per profile: quick runs in about a minute per small setting on one CPU thread."""
    if profile not in ("quick", "full"):
        raise ValueError(f"unknown profile {profile!r}; valid: 'quick', 'full'")
    size = setting.bidders * setting.items
    if profile == "quick":
        return Config(seed=seed, steps=4000, batch=2048, menu_size=64 if size <= 6 else 128)
    return Config(seed=seed, steps=20000, batch=8192, menu_size=256 if size <= 10 else 1024,
                  val_size=65536, eval_every=500, threads=0, device=default_device(),
                  rescale_weights=not setting.discrete)


class LotteryMenu(torch.nn.Module):
    """Free parameters of a Lottery AMA: menu logits, weight logits, boosts."""

    def __init__(self, setting: AuctionSetting, config: Config) -> None:
        super().__init__()
        n, m = setting.shape
        K = config.menu_size
        g = torch.Generator().manual_seed(config.seed)
        bidder = torch.randn(K, n + 1, m, generator=g) * config.init_scale
        det = cycled_allocations(setting, K)
        if det is not None:  # every element starts near a deterministic allocation (cycling through them)
            owner = torch.cat([det, (1 - det.sum(1, keepdim=True))], dim=1)  # [K, n+1, m]
            bidder += config.sharp * (2 * owner - 1)
        self.bidder_logits = torch.nn.Parameter(bidder)
        self.item_logits = None
        if setting.unit_demand:
            item = torch.randn(K, n, m + 1, generator=g) * config.init_scale
            if det is not None:
                got = torch.cat([det, 1 - det.sum(2, keepdim=True)], dim=2)  # [K, n, m+1]
                item += config.sharp * (2 * got - 1)
            self.item_logits = torch.nn.Parameter(item)
        self.weight_logits = torch.nn.Parameter(torch.full((n,), 3.0), requires_grad=config.learn_weights)
        # boosts start as a reserve of ``reserve_init`` (value-range units) per unsold item, so the
        # initial mechanism is VCG with per-item reserves (item-wise Myerson on U[0, 1] at 1/2)
        with torch.no_grad():
            unsold = m - feasible_lottery(self.bidder_logits, self.item_logits).sum(dim=(1, 2))
        self.boosts = torch.nn.Parameter(config.reserve_init * unsold)
        self.rescale_weights = config.rescale_weights

    def forward(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        menu = feasible_lottery(self.bidder_logits, self.item_logits)
        weights = torch.sigmoid(self.weight_logits)
        if self.rescale_weights:  # the same AMA, a relaxation whose overcharge stays bounded
            return (menu, *min_weight_one(weights, self.boosts))
        return menu, weights, self.boosts


def fit(setting: AuctionSetting, config: Config | None = None) -> AffineMaximizer:
    """Train a Lottery AMA on ``setting``; returns the hard-argmax mechanism (exactly SP)."""
    config = config or default_config(setting)
    if config.menu_size < 1:
        raise ValueError(f"menu_size must be at least 1, got {config.menu_size}")
    torch.manual_seed(config.seed)
    model = LotteryMenu(setting, config)
    return train_ama(setting, model, model.forward, config, KIND)


def load(directory: str | Path) -> AffineMaximizer:
    """Load a trained Lottery AMA checkpoint."""
    return load_ama(directory, KIND)
