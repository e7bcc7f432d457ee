"""``auction-v0``: see ``AuctionEnv`` for the documentation."""

from pettingzoo.utils import parallel_to_aec

from infozoo.envs.auction.env import AuctionEnv


def raw_env(setting="additive-2x2-uniform", mechanism="vcg", render_mode=None):
    """The parallel environment itself (PettingZoo's ``raw_env`` naming)."""
    return AuctionEnv(setting=setting, mechanism=mechanism, render_mode=render_mode)


def parallel_env(**kwargs):
    return raw_env(**kwargs)


def env(**kwargs):
    """The AEC form, converted from the parallel one."""
    return parallel_to_aec(raw_env(**kwargs))
