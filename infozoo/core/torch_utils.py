"""Torch helpers shared by the solvers and baselines."""

from __future__ import annotations

import torch


def soft_argmax(scores: torch.Tensor, temperature: float, dim: int = -1) -> torch.Tensor:
    """``softmax(temperature * scores)``: the relaxed choice of the best entry along ``dim``.

    With ``temperature -> inf`` it tends to the one-hot of the argmax (RochetNet's choice rule
    uses 1000; AMenuNet 500).
    """
    return torch.softmax(temperature * scores, dim=dim)


def hard_argmax(scores: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """One-hot of the argmax along ``dim``; ties go to the lowest index (deterministic)."""
    idx = scores.argmax(dim=dim, keepdim=True)  # torch returns the first maximal index
    return torch.zeros_like(scores).scatter_(dim, idx, 1.0)


def mlp(sizes: list[int], activation: type[torch.nn.Module] = torch.nn.Tanh,
        out_activation: torch.nn.Module | None = None) -> torch.nn.Sequential:
    """A plain multilayer perceptron ``sizes[0] -> ... -> sizes[-1]``."""
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    if out_activation is not None:
        layers.append(out_activation)
    return torch.nn.Sequential(*layers)


def set_threads(n: int | None) -> None:
    """Set torch's intra-op threads (None leaves torch's default)."""
    if n:
        torch.set_num_threads(n)


def exact_rows(x: torch.Tensor) -> torch.Tensor:
    """Probability rows (last dim) in float64 summing to 1 to float64 precision: a float32 softmax
    cast to float64 is only stochastic to about 1e-7, and environments check rows to 1e-9."""
    x = x.double().clamp_min(0)
    return x / x.sum(-1, keepdim=True)
