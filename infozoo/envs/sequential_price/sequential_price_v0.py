"""``sequential-price-v0``: see ``SequentialPriceEnv`` for the documentation."""

from pettingzoo.utils import parallel_to_aec

from infozoo.envs.sequential_price.env import SequentialPriceEnv


def raw_env(setting="additive-2x2-uniform", render_mode=None):
    """The parallel environment itself (PettingZoo's ``raw_env`` naming)."""
    return SequentialPriceEnv(setting=setting, render_mode=render_mode)


def parallel_env(**kwargs):
    return raw_env(**kwargs)


def env(**kwargs):
    """The AEC form, converted from the parallel one."""
    return parallel_to_aec(raw_env(**kwargs))
