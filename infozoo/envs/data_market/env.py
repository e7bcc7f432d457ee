"""The data market as a two-phase PettingZoo parallel environment."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

from infozoo.core.seeding import torch_generator
from infozoo.envs.common import box_action, check_render_mode, check_step, discrete_action, emit
from infozoo.envs.data_market.experiments import check_experiment
from infozoo.envs.data_market.metrics import gains
from infozoo.envs.data_market.settings import DataMarketSetting

REPORT, ACT = 0, 1


class DataMarketEnv(ParallelEnv):
    """## Description

    A seller knows the state of the world w and sells experiments (signalling schemes) about it.
    Each buyer has a private type: its prior belief (one buyer; Bergemann-Bonatti-Smolin) or its
    value for matching the state (several buyers with a negative externality alpha). An episode
    has two phases:

    1. *report*: every buyer reports a type; the mechanism returns an experiment E_i (a
       row-stochastic [states x signals] matrix whose signals are action recommendations) and a
       price p_i for each buyer.
    2. *act*: the state w is drawn (from the buyer's prior for one buyer, from the common prior
       for several), each buyer sees its signal s_i ~ E_i(. | w) and chooses an action a_i.

    With a truthful, obedient buyer and an optimal mechanism ("theory") the expected revenue is
    the theory optimum (1/8 for the uniform one-buyer market, 13/48 for two U[0, 1] buyers with
    alpha = 1/2).

    ## Agents

    ``buyer_0`` ... ``buyer_{n-1}``, acting at once in each phase.

    ## Observation

    ``Box`` of shape (d + 2 + S,), float64: the buyer's own type (d numbers: the prior vector, then
    the scale if the setting has one; or the value), the phase (0 report, 1 act), the price it pays
    (0 in the report phase) and the one-hot signal it received (zeros in the report phase).
    Spaces are float64 so that a truthful report is exact: optimal menus leave types indifferent
    between items (ties go to the higher price), which float32 rounding would break.

    ## Action

    ``Dict({"report": Box(type box), "action": Discrete(S)})``: the report is used in the report
    phase, the action in the act phase; the other entry is ignored. Reports outside the type space
    are projected into it (prior vectors onto the simplex, values into their support) and flagged
    in ``infos[agent]["clipped"]``; NaN or infinite reports, a report of the wrong shape or not made
    of numbers, and an action that is not an integer in 0..S-1 (1.7 and "1" are refused, not
    rounded) raise ``ValueError`` naming the buyer.

    The mechanism's outcome is checked before it is used: experiments [1, n, k, S] must be
    row-stochastic within 1e-9 (never renormalised) and payments [1, n] finite; otherwise
    ``ValueError``.

    ## Rewards

    0 after the report phase. After the act phase: one buyer, scale * u(w, a) - p minus the payoff
    of acting on its prior (so an uninformed buyer who acts on its prior earns 0 on average);
    several buyers, v_i (x_i - alpha sum_{j != i} x_j) - p_i with x_i = 1[a_i = w].

    ## Episode End

    All agents terminate after the act phase (two ``step`` calls). ``infos[agent]`` then carries
    ``state``, ``signal``, ``experiment``, ``payment``, ``revenue``, ``expected_gain`` (the
    buyer's payoff before payments when best-responding, in expectation over the state) and
    ``clipped``. ``state()`` is the true state (one-hot; zeros before it is drawn) followed by every
    buyer's type (``state_space`` matches).

    ## Arguments

    - ``setting``: a named data-market setting, a JSON path or a ``DataMarketSetting``
      (default ``"dm-2buyers-uniform-a0.5"``).
    - ``mechanism``: a mechanism object or a registered name (``"theory"``, ``"posted-price"``,
      ``"data-market-net:DIR"`` for a trained checkpoint; default ``"theory"``).
    - ``render_mode``: ``None``, ``"ansi"`` (``render()`` returns text) or ``"human"`` (prints it).

    >>> import infozoo
    >>> env = infozoo.make("data-market-v0", setting="dm-1buyer-uniform", mechanism="theory")
    >>> obs, infos = env.reset(seed=0)
    >>> reports = {a: {"report": o[:2], "action": 0} for a, o in obs.items()}  # truthful
    >>> obs, rewards, terms, truncs, infos = env.step(reports)
    >>> signal = {a: {"report": o[:2], "action": int(o[4:].argmax())} for a, o in obs.items()}  # obey
    >>> obs, rewards, terms, truncs, infos = env.step(signal)

    ## Version History

    - v0: initial release.
    """

    metadata = {"name": "data_market_v0", "render_modes": ["ansi", "human"], "is_parallelizable": True,
                "collectively_observable": False}

    def __init__(self, setting: Any = "dm-2buyers-uniform-a0.5", mechanism: Any = "theory",
                 render_mode: str | None = None) -> None:
        from infozoo.registry import load_setting, make_mechanism

        check_render_mode(render_mode, self.metadata)
        self.setting: DataMarketSetting = load_setting(setting, domain="data-market")
        self.mechanism = make_mechanism(mechanism, self.setting)
        self.render_mode = render_mode
        s = self.setting
        n, d, k = s.buyers, s.type_dim, s.states
        self.possible_agents = [f"buyer_{i}" for i in range(n)]
        self.agents: list[str] = []
        self._low = s.low().numpy()
        self._high = s.high().numpy()
        # unbounded value distributions: the report box stops at a high quantile, observations do not
        type_high = self._high.copy()
        if s.multi and s.values.kind != "uniform":
            type_high[:] = np.inf
        obs_low = np.concatenate([self._low, np.zeros((n, 2 + k))], 1).astype(np.float64)
        obs_high = np.concatenate([type_high, np.ones((n, 1)), np.full((n, 1), np.inf), np.ones((n, k))],
                                  1).astype(np.float64)
        obs_low[:, d + 1] = -np.inf
        self._obs_spaces = {a: spaces.Box(obs_low[i], obs_high[i], (d + 2 + k,), np.float64)
                            for i, a in enumerate(self.possible_agents)}
        self._act_spaces = {a: spaces.Dict({"report": spaces.Box(self._low[i].astype(np.float64),
                                                                 self._high[i].astype(np.float64), (d,), np.float64),
                                            "action": spaces.Discrete(k)})
                            for i, a in enumerate(self.possible_agents)}
        self.state_space = spaces.Box(np.concatenate([np.zeros(k), self._low.flatten()]).astype(np.float64),
                                      np.concatenate([np.ones(k), type_high.flatten()]).astype(np.float64),
                                      (k + n * d,), np.float64)
        self._generator = torch_generator(None)
        self._np_rng = np.random.default_rng()
        self._types = np.zeros((n, d))
        self._phase = REPORT
        self._w = -1
        self._signals = np.zeros(n, dtype=np.int64)
        self._exp = np.zeros((n, k, k))
        self._pay = np.zeros(n)
        self._clipped = np.zeros(n, dtype=bool)
        self._last: dict[str, Any] | None = None

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Dict:
        return self._act_spaces[agent]

    def _obs(self) -> dict[str, np.ndarray]:
        k = self.setting.states
        out = {}
        for i, a in enumerate(self.possible_agents):
            sig = np.zeros(k)
            if self._phase == ACT:
                sig[self._signals[i]] = 1.0
            price = self._pay[i] if self._phase == ACT else 0.0
            out[a] = np.concatenate([self._types[i], [float(self._phase), price], sig]).astype(np.float64)
        return out

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._generator = torch_generator(seed)
            self._np_rng = np.random.default_rng(seed)
        self._types = self.setting.sample(1, self._generator)[0].numpy()
        self.agents = list(self.possible_agents)
        self._phase = REPORT
        self._w = -1
        self._pay = np.zeros(self.setting.buyers)
        self._last = None
        return self._obs(), {a: {} for a in self.agents}

    def _reports(self, actions: dict[str, Any]) -> np.ndarray:
        n, d = self.setting.buyers, self.setting.type_dim
        reports = np.empty((n, d))
        for i, a in enumerate(self.possible_agents):
            act = actions[a]
            reports[i] = box_action(a, _entry(a, act, "report"), (d,), "report",
                                    f"a type vector of shape ({d},) of finite numbers")
        return reports

    def _check_outcome(self, out: Any) -> tuple[np.ndarray, np.ndarray]:
        """The experiments [n, k, S] and payments [n] of one outcome, or a ``ValueError``."""
        s = self.setting
        n, k = s.buyers, s.states
        mech = getattr(self.mechanism, "name", type(self.mechanism).__name__)
        exp, pay = getattr(out, "experiment", None), getattr(out, "payment", None)
        if not isinstance(exp, torch.Tensor) or not isinstance(pay, torch.Tensor):
            raise ValueError(f"mechanism {mech!r} returned {type(out).__name__}; expected a SchemeOutcome")
        if tuple(exp.shape) != (1, n, k, s.signals) or tuple(pay.shape) != (1, n):
            raise ValueError(f"mechanism {mech!r} returned experiments {tuple(exp.shape)} and payments "
                             f"{tuple(pay.shape)}; expected [1, {n}, {k}, {s.signals}] and [1, {n}]")
        if not torch.isfinite(pay).all():
            i = int((~torch.isfinite(pay[0])).nonzero()[0])
            raise ValueError(f"mechanism {mech!r} returned a NaN or infinite price for buyer_{i}")
        e = exp[0].double()
        for i in range(n):
            try:
                check_experiment(e[i], k, s.signals, tol=1e-9)
            except ValueError as err:
                dev = max(float((e[i].sum(-1) - 1).abs().max()), float((-e[i]).max()))
                raise ValueError(f"mechanism {mech!r}, experiment of buyer_{i}: {err} (off by {dev:.3g}; "
                                 "rows must be probability vectors within 1e-9)") from None
        e = e.clamp_min(0)  # within 1e-9 of row-stochastic: make it exact for sampling
        return (e / e.sum(-1, keepdim=True)).numpy(), pay[0].double().numpy()

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        check_step(self.agents, actions)
        s = self.setting
        n, k = s.buyers, s.states
        agents = list(self.agents)
        if self._phase == REPORT:
            raw = self._reports(actions)
            rep = s.clip(torch.from_numpy(raw).unsqueeze(0))
            self._clipped = np.any(np.abs(rep[0].numpy() - raw) > 1e-12, axis=1)
            with torch.no_grad():
                out = self.mechanism(rep)
            self._exp, self._pay = self._check_outcome(out)
            prior = self._types[0, :k] if not s.multi else np.asarray(s.common_prior)
            self._w = int(self._np_rng.choice(k, p=prior / prior.sum()))
            self._signals = np.array([self._np_rng.choice(k, p=self._exp[i, self._w]) for i in range(n)])
            self._phase = ACT
            infos = {a: {"clipped": bool(self._clipped[i]), "payment": float(self._pay[i])}
                     for i, a in enumerate(agents)}
            return (self._obs(), {a: 0.0 for a in agents}, {a: False for a in agents},
                    {a: False for a in agents}, infos)
        acts = np.empty(n, dtype=np.int64)
        for i, a in enumerate(agents):
            act = actions[a]
            acts[i] = discrete_action(a, _entry(a, act, "action"), k)
        match = (acts == self._w).astype(np.float64)
        types_t = torch.from_numpy(self._types).unsqueeze(0)
        if s.multi:
            v = self._types[:, 0]
            payoff = v * (match - s.externality * (match.sum() - match))
        else:
            u = s.payoff_matrix().numpy()
            scale = self._types[0, k] if s.scale is not None else 1.0
            prior_pay = (self._types[0, :k] @ u).max()
            payoff = np.array([scale * (u[self._w, acts[0]] - prior_pay)])
        rewards_arr = payoff - self._pay
        with torch.no_grad():
            expected = gains(s, types_t, torch.from_numpy(self._exp).unsqueeze(0))[0].numpy()
        rewards = {a: float(rewards_arr[i]) for i, a in enumerate(agents)}
        revenue = float(self._pay.sum())
        infos = {a: {"state": self._w, "signal": int(self._signals[i]), "action": int(acts[i]),
                     "experiment": self._exp[i].copy(), "payment": float(self._pay[i]), "revenue": revenue,
                     "expected_gain": float(expected[i]), "clipped": bool(self._clipped[i])}
                 for i, a in enumerate(agents)}
        self._last = {"acts": acts, "rewards": rewards_arr}
        obs = self._obs()
        self.agents = []
        return obs, rewards, {a: True for a in agents}, {a: False for a in agents}, infos

    def state(self) -> np.ndarray:
        k = self.setting.states
        w = np.zeros(k)
        if self._w >= 0:
            w[self._w] = 1.0
        return np.concatenate([w, self._types.flatten()]).astype(np.float64)

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        s = self.setting
        mech = getattr(self.mechanism, "name", type(self.mechanism).__name__)
        lines = [f"data market {s.name or ''} ({s.buyers} buyer(s), {s.states} states, mechanism {mech}); "
                 f"phase {'report' if self._phase == REPORT else 'act'}"]
        if self._w >= 0:
            lines.append(f"  state {self._w}")
        for i, a in enumerate(self.possible_agents):
            line = f"  {a}: type {np.round(self._types[i], 3).tolist()}"
            if self._phase == ACT or self._last is not None:
                line += (f" experiment {np.round(self._exp[i], 3).tolist()} pays {self._pay[i]:.3f}"
                         f" signal {int(self._signals[i])}")
            if self._last is not None:
                line += f" action {int(self._last['acts'][i])} reward {self._last['rewards'][i]:.3f}"
            lines.append(line)
        text = "\n".join(lines)
        return emit(text, self.render_mode)

    def close(self) -> None:
        pass


def _entry(agent: str, action: Any, key: str) -> Any:
    """``action[key]`` of a Dict action (a bare value stands for the entry itself)."""
    if not isinstance(action, dict):
        return action
    if key not in action:
        raise ValueError(f"action of {agent} has no {key!r} entry; expected {{'report': ..., 'action': ...}}")
    return action[key]
