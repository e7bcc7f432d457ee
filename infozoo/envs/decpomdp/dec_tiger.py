"""The classic two-agent Dec-Tiger problem (Nair et al., 2003)."""

from __future__ import annotations

from typing import Any

import numpy as np

from infozoo.envs.decpomdp.base import DecPOMDPEnv, DecPOMDPModel, ModelInfo, check_float, check_positive_int

LISTEN, OPEN_LEFT, OPEN_RIGHT = 0, 1, 2
TIGER_LEFT, TIGER_RIGHT = 0, 1


def reward_table(listen_cost: float = 2.0) -> np.ndarray:
    """``R[s, a_0, a_1]``, the literature's joint reward (Nair et al. 2003; MADP ``dectiger``)."""
    r = np.zeros((2, 3, 3))
    for s in (TIGER_LEFT, TIGER_RIGHT):
        tiger = OPEN_LEFT if s == TIGER_LEFT else OPEN_RIGHT
        gold = OPEN_RIGHT if s == TIGER_LEFT else OPEN_LEFT
        r[s, LISTEN, LISTEN] = -listen_cost
        r[s, LISTEN, tiger] = r[s, tiger, LISTEN] = -101.0
        r[s, LISTEN, gold] = r[s, gold, LISTEN] = 9.0
        r[s, tiger, tiger] = -50.0
        r[s, gold, gold] = 20.0
        r[s, tiger, gold] = r[s, gold, tiger] = -100.0
    return r


class DecTigerModel(DecPOMDPModel):
    """Batched simulator of ``dec-tiger-v0`` (see ``DecTigerEnv``).

    The internal state is the tiger position ``int [B]``; the observation vector of an agent is
    the one-hot of what it heard (``[1, 0]`` left, ``[0, 1]`` right, ``[0, 0]`` at ``t = 0``).
    """

    def __init__(self, listen_accuracy: float = 0.85, listen_cost: float = 2.0, max_cycles: int = 10) -> None:
        self.listen_accuracy = check_float("listen_accuracy", listen_accuracy, 0.0, 1.0)
        self.listen_cost = check_float("listen_cost", listen_cost)
        self.max_cycles = check_positive_int("max_cycles", max_cycles)
        self.rewards = reward_table(self.listen_cost)
        self.info = ModelInfo(n_agents=2, obs_dim=2, action_kind="discrete", action_dim=3, state_dim=2,
                              state_kind="discrete", collectively_observable=False,
                              max_cycles=self.max_cycles, n_states=2)
        self.obs_low, self.obs_high = 0.0, 1.0
        self.state_low, self.state_high = 0.0, 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"listen_accuracy": self.listen_accuracy, "listen_cost": self.listen_cost,
                "max_cycles": self.max_cycles}

    def reset(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return rng.integers(0, 2, size=batch), np.zeros((batch, 2, 2))

    def step(self, tiger: np.ndarray, actions: np.ndarray, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b = tiger.shape[0]
        team = self.rewards[tiger, actions[:, 0], actions[:, 1]]
        listened = (actions == LISTEN).all(1)
        # both listen: the tiger stays; any door opened: the problem resets (tiger uniform)
        tiger = np.where(listened, tiger, rng.integers(0, 2, size=b))
        correct = rng.random((b, 2)) < self.listen_accuracy
        heard_if_listen = np.where(correct, tiger[:, None], 1 - tiger[:, None])
        heard = np.where(listened[:, None], heard_if_listen, rng.integers(0, 2, size=(b, 2)))
        obs = np.eye(2)[heard]  # [B, 2 agents, 2]
        return tiger, obs, np.repeat(team[:, None], 2, axis=1)

    def state_vector(self, tiger: np.ndarray) -> np.ndarray:
        return np.eye(2)[tiger]

    def render_text(self, tiger: np.ndarray) -> str:
        return f"tiger behind the {'left' if tiger[0] == TIGER_LEFT else 'right'} door"


def scripted_policy(model: DecTigerModel, listen_prob: float = 0.8):
    """Listen with probability ``listen_prob``, else open a door at random, whatever was heard.

    History-independent on purpose: the per-agent posterior then stays exact (the other agent's
    action is independent noise with known law ``action_probs``)."""

    probs = np.array([listen_prob, (1 - listen_prob) / 2, (1 - listen_prob) / 2])

    def policy(obs: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(3, size=obs.shape[:2], p=probs).astype(np.int64)

    policy.action_probs = probs  # type: ignore[attr-defined]
    return policy


class DecTigerEnv(DecPOMDPEnv):
    """## Description

    Two agents stand before two doors; a tiger is behind one, treasure behind the other. Listening
    tells each agent, privately, the tiger's side with accuracy 0.85. Opening a door ends the
    round: the tiger is placed again uniformly at random. The joint history never identifies the
    tiger's position (listening is noisy), so the problem is **not collectively observable**.

    ## Agents

    ``agent_0``, ``agent_1``.

    ## Observation

    ``Box(0, 1, (2,), float32)``: one-hot of the side heard (``[1, 0]`` left, ``[0, 1]`` right);
    ``[0, 0]`` after ``reset``. Unless both agents listened, each hears a uniformly random side.

    ## Action

    ``Discrete(3)``: 0 = listen, 1 = open the left door, 2 = open the right door.

    ## Rewards

    The standard joint reward, paid to both agents: both listen -2; both open the treasure door
    +20; both open the tiger door -50; one listens and the other opens the treasure door +9
    (tiger door -101); they open different doors -100.

    ## Episode End

    Every episode lasts ``max_cycles`` steps (default 10). ``state()`` is the one-hot of the
    tiger's position (``[1, 0]`` left, ``[0, 1]`` right).

    ## Arguments

    ``listen_accuracy=0.85``, ``listen_cost=2.0``, ``max_cycles=10``,
    ``render_mode=None | "ansi" | "human"``.

    >>> import infozoo
    >>> env = infozoo.make("dec-tiger-v0")
    >>> obs, infos = env.reset(seed=0)
    >>> obs, rewards, terms, truncs, infos = env.step({"agent_0": 0, "agent_1": 0})

    ## Version History

    - v0: initial release.
    """

    metadata = {"name": "dec_tiger_v0", "render_modes": ["ansi", "human"], "is_parallelizable": True,
                "collectively_observable": False}

    def __init__(self, listen_accuracy: float = 0.85, listen_cost: float = 2.0, max_cycles: int = 10,
                 render_mode: str | None = None) -> None:
        super().__init__(DecTigerModel(listen_accuracy, listen_cost, max_cycles), render_mode)
