"""Fuzzing (hypothesis) of everything that crosses into infozoo from outside: setting JSON, agents'
actions in every registered environment, and what a custom mechanism returns. The contract under
test: the input is either accepted and then sound (finite rewards, observations in their spaces,
outcomes feasible), or refused with a ``ValueError``; never another exception, never silently.

Deterministic (``derandomize``) and small, so the suite runs in CI in well under a minute.
"""

import importlib.util
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infozoo
from infozoo import registry
from infozoo.envs.auction.mechanism import Outcome
from infozoo.envs.data_market.experiments import SchemeOutcome

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
NEEDS = {"spread-po-v0": "mpe2"}

# ---- JSON values: everything a hand-written file may hold ------------------------------------------

NUMBERS = st.one_of(st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True, width=64),
                    st.sampled_from([0, 1, 0.5, -1e-12, 1e300, 2]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=6),
                    st.sampled_from(["uniform", "discrete", "beta", "dirichlet", "exponential", "mixture",
                                     "additive", "unit-demand", "ex-post", "bayesian", "auction", "data-market"]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                    max_leaves=12)

BASES = [registry.load_setting(name).to_dict() for name in registry.setting_names()]


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


@st.composite
def setting_docs(draw):
    """A built-in setting's JSON with a few random edits: a value replaced, a key dropped or added."""
    doc = draw(st.sampled_from(BASES))
    doc = __import__("copy").deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))[1:]))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        action = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON)
        elif action == "drop":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(JSON)
    return doc


@FUZZ
@given(setting_docs())
def test_setting_json_is_accepted_soundly_or_refused_with_a_value_error(doc):
    try:
        s = registry.load_setting(doc)
    except ValueError:
        return
    again = registry.load_setting(s.to_dict())
    assert registry.setting_id(again) == registry.setting_id(s)
    types = s.sample(8, torch.Generator().manual_seed(0))
    assert torch.isfinite(types).all()
    assert (types >= s.low(types.dtype) - 1e-9).all()
    if s.domain == "auction":
        assert (types <= s.high(types.dtype) + 1e-9).all()


# ---- agents' actions ----------------------------------------------------------------------------------

ENV_IDS = infozoo.list_envs()
_ENVS = {}


def _env(env_id):
    dep = NEEDS.get(env_id)
    if dep and importlib.util.find_spec(dep) is None:
        pytest.skip(f"{env_id} needs {dep}")
    if env_id not in _ENVS:
        _ENVS[env_id] = infozoo.make(env_id)
    return _ENVS[env_id]


GARBAGE = st.one_of(
    JSON,
    st.builds(lambda shape, fill: np.full(shape, fill), st.lists(st.integers(0, 3), max_size=2).map(tuple),
              st.one_of(NUMBERS.filter(lambda x: not isinstance(x, bool)), st.booleans())),
    st.builds(lambda x: np.float32(x), st.floats(width=32)),
)


@st.composite
def action(draw, space, seed):
    """A valid action of ``space`` (most of the time), or something else."""
    if draw(st.integers(0, 3)) > 0:
        space.seed(seed)
        a = space.sample()
        if isinstance(a, dict) and draw(st.booleans()):  # one entry of a Dict action broken
            a = {**a, draw(st.sampled_from(sorted(a))): draw(GARBAGE)}
        return a
    return draw(GARBAGE)


@pytest.mark.parametrize("env_id", ENV_IDS)
@FUZZ
@given(data=st.data())
def test_actions_are_used_soundly_or_refused_naming_the_agent(env_id, data):
    env = _env(env_id)
    obs, _ = env.reset(seed=data.draw(st.integers(0, 10_000), label="seed"))
    for step in range(data.draw(st.integers(1, 3), label="steps")):
        if not env.agents:
            break
        actions = {a: data.draw(action(env.action_space(a), step), label=a) for a in env.agents}
        try:
            obs, rewards, *_ = env.step(actions)
        except ValueError as err:
            assert any(a in str(err) for a in env.possible_agents) or "designer" in str(err), str(err)
            return
        for a, o in obs.items():
            assert env.observation_space(a).contains(np.asarray(o, dtype=env.observation_space(a).dtype)), (a, o)
        assert all(isinstance(r, float) and math.isfinite(r) for r in rewards.values()), rewards


# ---- what a custom mechanism returns ----------------------------------------------------------------

VALUES = st.one_of(st.floats(-0.5, 1.5), st.sampled_from([0.0, 1.0, 0.5, 1 + 1e-12, -1e-12, float("nan"),
                                                           float("inf"), 2.0]))


@st.composite
def tensors(draw, shape):
    """A tensor of ``shape`` (or of a nearby wrong shape), float32 or float64, with odd entries."""
    if draw(st.integers(0, 4)) == 0:
        shape = tuple(max(1, d + draw(st.integers(-1, 1))) for d in shape)[:draw(st.integers(1, len(shape)))]
    dtype = draw(st.sampled_from([torch.float64, torch.float32]))
    base = draw(st.sampled_from(["valid", "odd"]))
    if base == "valid":
        x = torch.rand(shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 99))), dtype=dtype)
    else:
        x = torch.full(shape, draw(VALUES), dtype=dtype)
    return x


class Replay:
    """A custom mechanism that answers every call with the outcome it was given."""

    strategyproof = False

    def __init__(self, make):
        self.make = make

    def __call__(self, bids):
        return self.make()


@pytest.mark.parametrize("setting", ["additive-2x2-uniform", "unit-2x2-uniform"])
@FUZZ
@given(data=st.data())
def test_auction_outcomes_are_checked_before_use(setting, data):
    s = registry.load_setting(setting)
    n, m = s.shape
    alloc = data.draw(tensors((1, n, m)), label="allocation")
    if data.draw(st.booleans(), label="feasible"):  # a feasible draw, scaled onto the simplex
        alloc = alloc.abs().nan_to_num(0.5, 0.5, 0.5) / (n * m)
    pay = data.draw(tensors((1, n)), label="payment")
    try:
        env = infozoo.make("auction-v0", setting=s, mechanism=Replay(lambda: Outcome(alloc, pay)))
        obs, _ = env.reset(seed=0)
        _, rewards, *_ = env.step(obs)
    except ValueError:
        return
    tol = 1e-9 if alloc.dtype == torch.float64 else 1e-6
    assert alloc.shape == (1, n, m) and pay.shape == (1, n)
    assert torch.isfinite(alloc).all() and torch.isfinite(pay).all()
    assert (alloc >= -tol).all() and (alloc <= 1 + tol).all() and (alloc.sum(1) <= 1 + tol).all()
    assert not s.unit_demand or (alloc.sum(2) <= 1 + tol).all()
    assert all(math.isfinite(r) for r in rewards.values())


@FUZZ
@given(data=st.data())
def test_evaluate_refuses_malformed_outcomes(data):
    s = registry.load_setting("additive-2x2-uniform")
    alloc, pay = data.draw(tensors((1, 2, 2)), label="allocation"), data.draw(tensors((1, 2)), label="payment")

    def batch(x):  # the drawn outcome for every one of the 16 profiles (a wrong shape stays wrong)
        return x.expand(16, *x.shape[1:]) if x.shape[0] == 1 else x

    def make():
        return Outcome(batch(alloc), batch(pay))

    from infozoo.envs.auction.metrics import evaluate

    try:
        r = evaluate(s, Replay(make), n=16, regret_profiles=2, regret_restarts=1, regret_steps=1)
    except ValueError:
        return
    assert math.isfinite(r["revenue"]) and alloc.shape == (1, 2, 2) and pay.shape == (1, 2)


@pytest.mark.parametrize("setting", ["dm-1buyer-uniform", "dm-2buyers-uniform-a0.5"])
@FUZZ
@given(data=st.data())
def test_data_market_outcomes_are_checked_before_use(setting, data):
    s = registry.load_setting(setting)
    n, k = s.buyers, s.states
    exp = data.draw(tensors((1, n, k, k)), label="experiment")
    if data.draw(st.booleans(), label="stochastic"):
        exp = exp.abs().nan_to_num(1.0, 1.0, 1.0) + 1e-3
        exp = exp / exp.sum(-1, keepdim=True)
    pay = data.draw(tensors((1, n)), label="payment")
    try:
        env = infozoo.make("data-market-v0", setting=s, mechanism=Replay(lambda: SchemeOutcome(exp, pay)))
        obs, _ = env.reset(seed=0)
        env.step({a: {"report": o[:s.type_dim], "action": 0} for a, o in obs.items()})
    except ValueError:
        return
    e = exp.double()
    assert exp.shape == (1, n, k, k) and pay.shape == (1, n) and torch.isfinite(pay).all()
    assert (e >= -1e-9).all() and ((e.sum(-1) - 1).abs() <= 1e-9).all()
