"""The auction mechanism contract.

A mechanism maps a batch of bid profiles b [B, n, m] to an ``Outcome``: an allocation
x [B, n, m] (x_ij = probability bidder i gets item j) and payments p [B, n]. It has an attribute
``strategyproof``: True when truthful bidding is a dominant strategy *by construction* (VCG, menu
mechanisms, affine maximizers), False otherwise (first price, RegretNet). Menu-based mechanisms
also expose ``menus(bids) -> (alloc [B, n, K, m], price [B, n, K])`` where bidder i's menu depends
on the other bids only.

Feasibility: every item is allocated at most once in total (sum_i x_ij <= 1), and for
unit-demand bidders each bidder gets at most one item in total (sum_j x_ij <= 1).

Utility of bidder i with true values v_i: u_i = <v_i, x_i> - p_i for additive valuations, and
also for unit-demand under a feasible (at most one item in expectation) lottery allocation, which
is the standard linear extension used by RegretNet and RochetNet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class Outcome:
    """Allocation x [B, n, m] and payment p [B, n] of a batch of auctions."""

    allocation: torch.Tensor
    payment: torch.Tensor

    def __post_init__(self) -> None:
        a, p = self.allocation, self.payment
        if a.dim() != 3 or p.dim() != 2 or a.shape[:2] != p.shape:
            raise ValueError(f"Outcome needs allocation [B, n, m] and payment [B, n]; "
                             f"got {tuple(a.shape)} and {tuple(p.shape)}")


@runtime_checkable
class Mechanism(Protocol):
    """``mechanism(bids [B, n, m]) -> Outcome``; ``strategyproof`` by construction or not."""

    strategyproof: bool

    def __call__(self, bids: torch.Tensor) -> Outcome: ...


@runtime_checkable
class MenuMechanism(Mechanism, Protocol):
    """A mechanism given by per-bidder menus that depend only on the other bids."""

    def menus(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


def utility(values: torch.Tensor, outcome: Outcome) -> torch.Tensor:
    """u_i = <v_i, x_i> - p_i, shape [B, n]."""
    return (values * outcome.allocation).sum(-1) - outcome.payment


def over_allocation(allocation: torch.Tensor, unit_demand: bool = False) -> torch.Tensor:
    """How far each profile is from feasible: max(0, sum_i x_ij - 1) over items (and over
    bidders' totals for unit-demand), maximised per profile; shape [B]."""
    excess = (allocation.sum(dim=1) - 1).clamp(min=0).amax(dim=-1)
    if unit_demand:
        excess = torch.maximum(excess, (allocation.sum(dim=2) - 1).clamp(min=0).amax(dim=-1))
    return excess


def check_bids(bids: torch.Tensor, bidders: int, items: int) -> torch.Tensor:
    """Validate a bid batch [B, n, m]; NaN or infinite bids raise a ValueError naming the bidder."""
    if not isinstance(bids, torch.Tensor):
        bids = torch.as_tensor(bids, dtype=torch.float64)
    if bids.dim() != 3 or tuple(bids.shape[1:]) != (bidders, items):
        raise ValueError(f"bids must have shape [batch, {bidders}, {items}] (bidders x items); "
                         f"got {tuple(bids.shape)}")
    bad = ~torch.isfinite(bids)
    if bad.any():
        i = int(bad.any(dim=2).any(dim=0).nonzero()[0])
        raise ValueError(f"bid of bidder_{i} is NaN or infinite")
    return bids


def outcome_tolerance(dtype: torch.dtype) -> float:
    """How far an outcome may stray from [0, 1] and from feasibility: 1e-9 for float64 outcomes, 1e-6
    for lower precisions (a float32 sum of a few probabilities is only exact to about 1e-7)."""
    return 1e-9 if dtype == torch.float64 else 1e-6


def check_outcome(outcome: Any, batch: int, bidders: int, items: int, unit_demand: bool | None = None,
                  who: str = "the mechanism") -> Outcome:
    """Validate what a mechanism returned for ``batch`` bid profiles, before anyone uses it.

    Refused with a ``ValueError`` naming the bidder (and item) concerned: anything but an ``Outcome``;
    an allocation not exactly [batch, n, m] or a payment not exactly [batch, n] (no broadcasting);
    NaN or infinite entries; allocation probabilities outside [0, 1]; and, when ``unit_demand`` is
    given, over-allocation: sum_i x_ij > 1 (or, unit-demand, sum_j x_ij > 1). Tolerance:
    ``outcome_tolerance``.
    """
    if not isinstance(outcome, Outcome):
        raise ValueError(f"{who} returned {type(outcome).__name__}; expected an Outcome(allocation, payment)")
    a, p = outcome.allocation, outcome.payment
    if tuple(a.shape) != (batch, bidders, items) or tuple(p.shape) != (batch, bidders):
        raise ValueError(f"{who} returned allocation {tuple(a.shape)} and payment {tuple(p.shape)}; expected "
                         f"allocation [{batch}, {bidders}, {items}] (profiles x bidders x items) and payment "
                         f"[{batch}, {bidders}]")
    for what, x in (("allocation", a), ("payment", p)):
        bad = ~torch.isfinite(x)
        if bad.any():
            b, i = bad.nonzero()[0].tolist()[:2]
            raise ValueError(f"{who} returned a NaN or infinite {what} for bidder_{i} (profile {b})")
    tol = outcome_tolerance(a.dtype)
    bad = (a < -tol) | (a > 1 + tol)
    if bad.any():
        b, i, j = bad.nonzero()[0].tolist()
        raise ValueError(f"{who} allocated item {j} to bidder_{i} with probability {float(a[b, i, j]):.6g} "
                         f"(profile {b}); allocations are probabilities in [0, 1]")
    if unit_demand is not None:
        load = a.sum(dim=1)  # [B, m]
        if (load > 1 + tol).any():
            b, j = (load > 1 + tol).nonzero()[0].tolist()
            raise ValueError(f"{who} over-allocated item {j}: bidders get {float(load[b, j]):.6g} of it in "
                             f"total (profile {b}); feasible allocations have sum_i x_ij <= 1")
        if unit_demand and (a.sum(dim=2) > 1 + tol).any():
            b, i = (a.sum(dim=2) > 1 + tol).nonzero()[0].tolist()
            raise ValueError(f"{who} gave the unit-demand bidder_{i} {float(a[b, i].sum()):.6g} items in total "
                             f"(profile {b}); feasible allocations have sum_j x_ij <= 1")
    return outcome
