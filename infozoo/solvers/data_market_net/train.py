"""The data-market net as a trainable solver (registered as ``data-market-net``).

``fit(setting, config)`` trains the one-buyer menu net (``menu.py``) or the several-buyer
RegretNet-style net (``multi.py``) and returns a ``DataMarketNet``: a data-market mechanism
(``mechanism(reports) -> SchemeOutcome``) with ``save(directory)``, a ``report`` dict and, for
one buyer, ``menus`` (so the evaluator computes its regret exactly: zero, it is a menu).

    infozoo train data-market-net --setting dm-1buyer-uniform --out runs/dm1
    infozoo eval --setting dm-1buyer-uniform --mechanism data-market-net:runs/dm1 --json
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from infozoo.core.checkpoint import load_checkpoint, save_checkpoint
from infozoo.core.seeding import seed_everything
from infozoo.core.torch_utils import exact_rows, set_threads
from infozoo.envs.data_market.experiments import SchemeOutcome
from infozoo.envs.data_market.settings import DataMarketSetting, from_dict
from infozoo.envs.data_market.theory import Menu

KIND = "data-market-net"
PROFILES = ("quick", "full")


@dataclass
class Config:
    """Hyper-parameters of the data-market net (defaults work for the named settings)."""

    seed: int = 0  # seed of every random draw
    threads: int = 1  # torch intra-op threads (0: torch's default)
    float64: bool = False  # train in double precision
    steps: int = 3000  # optimiser steps
    lr: float = 3e-3  # Adam learning rate at the start
    lr_final: float = 1e-4  # learning rate at the end (cosine decay)
    # -- one buyer: the menu of experiments --
    batch: int = 1024  # types per step (one buyer; discrete priors use all types) / profiles (ex post)
    menu_size: int = 32  # K experiments in the menu (plus the free uninformative option)
    restarts: int = 2  # independent menus trained side by side; the best one is kept
    exp_temp: float = 5.0  # tau_E: experiment = softmax(tau_E * logits) over signals
    price_init: float = 0.5  # initial prices ~ U[0, price_init * payoff range]
    choice_temp: float = 100.0  # softmax temperature of the relaxed choice at the start
    choice_temp_final: float = 2000.0  # ... at the end (annealed geometrically)
    prune_samples: int = 100_000  # types on which unused / duplicate items are pruned
    prune_tol: float = 1e-6  # drop an item if revenue falls by at most this much without it
    polish: bool = True  # discrete priors: re-optimise the prices by LP after training
    # -- several buyers: the RegretNet-style network --
    hidden: tuple[int, ...] = (64, 64)  # hidden layer widths
    batch_bayesian: int = 64  # values per buyer per step in the Bayesian IC loss
    others: int = 16  # draws of the others' values per value (Bayesian IC)
    misreports: int = 16  # jittered grid misreports per buyer in the regret loss
    local_misreports: int = 4  # misreports near the true value
    rho: float = 50.0  # augmented-Lagrangian penalty rho at the start
    rho_growth: float = 2.0  # rho multiplier every rho_every steps
    rho_every: int = 500  # steps between rho increases
    rho_max: float = 2000.0  # cap on rho
    update_every: int = 25  # steps between multiplier (lambda) updates
    lam_init: float = 20.0  # initial multipliers (strong from the start: revenue rises from below)
    notes: dict[str, Any] = field(default_factory=dict)  # free-form provenance (profile, setting)


def default_config(setting: Any, profile: str = "quick", seed: int = 0) -> Config:
    """Config for ``setting`` under ``profile`` (``quick``: minutes on one CPU core; ``full``: longer)."""
    from infozoo.registry import load_setting

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    setting = load_setting(setting)
    _check(setting)
    full = profile == "full"
    cfg = Config(seed=seed, notes={"profile": profile, "setting": setting.name or "(json)"})
    if not setting.multi:
        if setting.discrete:
            cfg.restarts, cfg.steps, cfg.choice_temp_final = 16, 3000 * (2 if full else 1), 20_000.0
        else:
            cfg.restarts, cfg.batch, cfg.steps, cfg.lr = 2, 2048, 1500 * (3 if full else 1), 1e-2
            cfg.menu_size = 16 if setting.states == 2 else 32
    elif setting.incentive == "bayesian":
        cfg.steps, cfg.others, cfg.rho_every = (6000 if full else 3000), 8, 300
    else:
        cfg.steps = 10_000 if full else 3000
        cfg.batch = 256
    return cfg


def _check(setting: Any) -> None:
    if getattr(setting, "domain", None) != "data-market":
        raise ValueError(f"data-market-net needs a data-market setting, got {getattr(setting, 'domain', setting)!r}")


class DataMarketNet:
    """A trained data-market net: a mechanism with ``save``; ``menu`` (one buyer) or ``net``."""

    def __init__(self, setting: DataMarketSetting, config: Config, menu: Menu | None = None,
                 mechanism: Any = None, report: dict[str, Any] | None = None) -> None:
        self.setting = setting
        self.config = config
        self.menu = menu
        self.mechanism = mechanism
        self.report = report or {}
        self.name = KIND
        self.strategyproof = menu is not None  # a menu is IC by construction

    def __call__(self, reports: torch.Tensor) -> SchemeOutcome:
        return (self.menu or self.mechanism)(reports)

    def __getattr__(self, name: str) -> Any:
        if name == "menus" and self.__dict__.get("menu") is not None:
            return self.menu.menus
        raise AttributeError(name)

    def save(self, directory: str | Path) -> Path:
        cfg = asdict(self.config)
        meta = {"kind": KIND, "setting": self.setting.to_dict(), "config": cfg, "report": self.report}
        if self.menu is not None:
            tensors = {"experiments": self.menu.experiments, "prices": self.menu.prices}
        else:
            tensors = dict(self.mechanism.net.state_dict())
        return save_checkpoint(directory, tensors, meta)


def fit(setting: Any, config: Config | None = None) -> DataMarketNet:
    """Train the data-market net on ``setting`` (a name, JSON path, dict or setting object)."""
    from infozoo.registry import load_setting

    setting = load_setting(setting)
    _check(setting)
    cfg = config or default_config(setting)
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    if setting.multi:
        from infozoo.solvers.data_market_net.multi import train_multi

        mech, report = train_multi(setting, cfg)
        return DataMarketNet(setting, cfg, mechanism=mech, report=report)
    from infozoo.solvers.data_market_net.menu import train_menu

    menu, report = train_menu(setting, cfg)
    return DataMarketNet(setting, cfg, menu=menu, report=report)


def load(directory: str | Path) -> DataMarketNet:
    """Load a ``DataMarketNet`` saved by ``save`` (safetensors + JSON; no pickle)."""
    tensors, meta = load_checkpoint(directory, KIND)
    setting = from_dict(meta["setting"])
    known = {f.name for f in fields(Config)}
    cfg_d = {k: v for k, v in meta.get("config", {}).items() if k in known}
    if "hidden" in cfg_d:
        cfg_d["hidden"] = tuple(cfg_d["hidden"])
    cfg = Config(**cfg_d)
    report = meta.get("report", {})
    if not setting.multi:
        menu = Menu(exact_rows(tensors["experiments"]), tensors["prices"].double(), setting.payoff_matrix(),
                    "data-market-net (menu)")
        return DataMarketNet(setting, cfg, menu=menu, report=report)
    from infozoo.solvers.data_market_net.multi import MultiMechanism, MultiNet

    dtype = tensors["low"].dtype
    net = MultiNet(setting.buyers, setting.states, cfg.hidden, tensors["low"], tensors["high"]).to(dtype)
    net.load_state_dict(tensors)
    net.eval()
    return DataMarketNet(setting, cfg, mechanism=MultiMechanism(setting, net), report=report)
