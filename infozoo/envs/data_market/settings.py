"""Data-market settings: a seller of information about a state of the world, and its buyers.

The world has ``states`` states w = 0 .. k-1; every buyer takes an action a in the same set
(signals are action recommendations, so there are as many signals as actions) and earns
``payoff[w][a]`` (default: 1 for matching the state, 0 otherwise). For two states we write
theta = P(w = 0), so a buyer's prior is the vector (theta, 1 - theta).

**One buyer** (Bergemann, Bonatti and Smolin, "The Design and Price of Information", AER 2018):
the buyer's private type is its prior belief theta, drawn from ``prior``:

- ``uniform``: theta ~ U[0, 1] (two states; for k states use ``dirichlet`` with ones),
- ``beta``: theta ~ Beta(a, b); ``beta-mixture``: a mixture of Betas (``weights``, ``a``, ``b``),
- ``dirichlet``: the prior vector ~ Dirichlet(``alpha``) (k states),
- ``discrete``: finitely many types: ``support`` (theta numbers for two states, or prior vectors)
  with ``probs`` (e.g. the two-type example theta_L = 1/5, theta_H = 7/10).

Optionally the type is "enlarged" by a private scale v (``scale``: uniform low/high): the buyer's
payoffs are v * payoff.

**Several buyers** (Bonatti, Dahleh, Horner and Saeedi's competitive setting, as used by
Ravindranath, Jiang and Parkes, "Data Market Design through Deep Learning"): a common known
``common_prior``; buyer i privately values matching the state at v_i, drawn independently from
``values`` (``uniform`` with one low/high or one per buyer, ``exponential`` with ``rate``, or a
``mixture`` of those); buyer i's payoff is v_i * (x_i - alpha * sum_{j != i} x_j) with
x_i = 1[a_i = w] and ``externality`` alpha >= 0. If buyer i does not take part, the seller can
inform the others fully, so its outside option is v_i * (max_w prior_w - alpha (n - 1)).
``incentive`` is ``"ex-post"`` (truthful reporting optimal whatever the others report) or
``"bayesian"`` (optimal in expectation over the others' values).

JSON forms::

    {"domain": "data-market", "buyers": 1, "states": 2,
     "prior": {"kind": "beta-mixture", "weights": [0.5, 0.5], "a": [8, 60], "b": [30, 30]}}
    {"domain": "data-market", "buyers": 2, "states": 2, "common_prior": [0.5, 0.5],
     "externality": 0.5, "incentive": "ex-post", "values": {"kind": "exponential", "rate": 1.0}}
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

PRIOR_KINDS = ("uniform", "beta", "beta-mixture", "dirichlet", "discrete")
VALUE_KINDS = ("uniform", "exponential", "mixture")
INCENTIVES = ("ex-post", "bayesian")
SIMPLEX_TOL = 1e-9


def _err(msg: str) -> ValueError:
    return ValueError(f"data-market setting: {msg}")


def check_simplex(p: Any, what: str, k: int | None = None) -> tuple[float, ...]:
    """``p`` as a tuple of floats on the probability simplex (length ``k`` if given), or a
    ``ValueError`` that says what is wrong."""
    if not isinstance(p, list | tuple) or not p:
        raise _err(f"{what} must be a non-empty list of probabilities, got {p!r}")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in p):
        raise _err(f"{what} must contain finite numbers, got {p!r}")
    if k is not None and len(p) != k:
        raise _err(f"{what} must have {k} entries (one per state), got {len(p)}")
    if any(x < 0 for x in p) or abs(sum(p) - 1) > SIMPLEX_TOL:
        raise _err(f"{what} must lie on the probability simplex (entries >= 0 summing to 1); "
                   f"got {list(p)} with sum {sum(p)}")
    return tuple(float(x) for x in p)


def _floats(what: str, xs: Any, positive: bool = False) -> tuple[float, ...]:
    if not isinstance(xs, list | tuple) or not xs or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in xs):
        raise _err(f"{what} must be a non-empty list of finite numbers, got {xs!r}")
    if positive and any(x <= 0 for x in xs):
        raise _err(f"{what} must be positive, got {list(xs)}")
    return tuple(float(x) for x in xs)


def _number(what: str, x: Any, low: float | None = None) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        raise _err(f"{what} must be a finite number, got {x!r}")
    if low is not None and x < low:
        raise _err(f"{what} must be >= {low}, got {x}")
    return float(x)


# ---- one buyer: distributions of the prior belief --------------------------------------------


@dataclass(frozen=True)
class Prior:
    """Distribution of the buyer's prior belief (its private type). Fields by ``kind``:
    ``beta``/``beta-mixture``: ``weights``, ``a``, ``b``; ``dirichlet``: ``alpha``;
    ``discrete``: ``support`` (prior vectors) and ``probs``; ``uniform``: none."""

    kind: str
    states: int = 2
    weights: tuple[float, ...] = ()
    a: tuple[float, ...] = ()
    b: tuple[float, ...] = ()
    alpha: tuple[float, ...] = ()
    support: tuple[tuple[float, ...], ...] = ()
    probs: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in PRIOR_KINDS:
            raise _err(f"unknown prior kind {self.kind!r}; valid: {', '.join(PRIOR_KINDS)}")
        binary_only = ("uniform", "beta", "beta-mixture")
        if self.kind in binary_only and self.states != 2:
            raise _err(f"prior {self.kind!r} is for two states (theta = P(w=0)); for {self.states} "
                       "states use 'dirichlet' or 'discrete'")
        if self.kind in ("beta", "beta-mixture"):
            if not (len(self.weights) == len(self.a) == len(self.b)) or not self.a:
                raise _err("beta-mixture needs 'weights', 'a' and 'b' of equal length")
            if any(x <= 0 for x in self.a + self.b):
                raise _err("Beta parameters 'a' and 'b' must be positive")
            check_simplex(list(self.weights), "beta-mixture 'weights'")
        if self.kind == "dirichlet":
            if len(self.alpha) != self.states or any(x <= 0 for x in self.alpha):
                raise _err(f"dirichlet needs 'alpha': {self.states} positive numbers")
        if self.kind == "discrete":
            if not self.support or len(self.support) != len(self.probs):
                raise _err("discrete prior needs 'support' and 'probs' of equal length")
            for s in self.support:
                check_simplex(list(s), "each point of the discrete prior's support", self.states)
            check_simplex(list(self.probs), "discrete prior 'probs'")

    @property
    def discrete(self) -> bool:
        return self.kind == "discrete"

    def sample(self, batch: int, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``batch`` prior vectors [batch, k]."""
        if self.kind == "uniform":
            theta = torch.rand(batch, generator=generator, dtype=dtype)
            return torch.stack([theta, 1 - theta], dim=-1)
        if self.kind in ("beta", "beta-mixture"):
            comp = torch.multinomial(torch.tensor(self.weights, dtype=torch.float64), batch, True,
                                     generator=generator)
            a = torch.tensor(self.a, dtype=torch.float64)[comp]
            b = torch.tensor(self.b, dtype=torch.float64)[comp]
            x, y = _gamma(a, generator), _gamma(b, generator)
            theta = (x / (x + y)).to(dtype)
            return torch.stack([theta, 1 - theta], dim=-1)
        if self.kind == "dirichlet":
            alpha = torch.tensor(self.alpha, dtype=torch.float64).expand(batch, self.states)
            g = _gamma(alpha.reshape(-1), generator).reshape(batch, self.states)
            return (g / g.sum(-1, keepdim=True)).to(dtype)
        idx = torch.multinomial(torch.tensor(self.probs, dtype=torch.float64), batch, True, generator=generator)
        return torch.tensor(self.support, dtype=dtype)[idx]

    def types(self, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """Discrete priors: every type [T, k] and its probability [T]."""
        if not self.discrete:
            raise _err(f"prior {self.kind!r} is continuous; types() needs a discrete prior")
        return torch.tensor(self.support, dtype=dtype), torch.tensor(self.probs, dtype=dtype)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        if self.kind in ("beta", "beta-mixture"):
            d.update(weights=list(self.weights), a=list(self.a), b=list(self.b))
        elif self.kind == "dirichlet":
            d["alpha"] = list(self.alpha)
        elif self.kind == "discrete":
            binary = self.states == 2
            d.update(support=[s[0] if binary else list(s) for s in self.support], probs=list(self.probs))
        return d


def _gamma(conc: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Gamma(conc, 1) draws from an explicit generator (Marsaglia-Tsang, with the boost for
    conc < 1), so every draw in infozoo stays seeded."""
    boost = conc < 1
    d = torch.where(boost, conc + 1, conc) - 1 / 3
    c = 1 / torch.sqrt(9 * d)
    out = torch.empty_like(conc)
    todo = torch.ones_like(conc, dtype=torch.bool)
    while todo.any():
        idx = todo.nonzero().squeeze(-1)
        x = torch.randn(idx.numel(), generator=generator, dtype=conc.dtype)
        u = torch.rand(idx.numel(), generator=generator, dtype=conc.dtype)
        v = (1 + c[idx] * x) ** 3
        ok = (v > 0) & (torch.log(u.clamp_min(1e-300)) < 0.5 * x**2 + d[idx] - d[idx] * v
                        + d[idx] * torch.log(v.clamp_min(1e-300)))
        out[idx[ok]] = (d[idx] * v)[ok]
        todo[idx[ok]] = False
    u = torch.rand(conc.shape, generator=generator, dtype=conc.dtype)
    return torch.where(boost, out * u.clamp_min(1e-300) ** (1 / conc), out)


# ---- several buyers: distributions of the private values ---------------------------------------


@dataclass(frozen=True)
class Values:
    """Distribution of each buyer's private value v_i. ``uniform``: ``low``/``high`` per buyer;
    ``exponential``: ``rate``; ``mixture``: ``weights`` over ``components`` (uniform/exponential)."""

    kind: str
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    rate: float = 1.0
    weights: tuple[float, ...] = ()
    components: tuple[Values, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in VALUE_KINDS:
            raise _err(f"unknown value distribution {self.kind!r}; valid: {', '.join(VALUE_KINDS)}")
        if self.kind == "uniform":
            if len(self.low) != len(self.high) or not self.low:
                raise _err("uniform values need 'low' and 'high' (numbers or one per buyer)")
            if any(lo < 0 or not lo < hi for lo, hi in zip(self.low, self.high)):
                raise _err(f"uniform values need 0 <= low < high; got low {list(self.low)}, high {list(self.high)}")
        if self.kind == "exponential" and not self.rate > 0:
            raise _err(f"exponential 'rate' must be positive, got {self.rate}")
        if self.kind == "mixture":
            if not self.components or len(self.components) != len(self.weights):
                raise _err("mixture values need 'weights' and 'components' of equal length")
            if any(c.kind == "mixture" for c in self.components):
                raise _err("mixture components must be uniform or exponential")
            check_simplex(list(self.weights), "mixture 'weights'")

    def buyer(self, i: int) -> Values:
        """The (one-dimensional) distribution of buyer i's value."""
        if self.kind == "uniform" and len(self.low) > 1:
            return Values("uniform", (self.low[i],), (self.high[i],))
        if self.kind == "mixture":
            return Values("mixture", weights=self.weights, components=tuple(c.buyer(i) for c in self.components))
        return self

    def cdf(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) of a one-buyer distribution (see ``buyer``)."""
        if self.kind == "uniform":
            return ((v - self.low[0]) / (self.high[0] - self.low[0])).clamp(0, 1)
        if self.kind == "exponential":
            return 1 - torch.exp(-self.rate * v.clamp_min(0))
        return sum(w * c.cdf(v) for w, c in zip(self.weights, self.components))

    def pdf(self, v: torch.Tensor) -> torch.Tensor:
        if self.kind == "uniform":
            inside = (v >= self.low[0]) & (v <= self.high[0])
            return inside.to(v.dtype) / (self.high[0] - self.low[0])
        if self.kind == "exponential":
            return torch.where(v >= 0, self.rate * torch.exp(-self.rate * v.clamp_min(0)), torch.zeros_like(v))
        return sum(w * c.pdf(v) for w, c in zip(self.weights, self.components))

    def support(self) -> tuple[float, float]:
        """Lowest value and a high value (the 1 - 1e-6 quantile for unbounded distributions)."""
        if self.kind == "uniform":
            return min(self.low), max(self.high)
        if self.kind == "exponential":
            return 0.0, -math.log(1e-6) / self.rate
        sup = [c.support() for c in self.components]
        return min(s[0] for s in sup), max(s[1] for s in sup)

    def quantile(self, q: torch.Tensor) -> torch.Tensor:
        """F^{-1}(q) of a one-buyer distribution (bisection for mixtures)."""
        if self.kind == "uniform":
            return self.low[0] + q * (self.high[0] - self.low[0])
        if self.kind == "exponential":
            return -torch.log1p(-q.clamp(max=1 - 1e-15)) / self.rate
        lo = torch.full_like(q, self.support()[0])
        hi = torch.full_like(q, max(c.support()[1] * 10 if c.kind == "exponential" else c.support()[1]
                                    for c in self.components))
        for _ in range(80):
            mid = (lo + hi) / 2
            below = self.cdf(mid) < q
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return (lo + hi) / 2

    def sample(self, batch: int, n: int, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Values of ``n`` buyers, [batch, n]."""
        if self.kind == "uniform":
            low = torch.tensor(self.low if len(self.low) > 1 else self.low * n, dtype=dtype)
            high = torch.tensor(self.high if len(self.high) > 1 else self.high * n, dtype=dtype)
            return low + torch.rand(batch, n, generator=generator, dtype=dtype) * (high - low)
        if self.kind == "exponential":
            u = torch.rand(batch, n, generator=generator, dtype=dtype)
            return -torch.log1p(-u) / self.rate
        comp = torch.multinomial(torch.tensor(self.weights, dtype=torch.float64), batch * n, True,
                                 generator=generator).reshape(batch, n)
        draws = torch.stack([c.sample(batch, n, generator, dtype) for c in self.components], dim=-1)
        return draws.gather(-1, comp.unsqueeze(-1)).squeeze(-1)

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "uniform":
            if len(self.low) == 1:
                return {"kind": "uniform", "low": self.low[0], "high": self.high[0]}
            return {"kind": "uniform", "low": list(self.low), "high": list(self.high)}
        if self.kind == "exponential":
            return {"kind": "exponential", "rate": self.rate}
        return {"kind": "mixture", "weights": list(self.weights), "components": [c.to_dict() for c in self.components]}


# ---- the setting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DataMarketSetting:
    """A data market: one buyer with a private prior (``prior``), or several buyers with a common
    ``common_prior``, private values (``values``), an ``externality`` and an ``incentive`` notion.

    Reports (types) are vectors per buyer: the prior vector [k] (with the scale appended when
    ``scale`` is set) for one buyer, the value [1] for several buyers: ``type_dim``.
    """

    buyers: int
    states: int = 2
    prior: Prior | None = None
    common_prior: tuple[float, ...] | None = None
    values: Values | None = None
    externality: float = 0.0
    incentive: str = "ex-post"
    payoff: tuple[tuple[float, ...], ...] | None = None
    scale: tuple[float, float] | None = None
    name: str = ""
    domain: str = field(default="data-market", init=False)

    def __post_init__(self) -> None:
        if isinstance(self.buyers, bool) or not isinstance(self.buyers, int) or self.buyers < 1:
            raise _err(f"'buyers' must be a positive integer, got {self.buyers!r}")
        if isinstance(self.states, bool) or not isinstance(self.states, int) or self.states < 2:
            raise _err(f"'states' must be an integer >= 2, got {self.states!r}")
        k = self.states
        if self.payoff is not None:
            if len(self.payoff) != k or any(len(r) != k for r in self.payoff):
                raise _err(f"'payoff' must be a {k} x {k} table (states x actions)")
            if not all(math.isfinite(x) for r in self.payoff for x in r):
                raise _err("'payoff' must hold finite numbers")
        if self.incentive not in INCENTIVES:
            raise _err(f"unknown incentive {self.incentive!r}; valid: {', '.join(INCENTIVES)}")
        if self.buyers == 1:
            if self.prior is None:
                raise _err("one buyer needs a 'prior' (the distribution of its private belief)")
            if self.prior.states != k:
                raise _err(f"the prior is over {self.prior.states} states, the setting has {k}")
            if self.values is not None or self.common_prior is not None:
                raise _err("one buyer takes 'prior' (its private belief), not 'values'/'common_prior'")
            if self.scale is not None and not 0 < self.scale[0] < self.scale[1]:
                raise _err(f"'scale' needs 0 < low < high, got {self.scale}")
        else:
            if self.common_prior is None or self.values is None:
                raise _err("several buyers need a 'common_prior' and private 'values'")
            check_simplex(list(self.common_prior), "'common_prior'", k)
            if self.prior is not None or self.scale is not None:
                raise _err("several buyers take 'common_prior' and 'values', not 'prior'/'scale'")
            if self.values.kind == "uniform" and len(self.values.low) not in (1, self.buyers):
                raise _err(f"uniform 'low'/'high' must be numbers or lists of {self.buyers} (one per buyer)")
            if self.payoff is not None:
                raise _err("several buyers use the matching payoff v_i * (x_i - alpha x_j); 'payoff' is for one buyer")
            if not (math.isfinite(self.externality) and self.externality >= 0):
                raise _err(f"'externality' must be a number >= 0, got {self.externality}")

    # -- shapes -------------------------------------------------------------------------------
    @property
    def multi(self) -> bool:
        return self.buyers > 1

    @property
    def signals(self) -> int:
        return self.states

    @property
    def type_dim(self) -> int:
        if self.multi:
            return 1
        return self.states + (1 if self.scale is not None else 0)

    @property
    def discrete(self) -> bool:
        return not self.multi and self.prior is not None and self.prior.discrete and self.scale is None

    def payoff_matrix(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """u(w, a) [k, k]; matching payoff (identity) by default."""
        if self.payoff is None:
            return torch.eye(self.states, dtype=dtype)
        return torch.tensor(self.payoff, dtype=dtype)

    def prior_vector(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The common prior [k] (several buyers)."""
        if self.common_prior is None:
            raise _err("only settings with several buyers have a common prior")
        return torch.tensor(self.common_prior, dtype=dtype)

    def outside_option(self) -> float:
        """Several buyers: a buyer's outside option per unit of value, max_w prior_w - alpha (n - 1)."""
        return max(self.common_prior or (0.0,)) - self.externality * (self.buyers - 1)

    def low(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Lower end of each buyer's type box [n, d]."""
        if self.multi:
            lows = [self.values.buyer(i).support()[0] for i in range(self.buyers)]
            return torch.tensor(lows, dtype=dtype).unsqueeze(-1)
        low = [0.0] * self.states + ([self.scale[0]] if self.scale else [])
        return torch.tensor([low], dtype=dtype)

    def high(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Upper end of each buyer's type box [n, d] (a high quantile for unbounded values)."""
        if self.multi:
            highs = [self.values.buyer(i).support()[1] for i in range(self.buyers)]
            return torch.tensor(highs, dtype=dtype).unsqueeze(-1)
        high = [1.0] * self.states + ([self.scale[1]] if self.scale else [])
        return torch.tensor([high], dtype=dtype)

    # -- sampling -------------------------------------------------------------------------------
    def sample(self, batch: int, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``batch`` type profiles [batch, n, d]."""
        if self.multi:
            return self.values.sample(batch, self.buyers, generator, dtype).unsqueeze(-1)
        t = self.prior.sample(batch, generator, dtype)
        if self.scale is not None:
            s = self.scale[0] + torch.rand(batch, 1, generator=generator, dtype=dtype) * (self.scale[1] - self.scale[0])
            t = torch.cat([t, s], dim=-1)
        return t.unsqueeze(1)

    def type_space(self, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """Discrete one-buyer settings: every type profile [T, 1, k] and its probability [T]."""
        types, probs = self.prior.types(dtype)
        return types.unsqueeze(1), probs

    def clip(self, reports: torch.Tensor) -> torch.Tensor:
        """Project reports into the type space: values into their support box; prior vectors onto
        the simplex (negative parts dropped, renormalised; all-zero reports become uniform)."""
        if self.multi:
            return torch.clamp(reports, self.low(reports.dtype), self.high(reports.dtype))
        k = self.states
        p = reports[..., :k].clamp_min(0)
        s = p.sum(-1, keepdim=True)
        p = torch.where(s > 0, p / s.clamp_min(1e-300), torch.full_like(p, 1 / k))
        if self.scale is not None:
            return torch.cat([p, reports[..., k:].clamp(self.scale[0], self.scale[1])], dim=-1)
        return p

    # -- JSON -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"domain": "data-market", "buyers": self.buyers, "states": self.states}
        if self.multi:
            d.update(common_prior=list(self.common_prior), externality=self.externality,
                     incentive=self.incentive, values=self.values.to_dict())
        else:
            d["prior"] = self.prior.to_dict()
            if self.scale is not None:
                d["scale"] = {"kind": "uniform", "low": self.scale[0], "high": self.scale[1]}
        if self.payoff is not None:
            d["payoff"] = [list(r) for r in self.payoff]
        if self.name:
            d["name"] = self.name
        return d


def from_dict(data: dict[str, Any]) -> DataMarketSetting:
    """Build a setting from its JSON form; errors name the bad key and the valid choices."""
    if not isinstance(data, dict):
        raise _err("must be a JSON object")
    allowed = {"domain", "buyers", "states", "prior", "common_prior", "values", "externality",
               "incentive", "payoff", "scale", "name"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _err(f"unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(allowed))}")
    if "buyers" not in data:
        raise _err("missing key 'buyers'")
    k = data.get("states", 2)
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise _err(f"'states' must be an integer >= 2, got {k!r}")
    payoff = None
    if data.get("payoff") is not None:
        if not isinstance(data["payoff"], list):
            raise _err(f"'payoff' must be a {k} x {k} table")
        payoff = tuple(_floats("'payoff' row", r) for r in data["payoff"])
    prior = _prior(data["prior"], k) if "prior" in data else None
    values = _values(data["values"]) if "values" in data else None
    common = check_simplex(data["common_prior"], "'common_prior'", k) if "common_prior" in data else None
    scale = None
    if "scale" in data:
        s = data["scale"]
        if not isinstance(s, dict) or s.get("kind") != "uniform" or set(s) != {"kind", "low", "high"}:
            raise _err("'scale' must be {\"kind\": \"uniform\", \"low\": ..., \"high\": ...}")
        scale = (_number("scale 'low'", s["low"]), _number("scale 'high'", s["high"]))
    return DataMarketSetting(
        buyers=data["buyers"], states=k, prior=prior, common_prior=common, values=values,
        externality=_number("'externality'", data.get("externality", 0.0)),
        incentive=data.get("incentive", "ex-post"), payoff=payoff, scale=scale, name=str(data.get("name", "")))


def _keys(d: dict[str, Any], what: str, required: set[str], optional: set[str] = frozenset()) -> None:
    extra = sorted(set(d) - required - optional - {"kind"})
    missing = sorted(required - set(d))
    if extra or missing:
        raise _err(f"{what} takes the keys {', '.join(sorted(required | optional))}"
                   + (f"; unknown: {', '.join(extra)}" if extra else "")
                   + (f"; missing: {', '.join(missing)}" if missing else ""))


def _prior(d: Any, k: int) -> Prior:
    if not isinstance(d, dict) or d.get("kind") not in PRIOR_KINDS:
        kind = d.get("kind") if isinstance(d, dict) else d
        raise _err(f"unknown prior distribution {kind!r}; valid kinds: {', '.join(PRIOR_KINDS)}")
    kind = d["kind"]
    if kind == "uniform":
        _keys(d, "a uniform prior", set())
        return Prior("uniform", k)
    if kind == "beta":
        _keys(d, "a beta prior", {"a", "b"})
        return Prior("beta-mixture", k, (1.0,), (_number("beta 'a'", d["a"]),), (_number("beta 'b'", d["b"]),))
    if kind == "beta-mixture":
        _keys(d, "a beta-mixture prior", {"weights", "a", "b"})
        return Prior(kind, k, _floats("'weights'", d["weights"]), _floats("'a'", d["a"], True),
                     _floats("'b'", d["b"], True))
    if kind == "dirichlet":
        _keys(d, "a dirichlet prior", {"alpha"})
        return Prior(kind, k, alpha=_floats("dirichlet 'alpha'", d["alpha"], True))
    _keys(d, "a discrete prior", {"support", "probs"})
    if not isinstance(d["support"], list):
        raise _err("discrete prior 'support' must be a list of types")
    support = []
    for s in d["support"]:
        if k == 2 and isinstance(s, int | float) and not isinstance(s, bool):
            if not 0 <= s <= 1:
                raise _err(f"a prior theta = P(w=0) must lie in [0, 1] (on the simplex), got {s}")
            s = [float(s), 1 - float(s)]
        support.append(check_simplex(s, "each point of the discrete prior's support", k))
    return Prior("discrete", k, support=tuple(support), probs=_floats("'probs'", d["probs"]))


def _values(d: Any) -> Values:
    if not isinstance(d, dict) or d.get("kind") not in VALUE_KINDS:
        kind = d.get("kind") if isinstance(d, dict) else d
        raise _err(f"unknown value distribution {kind!r}; valid kinds: {', '.join(VALUE_KINDS)}")
    kind = d["kind"]
    if kind == "uniform":
        _keys(d, "uniform values", {"low", "high"})
        lo, hi = d["low"], d["high"]
        lo = (_number("'low'", lo),) if not isinstance(lo, list) else _floats("'low'", lo)
        hi = (_number("'high'", hi),) if not isinstance(hi, list) else _floats("'high'", hi)
        if len(lo) != len(hi):
            if len(lo) == 1:
                lo = lo * len(hi)
            elif len(hi) == 1:
                hi = hi * len(lo)
        return Values("uniform", lo, hi)
    if kind == "exponential":
        _keys(d, "exponential values", {"rate"})
        return Values("exponential", rate=_number("'rate'", d["rate"]))
    _keys(d, "mixture values", {"weights", "components"})
    if not isinstance(d["components"], list):
        raise _err("mixture 'components' must be a list of value distributions")
    return Values("mixture", weights=_floats("'weights'", d["weights"]),
                  components=tuple(_values(c) for c in d["components"]))


# ---- named settings -----------------------------------------------------------------------------


def one_buyer(prior: Prior, name: str = "") -> DataMarketSetting:
    return DataMarketSetting(1, prior.states, prior=prior, name=name)


def two_buyers(alpha: float, values: Values | None = None, theta: float = 0.5, incentive: str = "ex-post",
               name: str = "") -> DataMarketSetting:
    """Two buyers, binary state with common prior (theta, 1 - theta), externality ``alpha``."""
    return DataMarketSetting(2, 2, common_prior=(theta, 1 - theta), values=values or Values("uniform", (0.0,), (1.0,)),
                             externality=alpha, incentive=incentive, name=name)


TWO_TYPES = Prior("discrete", 2, support=((0.2, 1 - 0.2), (0.7, 1 - 0.7)), probs=(0.5, 0.5))
ALPHAS = (0.0, 0.25, 0.5, 1.0, 2.0)

NAMED_SETTINGS: dict[str, Callable[[], DataMarketSetting]] = {
    "dm-1buyer-uniform": lambda: one_buyer(Prior("uniform"), "dm-1buyer-uniform"),
    "dm-1buyer-two-types": lambda: one_buyer(TWO_TYPES, "dm-1buyer-two-types"),
    "dm-1buyer-beta-mixture": lambda: one_buyer(
        Prior("beta-mixture", 2, (0.5, 0.5), (8.0, 60.0), (30.0, 30.0)), "dm-1buyer-beta-mixture"),
    "dm-1buyer-enlarged": lambda: DataMarketSetting(1, 2, prior=Prior("uniform"), scale=(1.0, 2.0),
                                                    name="dm-1buyer-enlarged"),
    "dm-1buyer-dirichlet3": lambda: one_buyer(Prior("dirichlet", 3, alpha=(1.0, 1.0, 1.0)), "dm-1buyer-dirichlet3"),
    "dm-2buyers-uniform-a0.5-bic": lambda: two_buyers(0.5, incentive="bayesian", name="dm-2buyers-uniform-a0.5-bic"),
    "dm-2buyers-exponential-a0.5": lambda: two_buyers(0.5, Values("exponential", rate=1.0),
                                                      name="dm-2buyers-exponential-a0.5"),
    "dm-2buyers-asym-uniform-a0.5": lambda: two_buyers(0.5, Values("uniform", (0.0, 0.0), (1.0, 2.0)),
                                                       name="dm-2buyers-asym-uniform-a0.5"),
    "dm-2buyers-mixture-a0.5": lambda: two_buyers(
        0.5, Values("mixture", weights=(0.5, 0.5), components=(Values("uniform", (0.0,), (0.5,)),
                                                               Values("uniform", (2.0,), (3.0,)))),
        name="dm-2buyers-mixture-a0.5"),
}
for _a in ALPHAS:
    _n = f"dm-2buyers-uniform-a{_a:g}"
    NAMED_SETTINGS[_n] = (lambda a, n: lambda: two_buyers(a, name=n))(_a, _n)
