"""Seeding: every random draw in infozoo comes from an explicit generator made here."""

from __future__ import annotations

import random
from typing import Any

import numpy as np


def torch_generator(seed: int | None, device: str = "cpu") -> Any:
    """A ``torch.Generator`` seeded with ``seed`` (fresh OS entropy when ``seed`` is None)."""
    import torch

    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch's global generators and make torch deterministic on CPU."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def np_rng(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(seed)
