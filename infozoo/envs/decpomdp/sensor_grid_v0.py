"""``sensor-grid-v0``: see ``SensorGridEnv`` for the documentation."""

from pettingzoo.utils import parallel_to_aec

from infozoo.envs.decpomdp.sensor_grid import SensorGridEnv


def raw_env(rows=5, cols=9, n_prey=3, max_move=2, capture_reward=3.0, scan_cost=0.1, max_cycles=20,
            render_mode=None):
    """The parallel environment itself (PettingZoo's ``raw_env`` naming)."""
    return SensorGridEnv(rows=rows, cols=cols, n_prey=n_prey, max_move=max_move, capture_reward=capture_reward,
                         scan_cost=scan_cost, max_cycles=max_cycles, render_mode=render_mode)


def parallel_env(**kwargs):
    return raw_env(**kwargs)


def env(**kwargs):
    """The AEC form, converted from the parallel one."""
    return parallel_to_aec(raw_env(**kwargs))
