"""``data-market-v0``: see ``DataMarketEnv`` for the documentation."""

from pettingzoo.utils import parallel_to_aec

from infozoo.envs.data_market.env import DataMarketEnv


def raw_env(setting="dm-2buyers-uniform-a0.5", mechanism="theory", render_mode=None):
    """The parallel environment itself (PettingZoo's ``raw_env`` naming)."""
    return DataMarketEnv(setting=setting, mechanism=mechanism, render_mode=render_mode)


def parallel_env(**kwargs):
    return raw_env(**kwargs)


def env(**kwargs):
    """The AEC form, converted from the parallel one."""
    return parallel_to_aec(raw_env(**kwargs))
