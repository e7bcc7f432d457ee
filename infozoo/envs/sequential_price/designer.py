"""The designer's problem of a sequential price mechanism as a single-agent Gymnasium env."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from infozoo.core.seeding import torch_generator
from infozoo.envs.common import box_action, check_render_mode, emit
from infozoo.envs.sequential_price.rules import History, check_setting, choose, observation_size, prices_from_action


class SequentialPriceDesignerEnv(gym.Env):
    """## Description

    The seller's side of a sequential price mechanism (Brero et al., AAAI 2021): the bidders of an
    auction setting, with private values drawn at ``reset``, are visited in the order 0..n-1; at
    each visit the agent (the designer) posts a price for every item, and the visited bidder buys
    its utility-maximising bundle among the unsold items (truthful bidders: that is their dominant
    strategy). The return of an episode is the revenue of the mechanism on that value profile.
    See ``infozoo.envs.sequential_price.rules`` for the exact rules.

    ## Observation

    ``Box(0, 1, (m + n + 2nm,), float32)``: remaining items, one-hot of the bidder visited next,
    who bought what so far (n x m) and the prices posted so far as fractions of each bidder's
    highest possible value (n x m). Never the values of bidders not yet visited.

    ## Action

    ``Box(-1, 1, (m,), float32)``: price fractions; item j is offered to bidder t at
    p_tj = (a_j + 1)/2 * high_tj. Prices of sold items are ignored.

    ## Rewards

    The payment of the visited bidder, sum_{j in B_t} p_tj.

    ## Episode End

    Terminates after the n-th visit. ``info`` carries ``bought`` (the bundle), ``prices``,
    ``revenue`` (so far) and, at the end, ``allocation`` [n, m].

    ## Arguments

    - ``setting``: a named auction setting, a JSON path or an ``AuctionSetting`` (default
      ``"additive-2x2-uniform"``).

    >>> import gymnasium as gym
    >>> import infozoo  # registers infozoo/SequentialPriceDesigner-v0
    >>> env = gym.make("infozoo/SequentialPriceDesigner-v0", setting="additive-2x2-uniform")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

    ## Version History

    - v0: initial release.
    """

    metadata = {"render_modes": ["ansi", "human"]}

    def __init__(self, setting: Any = "additive-2x2-uniform", render_mode: str | None = None) -> None:
        from infozoo.registry import load_setting

        check_render_mode(render_mode, self.metadata)
        self.setting = check_setting(load_setting(setting, domain="auction"))
        self.render_mode = render_mode
        n, m = self.setting.shape
        self.n, self.m = n, m
        self.high = self.setting.high().numpy()
        self.observation_space = spaces.Box(0.0, 1.0, (observation_size(n, m),), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (m,), np.float32)
        self._generator = torch_generator(None)
        self._values = np.zeros((n, m))
        self.history = History(n, m)
        self.t = 0

    @property
    def remaining(self) -> np.ndarray:
        """Unsold items, [1, m]."""
        return self.history.remaining

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self._generator = torch_generator(seed)
        self._values = self.setting.sample(1, self._generator)[0].numpy()
        self.history.clear()
        self.t = 0
        return self.history.observation(0)[0], {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.t >= self.n:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        a = box_action("the designer", action, (self.m,),
                       form=f"{self.m} finite price fractions in [-1, 1] (shape ({self.m},))")
        t = self.t
        p = prices_from_action(a, self.high[t])[None]
        buy = choose(self._values[t][None], p, self.remaining, self.setting.unit_demand)
        pay = float(self.history.record(t, buy, p, self.high[t])[0])
        self.t += 1
        done = self.t >= self.n
        info: dict[str, Any] = {"bought": buy[0].copy(), "prices": p[0].copy(),
                                "revenue": float(self.history.payments[0].sum())}
        if done:
            info["allocation"] = self.history.alloc[0].copy()
        if self.render_mode == "human":
            self.render()
        return self.history.observation(self.t)[0], pay, done, False, info

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        lines = [f"sequential prices, {self.setting.name or 'custom setting'}: visit {self.t}/{self.n}, "
                 f"remaining {self.remaining[0].astype(int).tolist()}"]
        h = self.history
        for t in range(self.t):
            lines.append(f"  bidder_{t}: prices {np.round(h.price_hist[0, t] * self.high[t], 3).tolist()} "
                         f"bought {h.alloc[0, t].astype(int).tolist()} paid {h.payments[0, t]:.3f}")
        text = "\n".join(lines)
        return emit(text, self.render_mode)
