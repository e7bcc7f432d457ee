"""``dec-tiger-v0``: see ``DecTigerEnv`` for the documentation."""

from pettingzoo.utils import parallel_to_aec

from infozoo.envs.decpomdp.dec_tiger import DecTigerEnv


def raw_env(listen_accuracy=0.85, listen_cost=2.0, max_cycles=10, render_mode=None):
    """The parallel environment itself (PettingZoo's ``raw_env`` naming)."""
    return DecTigerEnv(listen_accuracy=listen_accuracy, listen_cost=listen_cost, max_cycles=max_cycles,
                       render_mode=render_mode)


def parallel_env(**kwargs):
    return raw_env(**kwargs)


def env(**kwargs):
    """The AEC form, converted from the parallel one."""
    return parallel_to_aec(raw_env(**kwargs))
