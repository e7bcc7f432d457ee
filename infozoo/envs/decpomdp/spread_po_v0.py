"""``spread-po-v0``: see ``SpreadPOEnv`` for the documentation (needs the optional mpe2)."""

from pettingzoo.utils import parallel_to_aec

from infozoo.envs.decpomdp.spread_po import SpreadPOEnv


def raw_env(N=3, view_radius=0.8, local_ratio=0.5, max_cycles=25, render_mode=None):
    """The parallel environment itself (PettingZoo's ``raw_env`` naming)."""
    return SpreadPOEnv(N=N, view_radius=view_radius, local_ratio=local_ratio, max_cycles=max_cycles,
                       render_mode=render_mode)


def parallel_env(**kwargs):
    return raw_env(**kwargs)


def env(**kwargs):
    """The AEC form, converted from the parallel one."""
    return parallel_to_aec(raw_env(**kwargs))
