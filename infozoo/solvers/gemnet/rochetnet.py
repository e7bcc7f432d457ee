"""RochetNet (Duetting et al., "Optimal Auctions through Deep Learning"): GemNet with one bidder.

With n = 1 the menu network has no input, so the menu is a learned constant: K lotteries
(alpha^k in [0,1]^m, price beta^k) plus the null element, chosen by the buyer's argmax. This
module is the registered ``rochetnet`` solver; it is ``train.py`` with a check that the setting
has exactly one bidder.
"""

from __future__ import annotations

from pathlib import Path

from infozoo.envs.auction.settings import AuctionSetting
from infozoo.solvers.gemnet import train
from infozoo.solvers.gemnet.model import GemNetMechanism
from infozoo.solvers.gemnet.train import Config

__all__ = ["Config", "default_config", "fit", "load"]


def _single(setting: AuctionSetting) -> None:
    if setting.bidders != 1:
        raise ValueError(f"rochetnet is the single-bidder menu network; setting "
                         f"{setting.name or '(unnamed)'} has {setting.bidders} bidders: use 'gemnet'")


def default_config(setting: AuctionSetting, profile: str = "quick", seed: int = 0) -> Config:
    """GemNet's defaults for one bidder (K = 1000 lotteries as in RochetNet's public code)."""
    _single(setting)
    return train.default_config(setting, profile, seed)


def fit(setting: AuctionSetting, config: Config | None = None) -> GemNetMechanism:
    """Train a RochetNet menu for a single-bidder ``setting``."""
    _single(setting)
    cfg = config or default_config(setting)
    cfg.kind = "rochetnet"
    return train.fit(setting, cfg)


def load(directory: str | Path) -> GemNetMechanism:
    return train.load(directory)
