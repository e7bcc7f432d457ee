"""The sealed-bid auction as a PettingZoo parallel environment."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

from infozoo.core.seeding import torch_generator
from infozoo.envs.auction.mechanism import check_outcome
from infozoo.envs.auction.settings import AuctionSetting
from infozoo.envs.common import box_action, check_render_mode, check_step, emit


class AuctionEnv(ParallelEnv):
    """## Description

    One round of a sealed-bid multi-item auction. Each bidder privately draws its valuation
    v_i in R^m from the setting's distribution, submits a bid vector b_i, and a mechanism maps
    the bid profile b to an allocation x [n, m] and payments p [n]. With a strategy-proof
    mechanism (VCG, Myerson, GemNet, affine maximizers) truthful bidding b_i = v_i is optimal;
    with first price it is not, which is what makes this environment a probe of strategy-proofness
    for learning bidders.

    ## Agents

    ``bidder_0`` ... ``bidder_{n-1}``, all acting at once.

    ## Observation

    Bidder i observes its own valuation v_i: ``Box(low_i, high_i, (m,), float64)`` with the value
    support of the setting. Spaces are float64 so that a truthful bid is exact: on a discrete
    support such as {0.1, 0.3} a float32 value would round above the support and be clipped.

    ## Action

    A bid vector b_i: ``Box(low_i, high_i, (m,), float64)``. Bids outside the support are clipped
    into it and flagged in ``infos[agent]["clipped"]``; NaN or infinite bids, a bid of the wrong
    shape and anything but numbers (a string, say) raise ``ValueError`` naming the bidder.

    What the mechanism returns is checked before it is used (``check_outcome``): an allocation of
    exactly [1, n, m] and payments [1, n], finite, probabilities in [0, 1] and feasible (each item
    allocated at most once; unit-demand bidders at most one item), within 1e-9 (1e-6 for float32
    outcomes); otherwise ``ValueError``.

    ## Rewards

    The bidder's quasi-linear utility u_i = <v_i, x_i> - p_i under its true values.

    ## Episode End

    Every episode is one round: all agents terminate after the first ``step``.
    ``infos[agent]`` then carries ``allocation`` (x_i), ``payment`` (p_i), ``revenue`` (sum of
    payments), ``value`` (v_i) and ``clipped``. ``state()`` is the full valuation profile
    flattened to n*m numbers (``state_space`` matches).

    ## Arguments

    - ``setting``: a named setting, a path to a JSON setting or an ``AuctionSetting``
      (default ``"additive-2x2-uniform"``).
    - ``mechanism``: a mechanism object or a registered name (``"vcg"``, ``"myerson"``,
      ``"gemnet:DIR"`` for a trained checkpoint; default ``"vcg"``).
    - ``render_mode``: ``None``, ``"ansi"`` (``render()`` returns the round as text) or
      ``"human"`` (prints it).

    >>> import infozoo
    >>> env = infozoo.make("auction-v0", setting="additive-2x2-uniform", mechanism="vcg")
    >>> obs, infos = env.reset(seed=0)
    >>> obs, rewards, terms, truncs, infos = env.step(obs)  # truthful bids

    ## Version History

    - v0: initial release (float64 spaces; mechanism outcomes checked).
    """

    BLOCK = 256  # valuation profiles drawn per call of the generator

    metadata = {"name": "auction_v0", "render_modes": ["ansi", "human"], "is_parallelizable": True,
                "collectively_observable": True}

    def __init__(self, setting: Any = "additive-2x2-uniform", mechanism: Any = "vcg",
                 render_mode: str | None = None) -> None:
        from infozoo.registry import load_setting, make_mechanism

        check_render_mode(render_mode, self.metadata)
        self.setting: AuctionSetting = load_setting(setting, domain="auction")
        self.mechanism = make_mechanism(mechanism, self.setting)
        self.render_mode = render_mode
        n, m = self.setting.shape
        self.possible_agents = [f"bidder_{i}" for i in range(n)]
        self.agents: list[str] = []
        self._low = self.setting.low().numpy()
        self._high = self.setting.high().numpy()
        self._obs_spaces = {a: spaces.Box(self._low[i], self._high[i], (m,), np.float64)
                            for i, a in enumerate(self.possible_agents)}
        self.state_space = spaces.Box(self._low.flatten(), self._high.flatten(), (n * m,), np.float64)
        self._generator = torch_generator(None)
        self._buffer = np.empty((0, n, m))
        self._values = np.zeros((n, m))
        self._last: dict[str, Any] | None = None

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._generator = torch_generator(seed)
            self._buffer = np.empty((0, *self.setting.shape))
        if len(self._buffer) == 0:  # draw valuations in blocks: one torch call per block
            self._buffer = self.setting.sample(self.BLOCK, self._generator).numpy()
        self._values, self._buffer = self._buffer[0], self._buffer[1:]
        self.agents = list(self.possible_agents)
        self._last = None
        obs = {a: self._values[i].copy() for i, a in enumerate(self.agents)}
        return obs, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        check_step(self.agents, actions)
        n, m = self.setting.shape
        bids = np.empty((n, m))
        for i, a in enumerate(self.agents):
            bids[i] = box_action(a, actions[a], (m,), "bid", f"a bid vector of shape ({m},) of finite numbers")
        clipped_bids = np.clip(bids, self._low, self._high)
        clipped = np.any(clipped_bids != bids, axis=1)
        with torch.no_grad():
            out = self.mechanism(torch.from_numpy(clipped_bids).unsqueeze(0))
        name = getattr(self.mechanism, "name", type(self.mechanism).__name__)
        check_outcome(out, 1, n, m, self.setting.unit_demand, who=f"mechanism {name!r}")
        alloc = out.allocation[0].double().numpy()
        pay = out.payment[0].double().numpy()
        u = (self._values * alloc).sum(-1) - pay  # u_i = <v_i, x_i> - p_i
        revenue = float(pay.sum())
        agents = self.agents
        obs = {a: self._values[i].copy() for i, a in enumerate(agents)}
        rewards = {a: float(u[i]) for i, a in enumerate(agents)}
        terms = {a: True for a in agents}
        truncs = {a: False for a in agents}
        infos = {a: {"allocation": alloc[i], "payment": float(pay[i]), "revenue": revenue,
                     "value": self._values[i].copy(), "bid": clipped_bids[i], "clipped": bool(clipped[i])}
                 for i, a in enumerate(agents)}
        self._last = {"bids": clipped_bids, "alloc": alloc, "pay": pay, "u": u}
        self.agents = []
        return obs, rewards, terms, truncs, infos

    def state(self) -> np.ndarray:
        return self._values.flatten().copy()

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        mech = getattr(self.mechanism, "name", type(self.mechanism).__name__)
        lines = [f"auction {self.setting.name or ''} ({self.setting.bidders} bidders x "
                 f"{self.setting.items} items, mechanism {mech})"]
        for i, a in enumerate(self.possible_agents):
            line = f"  {a}: value {np.round(self._values[i], 3).tolist()}"
            if self._last is not None:
                line += (f" bid {np.round(self._last['bids'][i], 3).tolist()} "
                         f"gets {np.round(self._last['alloc'][i], 3).tolist()} "
                         f"pays {self._last['pay'][i]:.3f} utility {self._last['u'][i]:.3f}")
            lines.append(line)
        if self._last is not None:
            lines.append(f"  revenue {self._last['pay'].sum():.3f}")
        text = "\n".join(lines)
        return emit(text, self.render_mode)

    def close(self) -> None:
        pass
