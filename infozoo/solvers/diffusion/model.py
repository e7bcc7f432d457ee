"""History encoder + conditional denoiser, and the fitted state reconstructor.

**Parameterisation: EDM** (Karras, Aittala, Aila, Laine 2022), variance exploding,
``x = s + sigma eps``, with the network wrapped as the denoiser itself:

    D(x, sigma | h) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma), e(h)),
    c_skip = sd^2 / (sigma^2 + sd^2),  c_out = sigma sd / sqrt(sigma^2 + sd^2),
    c_in = 1 / sqrt(sigma^2 + sd^2),    c_noise = log(sigma) / 4,

trained by ``E ||D(s + sigma eps, sigma | h) - s||^2 (sigma^2 + sd^2) / (sigma sd)^2`` with
``log sigma ~ N(P_mean, P_std^2)``. Why EDM rather than DDPM's epsilon-prediction on a discrete
schedule: every object of the paper's analysis is the denoiser ``D_i(x, sigma)`` itself (its fixed
points, its Jacobian), at *any* chosen noise level; EDM outputs exactly that, for continuous
``sigma``, with unit-variance network targets at every noise level (epsilon-prediction turns
``D = x - sigma eps_hat`` into an ill-conditioned difference at small sigma, which is precisely
where fixed points and Jacobians are taken). States are standardised per coordinate (``sd = 1``).

**History encoder: one GRU shared by all agents, with the agent's one-hot index appended to every
input row** (a per-agent model with tied weights). Every env here gives all agents the same
observation/action layout, so sharing multiplies the data each weight sees by ``n`` (15 sensors
on sensor-grid), training costs one model instead of ``n`` on a 2-core CPU, and the agent index
still lets the encoder specialise (it is also what identifies which patch a sensor sees).
The same denoiser MLP serves all agents; a learned *null* embedding replaces the history with
probability ``p_uncond`` in training (classifier-free-guidance style), giving the unconditional
denoiser ``D_0`` that composite sampling needs.

**Denoiser**: a residual MLP of width ``width`` whose blocks are FiLM-modulated by
``[e(h), embed(c_noise)]``: ``z <- z + W2 silu(W1 (LN(z) (1 + gamma) + beta))``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


class HistoryEncoder(nn.Module):
    """GRU over ``[o_{i,t}, a_{i,t-1}, onehot(i)]``: ``[B, T, n, F] -> [B, T, n, H]``."""

    def __init__(self, feature_dim: int, n_agents: int, hidden: int, layers: int = 1) -> None:
        super().__init__()
        self.n_agents = n_agents
        self.gru = nn.GRU(feature_dim + n_agents, hidden, num_layers=layers, batch_first=True)

    def forward(self, histories: torch.Tensor) -> torch.Tensor:
        b, t, n, f = histories.shape
        ids = torch.eye(n, dtype=histories.dtype).expand(b, t, n, n)
        x = torch.cat([histories, ids], -1).permute(0, 2, 1, 3).reshape(b * n, t, f + n)
        return self.gru(x)[0].reshape(b, n, t, -1).permute(0, 2, 1, 3)


class ResidualBlock(nn.Module):
    """``z + W2 silu(W1 (LN(z) (1 + gamma) + beta))`` with ``(gamma, beta)`` from the condition."""

    def __init__(self, width: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.film = nn.Linear(cond_dim, 2 * width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(cond).chunk(2, dim=-1)
        return z + self.fc2(torch.nn.functional.silu(self.fc1(self.norm(z) * (1 + gamma) + beta)))


class ConditionalDenoiser(nn.Module):
    """``D(x, sigma | e)`` with EDM preconditioning (module docstring); ``x [N, d]``, ``sigma [N]``,
    ``e [N, H]``.

    With ``local > 0`` a coordinate-wise head is added to ``F``: one small MLP, shared by all
    coordinates ``j``, of ``[c_in x_j, c_noise, g_j]`` where ``g_j`` are ``local`` features of
    coordinate ``j`` read off the trunk. It makes per-coordinate nonlinearities such as snapping a
    count to the nearest integer cheap to learn (sensor-grid), which a trunk that mixes all ``d``
    coordinates in its first layer learns slowly."""

    def __init__(self, state_dim: int, cond_dim: int, width: int, blocks: int, sigma_data: float = 1.0,
                 noise_dim: int = 64, local: int = 0) -> None:
        super().__init__()
        self.sigma_data = sigma_data
        self.local = local
        if local:
            self.local_in = nn.Linear(width, state_dim * local)
            self.local_mlp = nn.Sequential(nn.Linear(local + 2, 32), nn.SiLU(), nn.Linear(32, 32), nn.SiLU(),
                                           nn.Linear(32, 1))
            nn.init.zeros_(self.local_mlp[-1].weight)
            nn.init.zeros_(self.local_mlp[-1].bias)
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(100.0), noise_dim // 2)))
        self.noise_mlp = nn.Sequential(nn.Linear(noise_dim, width), nn.SiLU(), nn.Linear(width, width))
        c = cond_dim + width
        self.inp = nn.Linear(state_dim, width)
        self.blocks = nn.ModuleList([ResidualBlock(width, c) for _ in range(blocks)])
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, state_dim))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        sd = self.sigma_data
        sigma = sigma.reshape(-1, 1).to(x.dtype)
        c_skip = sd**2 / (sigma**2 + sd**2)
        c_out = sigma * sd / (sigma**2 + sd**2).sqrt()
        c_in = 1 / (sigma**2 + sd**2).sqrt()
        c_noise = sigma.log() / 4
        angles = c_noise * self.freqs
        cond = torch.cat([emb, self.noise_mlp(torch.cat([angles.sin(), angles.cos()], -1))], -1)
        z = self.inp(c_in * x)
        for block in self.blocks:
            z = block(z, cond)
        f = self.out(z)
        if self.local:
            g = self.local_in(z).reshape(x.shape[0], x.shape[1], self.local)
            per = torch.cat([(c_in * x).unsqueeze(-1), c_noise.expand_as(x).unsqueeze(-1), g], -1)
            f = f + self.local_mlp(per).squeeze(-1)
        return c_skip * x + c_out * f


class DiffusionNet(nn.Module):
    """The encoder, the null (unconditional) embedding and the denoiser."""

    def __init__(self, feature_dim: int, n_agents: int, state_dim: int, hidden: int, layers: int, width: int,
                 blocks: int, sigma_data: float = 1.0, local: int = 0) -> None:
        super().__init__()
        self.encoder = HistoryEncoder(feature_dim, n_agents, hidden, layers)
        self.null = nn.Parameter(torch.zeros(hidden))
        self.denoiser = ConditionalDenoiser(state_dim, hidden, width, blocks, sigma_data, local=local)


class BoundDenoiser:
    """The agents' learned denoisers conditioned on ``B`` histories (``composite.Denoiser``).

    ``emb [B, n, H]``: the history embedding of each agent at the step to reconstruct. Works in
    standardised state coordinates."""

    def __init__(self, net: DiffusionNet, emb: torch.Tensor) -> None:
        self.net, self.emb = net, emb
        self.batch_size, self.n_agents, _ = emb.shape
        self.state_dim = net.denoiser.out[-1].out_features
        self.dtype = torch.float32

    def __call__(self, agent: int | None, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        e = self.net.null.expand(x.shape[0], -1) if agent is None else self.emb[:, int(agent)]
        s = torch.as_tensor(sigma, dtype=x.dtype).expand(x.shape[0])
        return self.net.denoiser(x.to(torch.float32), s, e)

    def repeat(self, k: int) -> BoundDenoiser:
        return BoundDenoiser(self.net, self.emb.repeat_interleave(k, dim=0))


@dataclass
class FlowSettings:
    """How a reconstructor turns denoisers into states (stored with the checkpoint)."""

    sigma_min: float = 0.05  # last noise level of the flow (standardised units)
    sigma_max: float = 5.0  # first noise level of the flow / sampler
    flow_steps: int = 20  # annealing sweeps from sigma_max to sigma_min
    flow_tol: float = 1e-4  # stopping rule: ||x_{k+1} - x_k|| <= tol (1 + ||x_k||)
    max_sweeps: int = 60  # most sweeps in total
    sample_steps: int = 40  # ancestral sampling steps
    sample_sigma_min: float = 0.01  # last noise level of the sampler
    analysis_sigma: float = 0.2  # noise level of the fixed-point / Jacobian analysis


class DiffusionReconstructor:
    """A fitted diffusion state reconstructor (the DESIGN.md contract).

    ``reconstruct(histories [B, t+1, n, F]) -> [B, d]``: the composite flow over all agents, at the
    last step of the histories (``agents=[i]``: agent ``i``'s own flow). ``sample(histories, k) ->
    [B, k, d]``: composite samples (``agents=[i]``: samples of ``p(s | h_i)``). ``fit(dataset)``
    trains it (``train.fit``). States are returned in the env's units (numpy float32).
    """

    def __init__(self, net: DiffusionNet, meta: dict[str, Any], flow: FlowSettings | None = None,
                 config: Any = None, report: dict[str, Any] | None = None) -> None:
        self.net, self.meta = net, meta
        self.flow = flow or FlowSettings()
        self.config = config
        self.report = report or {}
        self.mean = torch.as_tensor(meta["state_mean"], dtype=torch.float32)
        self.std = torch.as_tensor(meta["state_std"], dtype=torch.float32)
        self.last_flow: Any = None  # FlowResult of the last reconstruct call (diagnostics)

    @property
    def n_agents(self) -> int:
        return int(self.meta["n_agents"])

    def fit(self, dataset: Any) -> DiffusionReconstructor:
        """Train on a ``HistoryDataset`` (or an env id) with this reconstructor's config."""
        from infozoo.solvers.diffusion.train import fit

        fitted = fit(dataset, self.config)
        self.__dict__.update(fitted.__dict__)
        return self

    # ---- conditioning ----------------------------------------------------------------------
    def _histories(self, histories: Any) -> torch.Tensor:
        h = torch.as_tensor(np.asarray(histories), dtype=torch.float32)
        n, f = self.meta["n_agents"], self.meta["feature_dim"]
        if h.ndim != 4 or h.shape[2] != n or h.shape[3] != f:
            raise ValueError(f"histories must have shape [B, t+1, {n}, {f}] (agents, features), got {tuple(h.shape)}")
        return h

    @torch.no_grad()
    def encode(self, histories: Any, batch: int = 2048) -> torch.Tensor:
        """History embeddings at every step, ``[B, T, n, H]``."""
        h = self._histories(histories)
        return torch.cat([self.net.encoder(h[lo: lo + batch]) for lo in range(0, h.shape[0], batch)], 0)

    def bind(self, histories: Any) -> BoundDenoiser:
        """The agents' denoisers conditioned on the last step of each history (standardised space)."""
        return BoundDenoiser(self.net, self.encode(histories)[:, -1])

    def to_state(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean

    def to_z(self, s: Any) -> torch.Tensor:
        return (torch.as_tensor(np.asarray(s), dtype=torch.float32) - self.mean) / self.std

    # ---- reconstruction ----------------------------------------------------------------------
    def flow_bound(self, den: BoundDenoiser, agents: list[int] | None = None, seed: int = 0, **overrides: Any) -> Any:
        """The composite flow on a bound denoiser, started at the standardised mean (0)."""
        from infozoo.solvers.diffusion.composite import composite_flow

        f = {**self.flow.__dict__, **overrides}
        return composite_flow(den, torch.zeros(den.batch_size, den.state_dim), agents, steps=f["flow_steps"],
                              sigma_min=f["sigma_min"], sigma_max=f["sigma_max"], tol=f["flow_tol"],
                              max_sweeps=f["max_sweeps"], target=overrides.get("target"),
                              record=bool(overrides.get("record", False)))

    @torch.no_grad()
    def reconstruct(self, histories: Any, agents: list[int] | None = None) -> np.ndarray:
        """``[B, d]``: the composite flow's fixed point, in state units."""
        res = self.flow_bound(self.bind(histories), agents)
        self.last_flow = res
        return self.to_state(res.x).numpy()

    @torch.no_grad()
    def sample(self, histories: Any, k: int, agents: list[int] | None = None, seed: int = 0) -> np.ndarray:
        """``[B, k, d]`` samples: composite (all agents) or of ``p(s | h_i)`` for ``agents=[i]``."""
        from infozoo.core.seeding import torch_generator
        from infozoo.solvers.diffusion.composite import sample

        f = self.flow
        z = sample(self.bind(histories), k, agents, steps=f.sample_steps, sigma_min=f.sample_sigma_min,
                   sigma_max=f.sigma_max, generator=torch_generator(seed))
        return self.to_state(z).numpy()

    @torch.no_grad()
    def reconstruct_all_steps(self, histories: Any, agents: list[int] | None = None, batch: int = 4096
                              ) -> tuple[np.ndarray, dict[str, float]]:
        """The flow at every step of every history: ``[B, T, d]`` and diagnostics (mean sweeps to
        converge, converged fraction, milliseconds per reconstruction)."""
        emb = self.encode(histories)
        b, t, n, hdim = emb.shape
        flat = emb.reshape(b * t, n, hdim)
        out, its, conv = [], [], []
        t0 = time.perf_counter()
        for lo in range(0, flat.shape[0], batch):
            res = self.flow_bound(BoundDenoiser(self.net, flat[lo: lo + batch]), agents)
            out.append(self.to_state(res.x))
            its.append(res.iterations.float())
            conv.append(res.converged.float())
        ms = 1000 * (time.perf_counter() - t0) / max(flat.shape[0], 1)
        diag = {"iterations": float(torch.cat(its).mean()), "converged_fraction": float(torch.cat(conv).mean()),
                "ms_per_reconstruction": ms}
        return torch.cat(out).reshape(b, t, -1).numpy(), diag

    # ---- checkpoints ---------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        from dataclasses import asdict

        from infozoo.core.checkpoint import save_checkpoint

        cfg = asdict(self.config) if self.config is not None else {}
        return save_checkpoint(directory, dict(self.net.state_dict()),
                               {"kind": "diffusion", "config": cfg, "meta": self.meta, "flow": asdict(self.flow),
                                "report": self.report})
