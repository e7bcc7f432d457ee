"""Experiments (signalling schemes), the buyer's value for them, and the data-market mechanism
contract.

An experiment E is a row-stochastic matrix [k states, S signals]: E(s | w) is the probability of
signal s in state w. Signals are action recommendations (S = number of actions = k). A buyer with
prior theta [k] and payoff u(w, a) [k, k] who sees signal s updates to the posterior
proportional to theta_w E(s | w) and best-responds, so (Bergemann, Bonatti and Smolin)

    V(theta, E) = sum_s max_a sum_w theta_w E(s | w) u(w, a)  -  max_a sum_w theta_w u(w, a),

the expected payoff gain over acting on the prior. For two states with matching payoffs this is
sum_s max_w theta_w E(s | w) - max(theta, 1 - theta). *Obedience* means following the
recommendation is a best response: sum_w theta_w E(s | w) (u(w, s) - u(w, a)) >= 0 for every
signal s and action a; the violation we report is the payoff a buyer gains by disobeying,
sum_s max_a sum_w theta_w E(s | w) (u(w, a) - u(w, s)) >= 0 (zero iff obedient).

Mechanism contract: ``mechanism(reports [B, n, d]) -> SchemeOutcome(experiment [B, n, k, S],
payment [B, n])``; ``mechanism.strategyproof`` says whether truthful reporting is optimal by
construction (menus, the virtual-value optimum, posted prices) or only approximately (learned
networks with a regret penalty).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

STOCHASTIC_TOL = 1e-6


@dataclass(frozen=True)
class SchemeOutcome:
    """Experiments [B, n, k, S] (one per buyer) and payments [B, n] for a batch of reports."""

    experiment: torch.Tensor
    payment: torch.Tensor

    def __post_init__(self) -> None:
        e, p = self.experiment, self.payment
        if e.dim() != 4 or p.dim() != 2 or e.shape[:2] != p.shape:
            raise ValueError(f"SchemeOutcome needs experiment [B, n, states, signals] and payment [B, n]; "
                             f"got {tuple(e.shape)} and {tuple(p.shape)}")


@runtime_checkable
class SchemeMechanism(Protocol):
    """``mechanism(reports [B, n, d]) -> SchemeOutcome``; ``strategyproof`` by construction or not."""

    strategyproof: bool

    def __call__(self, reports: torch.Tensor) -> SchemeOutcome: ...


def check_experiment(experiment: torch.Tensor, states: int | None = None, signals: int | None = None,
                     tol: float = STOCHASTIC_TOL) -> torch.Tensor:
    """Validate a batch of experiments [..., k, S]: finite, non-negative, rows summing to 1.

    Raises a ``ValueError`` that names the first bad row.
    """
    e = torch.as_tensor(experiment, dtype=torch.float64) if not isinstance(experiment, torch.Tensor) else experiment
    if e.dim() < 2:
        raise ValueError(f"an experiment must be a [states, signals] matrix, got shape {tuple(e.shape)}")
    if (states is not None and e.shape[-2] != states) or (signals is not None and e.shape[-1] != signals):
        raise ValueError(f"experiments must have shape [..., {states}, {signals}] (states x signals); "
                         f"got {tuple(e.shape)}")
    if not torch.isfinite(e).all():
        raise ValueError("experiment has NaN or infinite entries")
    if (e < -tol).any():
        idx = (e < -tol).nonzero()[0].tolist()
        raise ValueError(f"experiment is not stochastic: negative probability {float(e[tuple(idx)]):.3g} "
                         f"at index {idx}")
    rows = e.sum(-1)
    bad = (rows - 1).abs() > tol
    if bad.any():
        idx = bad.nonzero()[0].tolist()
        raise ValueError(f"experiment is not row-stochastic: row (state) {idx[-1]} at index {idx[:-1]} "
                         f"sums to {float(rows[tuple(idx)]):.6g}, not 1")
    return e


def check_prior(prior: torch.Tensor, states: int | None = None, tol: float = 1e-6) -> torch.Tensor:
    """Validate prior vectors [..., k] on the simplex; a ``ValueError`` otherwise."""
    p = torch.as_tensor(prior, dtype=torch.float64) if not isinstance(prior, torch.Tensor) else prior
    if states is not None and p.shape[-1] != states:
        raise ValueError(f"priors must have {states} entries (one per state), got shape {tuple(p.shape)}")
    if not torch.isfinite(p).all() or (p < -tol).any() or ((p.sum(-1) - 1).abs() > tol).any():
        raise ValueError("prior is off the probability simplex (entries must be >= 0 and sum to 1)")
    return p


def full_information(states: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The fully informative experiment: signal s = state w (identity) [k, k]."""
    return torch.eye(states, dtype=dtype)


def uninformative(states: int, action: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The uninformative experiment that always recommends ``action`` [k, k]."""
    e = torch.zeros(states, states, dtype=dtype)
    e[:, action] = 1.0
    return e


def prior_payoff(prior: torch.Tensor, payoff: torch.Tensor) -> torch.Tensor:
    """max_a sum_w theta_w u(w, a): the payoff of acting on the prior, [...]."""
    return (prior @ payoff.to(prior)).amax(-1)


def prior_action(prior: torch.Tensor, payoff: torch.Tensor) -> torch.Tensor:
    """The best action on the prior (lowest index on ties), [...]."""
    return (prior @ payoff.to(prior)).argmax(-1)


def signal_payoffs(prior: torch.Tensor, experiment: torch.Tensor, payoff: torch.Tensor) -> torch.Tensor:
    """g[..., s, a] = sum_w theta_w E(s | w) u(w, a): the (unnormalised) payoff of action a
    after signal s. ``prior`` [..., k], ``experiment`` [..., k, S], ``payoff`` [k, A]."""
    joint = prior.unsqueeze(-1) * experiment  # [..., k, S]: P(w, s)
    return joint.transpose(-1, -2) @ payoff.to(joint)  # [..., S, A]


def expected_payoff(prior: torch.Tensor, experiment: torch.Tensor, payoff: torch.Tensor,
                    obedient: bool = False) -> torch.Tensor:
    """Expected payoff with the experiment: best-responding to each signal (default), or
    following its recommendation (``obedient=True``), [...]."""
    g = signal_payoffs(prior, experiment, payoff)
    if obedient:
        return torch.diagonal(g, dim1=-2, dim2=-1).sum(-1)
    return g.amax(-1).sum(-1)


def value(prior: torch.Tensor, experiment: torch.Tensor, payoff: torch.Tensor, obedient: bool = False) -> torch.Tensor:
    """V(theta, E): the payoff gain of the experiment over acting on the prior, [...]."""
    return expected_payoff(prior, experiment, payoff, obedient) - prior_payoff(prior, payoff)


def best_response(prior: torch.Tensor, experiment: torch.Tensor, payoff: torch.Tensor) -> torch.Tensor:
    """The best action after each signal [..., S] (lowest index on ties)."""
    return signal_payoffs(prior, experiment, payoff).argmax(-1)


def obedience_violation(prior: torch.Tensor, experiment: torch.Tensor, payoff: torch.Tensor) -> torch.Tensor:
    """sum_s max_a sum_w theta_w E(s | w) (u(w, a) - u(w, s)) >= 0: what disobeying gains, [...]."""
    return (expected_payoff(prior, experiment, payoff) - expected_payoff(prior, experiment, payoff, True)).clamp_min(0)


def make_obedient(prior: torch.Tensor, experiment: torch.Tensor, payoff: torch.Tensor) -> torch.Tensor:
    """Relabel signals as recommendations of the best response: signal s is merged into the
    signal a*(s) = best action after s. Same value for this prior, and obedient for it."""
    a = best_response(prior, experiment, payoff)  # [..., S]
    onehot = torch.nn.functional.one_hot(a, experiment.shape[-1]).to(experiment)  # [..., S, S']
    return experiment @ onehot
