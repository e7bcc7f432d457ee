"""The ``theory`` mechanism: the exact optimum of a data-market setting (see
``infozoo.envs.data_market.theory``): the Bergemann-Bonatti-Smolin menu for one buyer (closed
form for the uniform prior, the menu LP otherwise) and the virtual-value mechanism for several
buyers (ex post IC; also the Bayesian IC optimum)."""

from __future__ import annotations

from typing import Any

from infozoo.envs.data_market.settings import DataMarketSetting
from infozoo.envs.data_market.theory import theory_mechanism


def theory(setting: DataMarketSetting, **kwargs: Any) -> Any:
    """Factory registered as ``theory``: the optimal mechanism of ``setting``."""
    if kwargs:
        raise ValueError(f"the theory mechanism takes no options, got {', '.join(kwargs)}")
    if getattr(setting, "domain", None) != "data-market":
        raise ValueError("the theory mechanism is for data-market settings")
    return theory_mechanism(setting)
