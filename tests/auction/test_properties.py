"""Property-based checks over random settings and bid profiles (hypothesis): every mechanism's
outcome is feasible and individually rational for truthful bids, and payments are finite."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infozoo.envs.auction.mechanism import over_allocation, utility
from infozoo.envs.auction.settings import AuctionSetting, DiscreteValues, UniformValues
from infozoo.registry import make_mechanism


@st.composite
def auction_settings(draw, discrete=None):
    n = draw(st.integers(1, 3))
    m = draw(st.integers(1, 3))
    valuation = draw(st.sampled_from(["additive", "unit-demand"]))
    if discrete is None:
        discrete = draw(st.booleans())
    if discrete:
        k = draw(st.integers(1, 3))
        support = sorted(draw(st.sets(st.integers(0, 20), min_size=k, max_size=k)))
        w = draw(st.lists(st.integers(1, 5), min_size=k, max_size=k))
        values = DiscreteValues(tuple(float(x) for x in support), tuple(x / sum(w) for x in w))
    else:
        lows = draw(st.lists(st.floats(0, 5), min_size=n * m, max_size=n * m))
        widths = draw(st.lists(st.floats(0.1, 5), min_size=n * m, max_size=n * m))
        low = tuple(tuple(lows[i * m + j] for j in range(m)) for i in range(n))
        high = tuple(tuple(lows[i * m + j] + widths[i * m + j] for j in range(m)) for i in range(n))
        values = UniformValues(low, high)
    return AuctionSetting(n, m, valuation, values, name="random")


def _check(setting, name, seed):
    mech = make_mechanism(name, setting)
    v = setting.sample(256, torch.Generator().manual_seed(seed))
    out = mech(v)
    assert torch.isfinite(out.payment).all() and torch.isfinite(out.allocation).all()
    assert (out.allocation >= -1e-12).all()
    assert float(over_allocation(out.allocation, setting.unit_demand).max()) <= 1e-9
    if mech.strategyproof:  # IR for truthful bids (first price is IR too: pays at most its bid)
        assert float(utility(v, out).min()) >= -1e-9
    else:
        assert float(utility(v, out).min()) >= -1e-9


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(auction_settings(), st.integers(0, 10_000))
def test_vcg_feasible_and_ir(setting, seed):
    _check(setting, "vcg", seed)


@SETTINGS
@given(auction_settings(), st.integers(0, 10_000))
def test_first_price_feasible_and_ir(setting, seed):
    _check(setting, "first-price", seed)


@SETTINGS
@given(auction_settings(), st.integers(0, 10_000))
def test_bundle_feasible_and_ir(setting, seed):
    _check(setting, "bundle", seed)


@SETTINGS
@given(auction_settings(), st.integers(0, 10_000))
def test_myerson_feasible_and_ir(setting, seed):
    if setting.unit_demand:
        with pytest.raises(ValueError, match="additive"):
            make_mechanism("myerson", setting)
        return
    _check(setting, "myerson", seed)


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 2), st.integers(1, 2), st.sampled_from(["additive", "unit-demand"]),
       st.integers(0, 10_000))
def test_lp_optimal_feasible_and_ir(n, m, valuation, seed):
    s = AuctionSetting(n, m, valuation, DiscreteValues((1.0, 4.0), (0.6, 0.4)))
    _check(s, "lp-optimal", seed)
