"""A sequential price market as a PettingZoo parallel environment: designer and bidders are agents."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from infozoo.core.seeding import torch_generator
from infozoo.envs.common import binary_action, box_action, check_render_mode, emit
from infozoo.envs.sequential_price.rules import History, check_setting, observation_size, prices_from_action


class SequentialPriceEnv(ParallelEnv):
    """## Description

    A sequential price mechanism (Brero et al., AAAI 2021) played out by learning agents. Each
    bidder privately draws its values v_i at ``reset``. The bidders are visited in the order
    0..n-1, each visit taking two steps: first the ``designer`` posts a price per item for the
    visited bidder, then that bidder decides which of the unsold items to buy at those prices.
    Agents whose turn it is not still act every step (parallel API) and their actions are ignored.
    A bidder that buys its utility-maximising bundle (items with v_ij >= p_ij for additive values;
    the best single item for unit-demand) behaves optimally whatever the others do — the mechanism
    is strategy-proof by construction — so the env lets one study learned pricing against learned
    buying. ``SequentialPriceDesignerEnv`` (Gymnasium, ``infozoo/SequentialPriceDesigner-v0``)
    is the designer's problem with bidders who buy optimally.

    ## Agents

    ``designer`` and ``bidder_0`` ... ``bidder_{n-1}``; all are live for the whole episode.

    ## Observation

    - ``designer``: ``Box(0, 1, (m + n + 2nm + 1,))``: remaining items, one-hot of the visited
      bidder, who bought what (n x m), the prices posted so far as fractions of each bidder's
      highest value (n x m), and 1 when it is the designer's turn to post prices.
    - ``bidder_i``: its own values v_i (m), remaining items (m), the prices currently offered to it
      (m; zero unless it is choosing now) and 1 when it is its turn to buy.

    ## Action

    - ``designer``: ``Box(-1, 1, (m,))`` price fractions, p_tj = (a_j + 1)/2 * high_tj (fractions
      outside [-1, 1] are clipped, as Gaussian policies produce them).
    - ``bidder_i``: ``MultiBinary(m)``: the items it buys (sold items are ignored; a unit-demand
      bidder that asks for several items gets the one with the largest v_ij - p_ij).

    The acting agent's action is checked, never coerced: the designer's must be m finite numbers,
    a bidder's m zeros/ones (NaN, 7 or -3 are refused, not read as "buy" or "do not buy"); anything
    else raises ``ValueError`` naming the agent. The other agents' actions are ignored.

    ## Rewards

    When bidder t buys bundle B_t: the designer receives the payment sum_{j in B_t} p_tj and
    bidder t its utility v_t(B_t) - sum_{j in B_t} p_tj. All other rewards are 0.

    ## Episode End

    After 2n steps every agent terminates. ``infos`` then carry ``allocation`` [n, m], ``payment``
    [n] and ``revenue``. ``state()`` is every bidder's values (n*m) followed by the designer's
    observation.

    ## Arguments

    - ``setting``: a named auction setting, a JSON path or an ``AuctionSetting``
      (default ``"additive-2x2-uniform"``).
    - ``render_mode``: ``None``, ``"ansi"`` or ``"human"``.

    >>> import infozoo
    >>> env = infozoo.make("sequential-price-v0", setting="additive-2x2-uniform")
    >>> obs, infos = env.reset(seed=0)
    >>> obs, rewards, terms, truncs, infos = env.step({a: env.action_space(a).sample() for a in env.agents})

    ## Version History

    - v0: initial release.
    """

    metadata = {"name": "sequential_price_v0", "render_modes": ["ansi", "human"], "is_parallelizable": True,
                "collectively_observable": True}

    def __init__(self, setting: Any = "additive-2x2-uniform", render_mode: str | None = None) -> None:
        from infozoo.registry import load_setting

        check_render_mode(render_mode, self.metadata)
        self.setting = load_setting(setting, domain="auction")
        check_setting(self.setting)
        self.render_mode = render_mode
        n, m = self.setting.shape
        self.n, self.m = n, m
        self.low, self.high = self.setting.low().numpy(), self.setting.high().numpy()
        self.bidders = [f"bidder_{i}" for i in range(n)]
        self.possible_agents = ["designer", *self.bidders]
        self.agents: list[str] = []
        d = observation_size(n, m) + 1
        f32 = np.float32
        self._obs_spaces: dict[str, spaces.Box] = {"designer": spaces.Box(0.0, 1.0, (d,), f32)}
        self._act_spaces: dict[str, spaces.Space] = {"designer": spaces.Box(-1.0, 1.0, (m,), f32)}
        for i, a in enumerate(self.bidders):
            lo = np.concatenate([self.low[i], np.zeros(2 * m + 1)]).astype(f32)
            hi = np.concatenate([self.high[i], np.ones(m), self.high[i], np.ones(1)]).astype(f32)
            self._obs_spaces[a] = spaces.Box(lo, hi, (3 * m + 1,), f32)
            self._act_spaces[a] = spaces.MultiBinary(m)
        self.state_space = spaces.Box(
            np.concatenate([self.low.flatten(), np.zeros(d)]).astype(f32),
            np.concatenate([self.high.flatten(), np.ones(d)]).astype(f32), (n * m + d,), f32)
        self._generator = torch_generator(None)
        self._values = np.zeros((n, m))
        self.history = History(n, m)
        self._clear()

    def _clear(self) -> None:
        self.step_count = 0
        self.history.clear()
        self.offer = np.zeros(self.m)  # prices currently offered to the visited bidder

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_spaces[agent]

    # -- observations -----------------------------------------------------------------------------
    @property
    def _visited(self) -> int:
        return self.step_count // 2

    def _designer_obs(self) -> np.ndarray:
        base = self.history.observation(self._visited)[0]
        return np.append(base, float(self.step_count % 2 == 0 and self._visited < self.n)).astype(np.float32)

    def _observations(self) -> dict[str, np.ndarray]:
        obs = {"designer": self._designer_obs()}
        choosing = self._visited if self.step_count % 2 == 1 else -1
        for i, a in enumerate(self.bidders):
            offer = self.offer if i == choosing else np.zeros(self.m)
            obs[a] = np.concatenate([self._values[i], self.history.remaining[0], offer,
                                     [float(i == choosing)]]).astype(np.float32)
        return obs

    # -- API --------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._generator = torch_generator(seed)
        self._values = self.setting.sample(1, self._generator)[0].numpy()
        self._clear()
        self.agents = list(self.possible_agents)
        return self._observations(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        t, m = self._visited, self.m
        rewards = {a: 0.0 for a in self.agents}
        if self.step_count % 2 == 0:  # the designer posts prices for bidder t
            if "designer" not in actions:
                raise ValueError("missing action for designer (the price fractions for the visited bidder)")
            act = box_action("designer", actions["designer"], (m,),
                             form=f"{m} finite price fractions in [-1, 1] (shape ({m},))")
            self.offer = prices_from_action(act, self.high[t]) * self.history.remaining[0]
        else:  # bidder t buys
            agent = self.bidders[t]
            if agent not in actions:
                raise ValueError(f"missing action for {agent} (the items it buys, {m} zeros/ones)")
            want = binary_action(agent, actions[agent], m)
            buy = (want > 0.5) & (self.history.remaining[0] > 0.5)
            if self.setting.unit_demand and buy.sum() > 1:
                surplus = np.where(buy, self._values[t] - self.offer, -np.inf)
                buy = np.arange(m) == surplus.argmax()
            buy = buy.astype(np.float64)
            value = float(self._values[t][buy > 0].max(initial=0.0) if self.setting.unit_demand
                          else (self._values[t] * buy).sum())
            pay = float(self.history.record(t, buy[None], self.offer[None], self.high[t])[0])
            rewards["designer"] = pay
            rewards[agent] = value - pay
            self.offer = np.zeros(m)
        self.step_count += 1
        done = self.step_count >= 2 * self.n
        obs = self._observations()
        agents = list(self.agents)
        terms = {a: done for a in agents}
        truncs = {a: False for a in agents}
        infos: dict[str, dict] = {a: {} for a in agents}
        if done:
            h = self.history
            summary = {"allocation": h.alloc[0].copy(), "payment": h.payments[0].copy(),
                       "revenue": float(h.payments.sum())}
            infos = {a: dict(summary) for a in agents}
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terms, truncs, infos

    def state(self) -> np.ndarray:
        return np.concatenate([self._values.flatten(), self._designer_obs()]).astype(np.float32)

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        h = self.history
        lines = [f"sequential prices {self.setting.name or ''} ({self.n} bidders x {self.m} items), "
                 f"step {self.step_count}/{2 * self.n}, remaining {h.remaining[0].astype(int).tolist()}"]
        for i, a in enumerate(self.bidders):
            line = f"  {a}: value {np.round(self._values[i], 3).tolist()}"
            if i < self.step_count // 2:  # visits completed so far
                line += (f" offered {np.round(h.price_hist[0, i] * self.high[i], 3).tolist()} "
                         f"bought {h.alloc[0, i].astype(int).tolist()} paid {h.payments[0, i]:.3f}")
            lines.append(line)
        lines.append(f"  revenue {h.payments.sum():.3f}")
        text = "\n".join(lines)
        return emit(text, self.render_mode)

    def close(self) -> None:
        pass
