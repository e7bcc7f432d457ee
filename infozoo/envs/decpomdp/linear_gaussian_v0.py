"""``linear-gaussian-v0``: see ``LinearGaussianEnv`` for the documentation."""

from pettingzoo.utils import parallel_to_aec

from infozoo.envs.decpomdp.linear_gaussian import LinearGaussianEnv


def raw_env(dim=4, n_agents=2, co=True, rho=0.95, obs_noise=0.1, process_noise=None, max_cycles=10,
            render_mode=None):
    """The parallel environment itself (PettingZoo's ``raw_env`` naming)."""
    return LinearGaussianEnv(dim=dim, n_agents=n_agents, co=co, rho=rho, obs_noise=obs_noise,
                             process_noise=process_noise, max_cycles=max_cycles, render_mode=render_mode)


def parallel_env(**kwargs):
    return raw_env(**kwargs)


def env(**kwargs):
    """The AEC form, converted from the parallel one."""
    return parallel_to_aec(raw_env(**kwargs))
