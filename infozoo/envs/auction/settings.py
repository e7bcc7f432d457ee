"""Auction settings: n bidders, m items, a valuation class and a value distribution.

Notation (as in RegretNet / RochetNet / GemNet): bidder i has a private value v_ij for item j;
``additive`` bidders value a bundle S at sum_{j in S} v_ij; ``unit-demand`` bidders at
max_{j in S} v_ij (and feasible allocations give each of them at most one item in total).

Value distributions:
- ``uniform``: v_ij ~ U[low_ij, high_ij], independent; ``low``/``high`` are n x m tables or one
  number for every bidder and item.
- ``discrete``: v_ij i.i.d. over ``support`` with ``probs`` (e.g. Yao's {3, 7} setting).

Values are non-negative (v_ij >= 0): every mechanism here (VCG, Myerson, menus) assumes a bidder
can always walk away with utility 0, so negative supports are refused, as in data markets.

JSON form (the CLI accepts a file path wherever it accepts a setting name)::

    {"domain": "auction", "bidders": 1, "items": 2, "valuation": "additive",
     "values": {"kind": "uniform", "low": [[4, 4]], "high": [[16, 7]]}}
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

VALUATIONS = ("additive", "unit-demand")
VALUE_KINDS = ("uniform", "discrete")


@dataclass(frozen=True)
class UniformValues:
    """v_ij ~ U[low_ij, high_ij] independently (tables of shape n x m)."""

    low: tuple[tuple[float, ...], ...]
    high: tuple[tuple[float, ...], ...]
    kind: str = field(default="uniform", init=False)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "uniform", "low": [list(r) for r in self.low],
                "high": [list(r) for r in self.high]}


@dataclass(frozen=True)
class DiscreteValues:
    """v_ij i.i.d. on ``support`` with probabilities ``probs``."""

    support: tuple[float, ...]
    probs: tuple[float, ...]
    kind: str = field(default="discrete", init=False)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "discrete", "support": list(self.support), "probs": list(self.probs)}


@dataclass(frozen=True)
class AuctionSetting:
    """A multi-item auction: ``bidders`` x ``items``, valuation class and value distribution.

    ``sample(B, generator)`` draws a batch of valuation profiles v of shape [B, n, m].
    """

    bidders: int
    items: int
    valuation: str
    values: UniformValues | DiscreteValues
    name: str = ""
    domain: str = field(default="auction", init=False)

    def __post_init__(self) -> None:
        _check_int("bidders", self.bidders)
        _check_int("items", self.items)
        if self.valuation not in VALUATIONS:
            raise ValueError(f"unknown valuation {self.valuation!r}; valid: {', '.join(VALUATIONS)}")
        if isinstance(self.values, UniformValues):
            for key in ("low", "high"):
                table = getattr(self.values, key)
                if len(table) != self.bidders or any(len(r) != self.items for r in table):
                    raise ValueError(f"uniform '{key}' must be a number or a {self.bidders} x "
                                     f"{self.items} table (bidders x items)")
                if not all(math.isfinite(x) for r in table for x in r):
                    raise ValueError(f"uniform '{key}' must be finite numbers")
            neg = [(i, j) for i in range(self.bidders) for j in range(self.items) if self.values.low[i][j] < 0]
            if neg:
                raise ValueError(f"uniform values must be non-negative (low >= 0); low is "
                                 f"{self.values.low[neg[0][0]][neg[0][1]]} at (bidder, item) {neg[0]}")
            bad = [(i, j) for i in range(self.bidders) for j in range(self.items)
                   if not self.values.low[i][j] < self.values.high[i][j]]
            if bad:
                raise ValueError(f"uniform values need low < high; fails at (bidder, item) {bad[0]}")
        elif isinstance(self.values, DiscreteValues):
            s, p = self.values.support, self.values.probs
            if len(s) == 0 or len(s) != len(p):
                raise ValueError("discrete values need a non-empty 'support' and 'probs' of equal length")
            if len(set(s)) != len(s) or list(s) != sorted(s):
                raise ValueError("discrete 'support' must be strictly increasing")
            if any(not math.isfinite(x) for x in s):
                raise ValueError("discrete 'support' must be finite numbers")
            if s[0] < 0:
                raise ValueError(f"discrete 'support' must be non-negative values, got {s[0]}")
            if not all(math.isfinite(q) and q >= 0 for q in p) or not abs(sum(p) - 1) <= 1e-9:
                raise ValueError(f"discrete 'probs' must be non-negative and sum to 1 (sum {sum(p)})")
        else:
            raise ValueError(f"values must be uniform or discrete; valid kinds: {', '.join(VALUE_KINDS)}")

    # -- shape of the value space ---------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return (self.bidders, self.items)

    @property
    def discrete(self) -> bool:
        return isinstance(self.values, DiscreteValues)

    @property
    def unit_demand(self) -> bool:
        return self.valuation == "unit-demand"

    def low(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Lower end of every bidder's value support, [n, m] (a fresh tensor)."""
        return self._bounds(dtype)[0].clone()

    def high(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Upper end of every bidder's value support, [n, m] (a fresh tensor)."""
        return self._bounds(dtype)[1].clone()

    def _bounds(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        cache = self.__dict__.setdefault("_bounds_cache", {})  # frozen: cache beside the fields
        if dtype not in cache:
            if isinstance(self.values, UniformValues):
                lo, hi = self.values.low, self.values.high
            else:
                lo = [[min(self.values.support)] * self.items] * self.bidders
                hi = [[max(self.values.support)] * self.items] * self.bidders
            cache[dtype] = (torch.tensor(lo, dtype=dtype), torch.tensor(hi, dtype=dtype))
        return cache[dtype]

    # -- sampling -------------------------------------------------------------------------
    def sample(self, batch: int, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Draw ``batch`` valuation profiles, a tensor [batch, n, m]."""
        shape = (batch, self.bidders, self.items)
        if isinstance(self.values, UniformValues):
            u = torch.rand(shape, generator=generator, dtype=dtype)
            low, high = self._bounds(dtype)
            return low + u * (high - low)
        probs = torch.tensor(self.values.probs, dtype=torch.float64)
        idx = torch.multinomial(probs, math.prod(shape), replacement=True, generator=generator)
        return torch.tensor(self.values.support, dtype=dtype)[idx].reshape(shape)

    def type_space(self, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """Discrete settings: every value vector of one bidder [T, m] and its probability [T]."""
        if not isinstance(self.values, DiscreteValues):
            raise ValueError(f"setting {self.name or '(unnamed)'} is continuous; "
                             "type_space needs a discrete setting")
        support = torch.tensor(self.values.support, dtype=dtype)
        probs = torch.tensor(self.values.probs, dtype=torch.float64)
        combos = list(itertools.product(range(len(support)), repeat=self.items))
        idx = torch.tensor(combos, dtype=torch.long)
        return support[idx], probs[idx].prod(dim=1).to(dtype)

    def clip(self, bids: torch.Tensor) -> torch.Tensor:
        """Clip bids into the value support box [low, high] (documented env behaviour)."""
        low, high = self._bounds(bids.dtype)
        return torch.clamp(bids, low, high)

    # -- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"domain": "auction", "bidders": self.bidders, "items": self.items,
                             "valuation": self.valuation, "values": self.values.to_dict()}
        if self.name:
            d["name"] = self.name
        return d


def from_dict(data: dict[str, Any]) -> AuctionSetting:
    """Build a setting from its JSON form; errors name the bad key and the valid choices."""
    if not isinstance(data, dict):
        raise ValueError("an auction setting must be a JSON object")
    allowed = {"domain", "bidders", "items", "valuation", "values", "name"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"auction setting: unknown key(s) {', '.join(unknown)}; "
                         f"valid keys: {', '.join(sorted(allowed))}")
    for key in ("bidders", "items", "valuation", "values"):
        if key not in data:
            raise ValueError(f"auction setting: missing key {key!r}")
    n, m = data["bidders"], data["items"]
    _check_int("bidders", n)
    _check_int("items", m)
    values = data["values"]
    if not isinstance(values, dict) or values.get("kind") not in VALUE_KINDS:
        raise ValueError(f"auction setting: 'values' needs a 'kind'; valid kinds: {', '.join(VALUE_KINDS)}")
    if values["kind"] == "uniform":
        extra = sorted(set(values) - {"kind", "low", "high"})
        if extra or "low" not in values or "high" not in values:
            raise ValueError("uniform values take exactly the keys 'kind', 'low', 'high'")
        dist: UniformValues | DiscreteValues = UniformValues(
            _table("low", values["low"], n, m), _table("high", values["high"], n, m))
    else:
        extra = sorted(set(values) - {"kind", "support", "probs"})
        if extra or "support" not in values or "probs" not in values:
            raise ValueError("discrete values take exactly the keys 'kind', 'support', 'probs'")
        dist = DiscreteValues(_floats("support", values["support"]), _floats("probs", values["probs"]))
    return AuctionSetting(n, m, data["valuation"], dist, name=str(data.get("name", "")))


def _check_int(key: str, x: Any) -> None:
    if isinstance(x, bool) or not isinstance(x, int) or x < 1:
        raise ValueError(f"auction setting: {key!r} must be a positive integer, got {x!r}")


def _floats(key: str, xs: Any) -> tuple[float, ...]:
    if not isinstance(xs, list) or not all(isinstance(x, int | float) and not isinstance(x, bool)
                                           for x in xs):
        raise ValueError(f"auction setting: {key!r} must be a list of numbers")
    return tuple(float(x) for x in xs)


def _table(key: str, x: Any, n: int, m: int) -> tuple[tuple[float, ...], ...]:
    if isinstance(x, int | float) and not isinstance(x, bool):
        return tuple(tuple(float(x) for _ in range(m)) for _ in range(n))
    if not isinstance(x, list) or len(x) != n:
        raise ValueError(f"uniform {key!r} must be a number or a {n} x {m} table (bidders x items)")
    rows = tuple(_floats(key, row) for row in x)
    if any(len(r) != m for r in rows):
        raise ValueError(f"uniform {key!r} must be a number or a {n} x {m} table (bidders x items)")
    return rows


def uniform(n: int, m: int, valuation: str = "additive", low: float = 0.0, high: float = 1.0,
            name: str = "") -> AuctionSetting:
    """n x m setting with every value i.i.d. U[low, high]."""
    table = lambda x: tuple(tuple(float(x) for _ in range(m)) for _ in range(n))  # noqa: E731
    return AuctionSetting(n, m, valuation, UniformValues(table(low), table(high)), name=name)


def _named(n: int, m: int, valuation: str) -> Callable[[], AuctionSetting]:
    prefix = "additive" if valuation == "additive" else "unit"
    return lambda: uniform(n, m, valuation, name=f"{prefix}-{n}x{m}-uniform")


NAMED_SETTINGS: dict[str, Callable[[], AuctionSetting]] = {
    f"{'additive' if v == 'additive' else 'unit'}-{n}x{m}-uniform": _named(n, m, v)
    for v, n, m in [("additive", 1, 2), ("additive", 2, 2), ("additive", 2, 3), ("additive", 2, 5),
                    ("additive", 3, 3), ("additive", 3, 10), ("additive", 5, 5),
                    ("additive", 5, 10), ("unit-demand", 1, 2), ("unit-demand", 2, 2),
                    ("unit-demand", 2, 3)]
}
NAMED_SETTINGS["additive-2x2-yao"] = lambda: AuctionSetting(
    2, 2, "additive", DiscreteValues((3.0, 7.0), (0.5, 0.5)), name="additive-2x2-yao")
