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
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn


class HistoryEncoder(nn.Module):
    """GRU over ``[o_{i,t}, a_{i,t-1}, onehot(i)]``: ``[B, T, n, F] -> [B, T, n, H]``."""

    def __init__(self, feature_dim: int, n_agents: int, hidden: int, layers: int = 1) -> None:
        super().__init__()
        self.n_agents = n_agents
        self.gru = nn.GRU(feature_dim + n_agents, hidden, num_layers=layers, batch_first=True)

    @staticmethod
    def with_ids(x: torch.Tensor) -> torch.Tensor:
        """Append each agent's one-hot id to its rows: ``[..., n, F] -> [..., n, F + n]``."""
        n = x.shape[-2]
        return torch.cat([x, torch.eye(n, dtype=x.dtype).expand(*x.shape[:-1], n)], -1)

    def forward(self, histories: torch.Tensor) -> torch.Tensor:
        b, t, n, f = histories.shape
        x = self.with_ids(histories).permute(0, 2, 1, 3).reshape(b * n, t, f + n)
        return self.gru(x)[0].reshape(b, n, t, -1).permute(0, 2, 1, 3)

    def step(self, rows: torch.Tensor, hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of the recursion: rows ``[B, n, F]`` of step ``t`` and the GRU state after step
        ``t - 1`` (``None`` at ``t = 0``) -> (embeddings ``[B, n, H]`` at ``t``, the new GRU state
        ``[layers, B n, H]``). Iterating it over ``t`` gives ``forward`` up to float rounding."""
        b, n, f = rows.shape
        x = self.with_ids(rows).reshape(b * n, 1, f + n)
        out, hidden = self.gru(x, hidden)
        return out.reshape(b, n, -1), hidden


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
        return self.modulate(z, gamma, beta)

    def modulate(self, z: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        return z + self.fc2(torch.nn.functional.silu(self.fc1(self.norm(z) * (1 + gamma) + beta)))


class Conditioning(NamedTuple):
    """``ConditionalDenoiser.condition``: EDM coefficients ``[N, 1]`` and per-block FiLM ``(gamma, beta)``."""

    c_skip: torch.Tensor
    c_out: torch.Tensor
    c_in: torch.Tensor
    c_noise: torch.Tensor
    film: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    def map(self, fn: Any) -> Conditioning:
        return Conditioning(fn(self.c_skip), fn(self.c_out), fn(self.c_in), fn(self.c_noise),
                            tuple((fn(g), fn(b)) for g, b in self.film))


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
        return self.apply_condition(x, self.condition(sigma.to(x.dtype), emb))

    def condition(self, sigma: torch.Tensor, emb: torch.Tensor) -> Conditioning:
        """The part of ``D`` that does not depend on ``x``: the EDM coefficients and each block's
        FiLM ``(gamma, beta)`` for noise levels ``sigma [N]`` and embeddings ``emb [N, H]``."""
        sd = self.sigma_data
        sigma = sigma.reshape(-1, 1)
        c_noise = sigma.log() / 4
        angles = c_noise * self.freqs
        cond = torch.cat([emb, self.noise_mlp(torch.cat([angles.sin(), angles.cos()], -1))], -1)
        film = tuple(tuple(block.film(cond).chunk(2, dim=-1)) for block in self.blocks)
        return Conditioning(sd**2 / (sigma**2 + sd**2), sigma * sd / (sigma**2 + sd**2).sqrt(),
                            1 / (sigma**2 + sd**2).sqrt(), c_noise, film)

    def apply_condition(self, x: torch.Tensor, c: Conditioning) -> torch.Tensor:
        """``D(x, sigma | e)`` given ``c = condition(sigma, e)`` (rows of ``c`` match rows of ``x``)."""
        z = self.inp(c.c_in * x)
        for block, (gamma, beta) in zip(self.blocks, c.film):
            z = block.modulate(z, gamma, beta)
        f = self.out(z)
        if self.local:
            g = self.local_in(z).reshape(x.shape[0], x.shape[1], self.local)
            per = torch.cat([(c.c_in * x).unsqueeze(-1), c.c_noise.expand_as(x).unsqueeze(-1), g], -1)
            f = f + self.local_mlp(per).squeeze(-1)
        return c.c_skip * x + c.c_out * f


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
        self._cond: dict[tuple[int, float], Conditioning] = {}

    def precompute(self, sigmas: list[float]) -> BoundDenoiser:
        """Compute the conditioning (``ConditionalDenoiser.condition``) of every agent at the noise
        levels ``sigmas`` in one batched call, so that each later ``D_i(x, sigma)`` at one of them
        runs the ``x``-dependent layers only (about half the cost of a batch-1 call). Same values up
        to float rounding; worth it for small batches and many calls (the streaming flow)."""
        levels = sorted({float(s) for s in sigmas})
        b, n, h = self.emb.shape
        k = len(levels)
        emb = self.emb.unsqueeze(2).expand(b, n, k, h).reshape(b * n * k, h)
        sig = torch.tensor(levels, dtype=torch.float32).repeat(b * n)
        with torch.no_grad():
            cond = self.net.denoiser.condition(sig, emb).map(lambda t: t.reshape(b, n, k, -1))
        for i in range(n):
            for j, s in enumerate(levels):
                self._cond[(i, s)] = cond.map(lambda t, i=i, j=j: t[:, i, j])
        return self

    def __call__(self, agent: int | None, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        if agent is not None and self._cond and not isinstance(sigma, torch.Tensor):
            c = self._cond.get((int(agent), float(sigma)))
            if c is not None and x.shape[0] == self.batch_size:
                return self.net.denoiser.apply_condition(x.to(torch.float32), c)
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

    Optional streaming extension of the contract (for online use, e.g. the IPPO observation
    wrapper): ``stream(batch) -> ReconstructionStream``, whose ``step(rows [B, n, F]) -> [B, d]``
    takes the history rows ``[o_{i,t}, a_{i,t-1}]`` of one more step and returns
    ``reconstruct(h_{0..t})`` without re-reading ``h_{0..t-1}``. A stream holds the state of its
    ``B`` histories, so each env copy opens its own; a reconstructor without ``stream`` is used
    through ``reconstruct`` on the whole history.
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
        h = torch.as_tensor(np.ascontiguousarray(histories, dtype=np.float32))
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
    def flow_bound(self, den: BoundDenoiser, agents: list[int] | None = None, seed: int = 0,
                   x0: torch.Tensor | None = None, **overrides: Any) -> Any:
        """The composite flow on a bound denoiser, started at ``x0`` (standardised; default the
        standardised mean 0). ``overrides``: fields of ``FlowSettings`` for this call."""
        from infozoo.solvers.diffusion.composite import composite_flow

        f = {**self.flow.__dict__, **overrides}
        x0 = torch.zeros(den.batch_size, den.state_dim) if x0 is None else x0
        return composite_flow(den, x0, agents, steps=f["flow_steps"],
                              sigma_min=f["sigma_min"], sigma_max=f["sigma_max"], tol=f["flow_tol"],
                              max_sweeps=f["max_sweeps"], target=overrides.get("target"),
                              record=bool(overrides.get("record", False)))

    @torch.no_grad()
    def reconstruct(self, histories: Any, agents: list[int] | None = None) -> np.ndarray:
        """``[B, d]``: the composite flow's fixed point, in state units."""
        res = self.flow_bound(self.bind(histories), agents)
        self.last_flow = res
        return self.to_state(res.x).numpy()

    def stream(self, batch: int = 1, agents: list[int] | None = None, warm: dict[str, Any] | None = None,
               **flow: Any) -> ReconstructionStream:
        """A ``ReconstructionStream`` over ``batch`` histories that grow one step per ``step`` call
        (see the class docstring for ``warm`` and the ``FlowSettings`` overrides ``flow``)."""
        return ReconstructionStream(self, batch, agents, warm, **flow)

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


class ReconstructionStream:
    """Incremental reconstruction along ``B`` joint histories revealed one step at a time.

    ``step(rows [B, n, F])`` appends the rows ``[o_{i,t}, a_{i,t-1}]`` of step ``t`` and returns
    ``s_hat_t [B, d]`` (env units). The GRU state ``g_{i,t} = GRU(g_{i,t-1}, [row_{i,t}, onehot(i)])``
    is kept between calls, so a step costs one GRU step per agent plus one flow, where
    ``reconstruct(h_{0..t})`` re-encodes all ``t + 1`` steps (quadratic cost over an episode); the
    noise/FiLM conditioning of every agent at every noise level of the flow is computed once per
    step in one batched call (``BoundDenoiser.precompute``), which halves the cost of the ``n``
    batch-1 denoiser calls per sweep.

    With ``warm=None`` and no ``flow`` overrides, ``step`` returns what
    ``reconstruct(h_{0..t}, agents)`` returns, up to float rounding of the step-wise GRU and the
    batched conditioning (the flow starts from the standardised mean 0 at every step, with the
    model's ``FlowSettings``); tested to 1e-5. ``flow`` overrides ``FlowSettings``
    fields (``flow_steps``, ``max_sweeps``, ``flow_tol``, ``sigma_max``, ...) for every step, e.g. a
    cheaper flow for use inside RL. ``warm`` (a dict, possibly empty) turns on the warm start: from
    ``t = 1`` on, the flow starts at the previous step's estimate ``z_{t-1}`` (standardised) instead
    of 0, with the further overrides in ``warm`` (typically a lower ``sigma_max`` and fewer
    ``flow_steps``: the annealing then only has to move ``z_{t-1}`` to the new state, not find it
    from the prior mean). A warm-started stream no longer equals ``reconstruct``: its estimate
    depends on the previous one, like a filter. ``reset()`` starts new histories.
    """

    def __init__(self, recon: DiffusionReconstructor, batch: int = 1, agents: list[int] | None = None,
                 warm: dict[str, Any] | None = None, **flow: Any) -> None:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
        valid = set(FlowSettings.__dataclass_fields__)
        bad = (set(flow) | set(warm or {})) - valid
        if bad:
            raise ValueError(f"unknown flow setting(s) {sorted(bad)}; valid: {', '.join(sorted(valid))}")
        self.recon, self.batch, self.agents = recon, batch, agents
        self.flow, self.warm = dict(flow), None if warm is None else dict(warm)
        self.last_flow: Any = None  # FlowResult of the last step (diagnostics)
        self.reset()

    def reset(self) -> None:
        """Forget the histories: the next ``step`` is step ``t = 0``."""
        self.t = 0
        self._hidden: torch.Tensor | None = None
        self._z: torch.Tensor | None = None

    @torch.no_grad()
    def step(self, rows: Any) -> np.ndarray:
        """Rows ``[B, n, F]`` of the next step -> the reconstructed states ``[B, d]`` (env units)."""
        from infozoo.solvers.diffusion.composite import karras_sigmas

        r = np.asarray(rows)
        if r.ndim != 3 or r.shape[0] != self.batch:
            raise ValueError(f"rows must have shape [{self.batch}, n, F] (one step of {self.batch} histories), "
                             f"got {tuple(r.shape)}")
        h = self.recon._histories(r[:, None])[:, 0]
        emb, self._hidden = self.recon.net.encoder.step(h, self._hidden)
        warm = self.warm is not None and self._z is not None
        over = {**self.flow, **(self.warm if warm else {})}
        f = {**self.recon.flow.__dict__, **over}
        levels = [*karras_sigmas(f["flow_steps"], f["sigma_min"], f["sigma_max"]), f["sigma_min"]]
        den = BoundDenoiser(self.recon.net, emb).precompute(levels)
        res = self.recon.flow_bound(den, self.agents, x0=self._z if warm else None, **over)
        self.last_flow, self._z = res, res.x
        self.t += 1
        return self.recon.to_state(res.x).numpy()
