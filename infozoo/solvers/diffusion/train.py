"""Training of the diffusion state reconstructor (registered solver ``diffusion``).

Data: a ``HistoryDataset`` (``infozoo.envs.decpomdp.histories``): per-agent action-observation
histories ``h_{i,0..t}`` and true states ``s_t``. Every (episode, step ``t``, agent ``i``) is a
training pair ``(h_{i,0..t}, s_t)``. Each gradient step:

    e_{i,t}   = GRU(h_{i,0..t}, onehot(i))                    (all steps and agents of B episodes)
    (t, i)    ~ uniform over the B T n pairs, ``pairs`` of them
    e         <- null embedding with probability p_uncond     (trains D_0 as well)
    z         = (s_t - mean) / std,   log sigma ~ N(P_mean, P_std^2),   x = z + sigma eps
    L         = E[ (sigma^2 + 1) / sigma^2 ||D(x, sigma | e) - z||^2 ] / d     (EDM loss, sd = 1)

AdamW with cosine decay, gradient clipping, an exponential moving average of the weights (used
for inference). Deterministic on CPU under ``seed``.

The solver contract takes a *setting*; Dec-POMDPs have none, so ``default_config``/``fit`` accept
the **env id** (``"linear-gaussian-v0"``, optionally ``"linear-gaussian-v0?obs_noise=0.0&co=False"``)
in its place, or a ``HistoryDataset``: ``fit`` then collects ``train_episodes`` random-policy
episodes itself. ``infozoo train diffusion --setting linear-gaussian-v0`` needs the CLI to pass the
string through when it is not a registered setting (see the report).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infozoo.core.checkpoint import CheckpointError, load_checkpoint
from infozoo.core.progress import progress
from infozoo.core.seeding import seed_everything, torch_generator
from infozoo.core.torch_utils import set_threads
from infozoo.solvers.diffusion.model import DiffusionNet, DiffusionReconstructor, FlowSettings

KIND = "diffusion"


@dataclass
class Config:
    """Hyper-parameters of the diffusion reconstructor (data, network, training, inference)."""

    env_id: str = "linear-gaussian-v0"  # Dec-POMDP env id (used when fit is given no dataset)
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # env arguments
    train_episodes: int = 10_000  # episodes collected when fit is given an env id
    policy: str = "random"  # data-collection policy (random / scripted)
    hidden: int = 64  # GRU hidden size = history embedding size
    layers: int = 1  # GRU layers
    width: int = 128  # residual MLP width of the denoiser
    blocks: int = 3  # residual blocks of the denoiser
    local: int = 0  # per-coordinate features of the coordinate-wise head (0: no head)
    steps: int = 3000  # gradient steps
    batch_episodes: int = 64  # episodes encoded per step
    pairs: int = 2048  # (step, agent) pairs per gradient step, drawn from the encoded episodes
    lr: float = 2e-3  # AdamW learning rate (cosine decay to 5%)
    weight_decay: float = 1e-4  # AdamW weight decay
    grad_clip: float = 1.0  # gradient norm clip
    ema: float = 0.995  # EMA decay of the inference weights
    p_uncond: float = 0.1  # probability of the null history (unconditional denoiser D_0)
    p_mean: float = -1.2  # EDM: mean of log sigma in training
    p_std: float = 1.2  # EDM: std of log sigma in training
    flow: dict[str, Any] = field(default_factory=dict)  # overrides of model.FlowSettings (inference)
    max_seconds: float | None = None  # stop training after this wall time
    threads: int = 1  # torch threads
    seed: int = 0  # initialisation, sampling and data seed
    profile: str = "quick"  # the profile the defaults were chosen for
    kind: str = KIND  # registered solver name written to the checkpoint


# per-env defaults (quick profile; "full" multiplies steps and data). Standardised states put the
# between-state spacing of discrete envs far above sigma_data = 1 (sensor-grid: one prey in a cell is
# ~3.6 standard deviations), so there the training noise (p_mean) and the flow's sigma_max move up to
# where histories matter; EDM's image defaults (p_mean = -1.2) would train almost only on the rounding
# regime and the model would ignore the history.
ENV_DEFAULTS: dict[str, dict[str, Any]] = {
    "linear-gaussian-v0": {"hidden": 64, "width": 128, "blocks": 3, "steps": 1500, "train_episodes": 10_000,
                           "pairs": 1024, "flow": {"sigma_min": 0.05}},
    "dec-tiger-v0": {"hidden": 32, "width": 64, "blocks": 2, "steps": 1500, "train_episodes": 10_000,
                     "p_mean": -0.3, "flow": {"sigma_min": 0.1, "sigma_max": 10.0}},
    "sensor-grid-v0": {"env_kwargs": {"max_cycles": 10}, "hidden": 64, "width": 128, "blocks": 3, "steps": 2500,
                       "local": 8, "train_episodes": 4000, "batch_episodes": 8, "pairs": 1024, "p_mean": 0.7,
                       "flow": {"sigma_min": 0.1, "sigma_max": 20.0, "analysis_sigma": 0.5}},
    "spread-po-v0": {"env_kwargs": {"max_cycles": 10}, "hidden": 64, "width": 128, "blocks": 3, "steps": 1500,
                     "train_episodes": 3000, "batch_episodes": 32, "pairs": 1024, "flow": {"sigma_min": 0.05}},
}


def parse_env(spec: Any) -> tuple[str, dict[str, Any]]:
    """``"env-id"`` or ``"env-id?key=value&..."`` (or an object with ``env_id``/``env_kwargs``) ->
    ``(env_id, kwargs)``; values are parsed as JSON where possible (``0.0``, ``false``)."""
    import json

    if hasattr(spec, "env_id"):
        return spec.env_id, dict(getattr(spec, "env_kwargs", {}) or {})
    if not isinstance(spec, str):
        raise ValueError(f"a Dec-POMDP setting is an env id string like 'linear-gaussian-v0', got {spec!r}")
    env_id, _, query = spec.partition("?")
    env_id = env_id.removeprefix("infozoo/")
    if env_id not in ENV_DEFAULTS:
        raise ValueError(f"unknown Dec-POMDP env {env_id!r}; valid: {', '.join(ENV_DEFAULTS)}")
    kwargs: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        value = {"True": "true", "False": "false"}.get(value, value)
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return env_id, kwargs


def default_config(setting: Any, profile: str = "quick", seed: int = 0) -> Config:
    """Defaults per env (``setting`` = env id, ``"env-id?k=v"``, or a ``HistoryDataset``)."""
    if profile not in ("quick", "full"):
        raise ValueError(f"unknown profile {profile!r}; valid: quick, full")
    if hasattr(setting, "meta") and hasattr(setting, "histories"):
        env_id, kwargs = setting.meta["env_id"].removeprefix("infozoo/"), dict(setting.meta["env_kwargs"])
    else:
        env_id, kwargs = parse_env(setting)
    d = copy.deepcopy(ENV_DEFAULTS[env_id])
    d["env_kwargs"] = {**d.get("env_kwargs", {}), **kwargs}
    if profile == "full":
        d["steps"] = 4 * d["steps"]
        d["train_episodes"] = 2 * d["train_episodes"]
    return Config(env_id=env_id, seed=seed, profile=profile, **d)


# ---- training -------------------------------------------------------------------------------


def fit(setting: Any, config: Config | None = None) -> DiffusionReconstructor:
    """Train a reconstructor on a ``HistoryDataset``, or on data collected from an env id."""
    from infozoo.envs.decpomdp.histories import HistoryDataset, collect

    cfg = config or default_config(setting)
    check_config(cfg)
    if isinstance(setting, HistoryDataset):
        data = setting
    else:
        env_id, kwargs = parse_env(setting) if setting is not None else (cfg.env_id, {})
        data = collect(env_id, cfg.train_episodes, cfg.policy, seed=cfg.seed, env_kwargs={**cfg.env_kwargs, **kwargs})
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    g = torch_generator(cfg.seed)
    meta = {k: data.meta[k] for k in ("env_id", "env_kwargs", "n_agents", "feature_dim", "state_dim", "state_kind",
                                      "collectively_observable", "n_states", "max_cycles")}
    states = torch.as_tensor(data.states, dtype=torch.float32)  # [N, T, d]
    mean = states.reshape(-1, states.shape[-1]).mean(0)
    std = states.reshape(-1, states.shape[-1]).std(0).clamp(min=1e-3)
    meta.update(state_mean=mean.tolist(), state_std=std.tolist(), train_episodes=len(data),
                policy=data.meta.get("policy"))
    hist = torch.as_tensor(data.histories, dtype=torch.float32)  # [N, T, n, F]
    z_all = (states - mean) / std
    n_ep, t_len, n, _ = hist.shape
    d = states.shape[-1]
    net = DiffusionNet(meta["feature_dim"], n, d, cfg.hidden, cfg.layers, cfg.width, cfg.blocks, local=cfg.local)
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps, eta_min=0.05 * cfg.lr)
    t0 = time.perf_counter()
    losses: list[float] = []
    bar = progress(range(cfg.steps), desc=f"diffusion {meta['env_id']}")
    done = 0
    for step in bar:
        idx = torch.randint(0, n_ep, (min(cfg.batch_episodes, n_ep),), generator=g)
        emb = net.encoder(hist[idx])  # [b, T, n, H]
        b = idx.shape[0]
        sel = torch.randint(0, b * t_len * n, (cfg.pairs,), generator=g)
        e = emb.reshape(b * t_len * n, -1)[sel]
        drop = torch.rand(cfg.pairs, generator=g) < cfg.p_uncond
        e = torch.where(drop[:, None], net.null.expand_as(e), e)
        z = z_all[idx].reshape(b * t_len, d)[sel // n]  # pair (episode, t, agent) -> state of (episode, t)
        sigma = (cfg.p_mean + cfg.p_std * torch.randn(cfg.pairs, generator=g)).exp()
        x = z + sigma[:, None] * torch.randn(z.shape, generator=g)
        den = net.denoiser(x, sigma, e)
        weight = (sigma**2 + 1) / sigma**2
        loss = (weight[:, None] * (den - z) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        with torch.no_grad():
            decay = min(cfg.ema, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p, 1 - decay)
        losses.append(float(loss.detach()))
        done = step + 1
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if cfg.max_seconds is not None and time.perf_counter() - t0 > cfg.max_seconds:
            break
    bar.close()
    ema.eval()
    flow = FlowSettings(**cfg.flow)
    report = {"train_time": time.perf_counter() - t0, "steps_done": done, "train_episodes": len(data),
              "loss_last": float(np.mean(losses[-100:]))}
    return DiffusionReconstructor(ema, meta, flow, cfg, report)


def check_config(cfg: Config) -> None:
    for name in ("steps", "batch_episodes", "pairs", "hidden", "width", "blocks", "train_episodes"):
        if int(getattr(cfg, name)) < 1:
            raise ValueError(f"{name} must be a positive integer, got {getattr(cfg, name)!r}")
    if not 0 <= cfg.p_uncond < 1:
        raise ValueError(f"p_uncond must be in [0, 1), got {cfg.p_uncond}")
    bad = set(cfg.flow) - {f.name for f in dataclasses.fields(FlowSettings)}
    if bad:
        raise ValueError(f"unknown flow setting(s) {sorted(bad)}; valid: "
                         f"{', '.join(f.name for f in dataclasses.fields(FlowSettings))}")


# ---- checkpoints ----------------------------------------------------------------------------


def load(directory: str | Path) -> DiffusionReconstructor:
    """Load a checkpoint written by ``DiffusionReconstructor.save``."""
    tensors, doc = load_checkpoint(directory, KIND)
    try:
        fields = {f.name for f in dataclasses.fields(Config)}
        cfg = Config(**{k: v for k, v in doc["config"].items() if k in fields})
        meta = doc["meta"]
        net = DiffusionNet(meta["feature_dim"], meta["n_agents"], meta["state_dim"], cfg.hidden, cfg.layers,
                           cfg.width, cfg.blocks, local=cfg.local)
        net.load_state_dict(tensors)
        flow = FlowSettings(**doc["flow"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint {str(directory)!r} is inconsistent: {err}") from None
    net.eval()
    return DiffusionReconstructor(net, meta, flow, cfg, doc.get("report", {}))


def config_dict(cfg: Config) -> dict[str, Any]:
    return asdict(cfg)
