"""History regression: a GRU that reads action-observation histories and predicts the state.

Two modes on a ``HistoryDataset`` (``infozoo.envs.decpomdp.histories``):

- ``"agent"``: one GRU shared by all agents (the agent's one-hot index is appended to every input
  row, so it is a per-agent model with tied weights) reads agent ``i``'s own history
  ``h_{i,0..t}`` and predicts ``s_t``.
- ``"joint"``: one GRU reads all agents' rows side by side, ``h_{0..t}`` in ``R^{n F}``.

Loss: mean squared error ``(1 / T d) sum_t ||s_hat_t - s_t||^2`` over every prefix of every
episode. Its minimiser is the posterior mean E[s_t | h_{0..t}], so the test MSE can approach the
Bayes floor of ``bayes_filter`` but never go below it (up to sampling noise).

The fitted ``HistoryRegression`` is a state reconstructor (DESIGN.md): ``reconstruct(histories
[B, t+1, n, F]) -> [B, d]`` (joint mode; the last step's state), plus ``predict(data)``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from infozoo.core.checkpoint import load_checkpoint, save_checkpoint
from infozoo.core.progress import progress
from infozoo.core.seeding import seed_everything, torch_generator
from infozoo.envs.decpomdp.histories import HistoryDataset

MODES = ("agent", "joint")
KIND = "decpomdp-regression"


@dataclass
class Config:
    mode: str = "joint"  # "agent" (own history, weights shared across agents) or "joint" (all histories)
    hidden: int = 128  # GRU hidden size
    layers: int = 1  # stacked GRU layers
    epochs: int = 6  # passes over the training episodes
    batch_size: int = 256  # sequences per gradient step
    lr: float = 3e-3  # Adam learning rate (cosine-decayed to 5% over training)
    seed: int = 0  # initialisation and shuffling seed
    max_seconds: float | None = None  # stop training after this wall time (None: run every epoch)


class HistoryRNN(nn.Module):
    """``GRU(in_dim -> hidden) -> Linear(hidden -> state_dim)``, applied at every step."""

    def __init__(self, in_dim: int, state_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.gru = nn.GRU(in_dim, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, state_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, in] -> [B, T, d]
        return self.head(self.gru(x)[0])


class HistoryRegression:
    """A fitted history regressor (see the module docstring); ``save``/``load`` via safetensors."""

    def __init__(self, net: HistoryRNN, config: Config, meta: dict[str, Any], report: dict[str, Any] | None = None
                 ) -> None:
        self.net, self.config, self.meta = net, config, meta
        self.report = report or {}

    def _inputs(self, histories: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``[B, T, n, F]`` -> the network's input rows (``[B n, T, F + n]`` or ``[B, T, n F]``)."""
        h = torch.as_tensor(np.asarray(histories), dtype=torch.float32)
        b, t, n, f = h.shape
        if self.config.mode == "joint":
            return h.reshape(b, t, n * f)
        ids = torch.eye(n).expand(b, t, n, n)
        return torch.cat([h, ids], -1).permute(0, 2, 1, 3).reshape(b * n, t, f + n)

    @torch.no_grad()
    def predict_histories(self, histories: np.ndarray, batch: int = 4096) -> np.ndarray:
        """Predicted states at every step: ``[B, T, d]`` (joint) or ``[B, T, n, d]`` (agent)."""
        self.net.eval()
        b, t, n = np.asarray(histories).shape[:3]
        outs = [self.net(self._inputs(histories[lo: lo + batch])).numpy() for lo in range(0, b, batch)]
        out = np.concatenate(outs, 0)
        if self.config.mode == "agent":
            out = out.reshape(b, n, t, -1).transpose(0, 2, 1, 3)
        return out

    def predict(self, data: HistoryDataset) -> np.ndarray:
        return self.predict_histories(data.histories)

    def reconstruct(self, histories: np.ndarray) -> np.ndarray:
        """The state at the last step of each history: ``[B, d]`` (agent mode: ``[B, n, d]``)."""
        return self.predict_histories(histories)[:, -1]

    def save(self, directory: str | Path) -> Path:
        return save_checkpoint(directory, dict(self.net.state_dict()),
                               {"kind": KIND, "config": asdict(self.config), "meta": self.meta,
                                "report": self.report})


def load(directory: str | Path) -> HistoryRegression:
    tensors, cfg = load_checkpoint(directory, KIND)
    config = Config(**cfg["config"])
    meta = cfg["meta"]
    n, f = meta["n_agents"], meta["feature_dim"]
    net = HistoryRNN(n * f if config.mode == "joint" else f + n, meta["state_dim"], config.hidden, config.layers)
    net.load_state_dict(tensors)
    return HistoryRegression(net, config, meta, cfg.get("report"))


def fit(data: HistoryDataset, config: Config | None = None) -> HistoryRegression:
    """Train on every prefix of every episode of ``data``; deterministic under ``config.seed``."""
    config = config or Config()
    if config.mode not in MODES:
        raise ValueError(f"unknown regression mode {config.mode!r}; valid: {', '.join(MODES)}")
    seed_everything(config.seed)
    meta = {k: data.meta[k] for k in ("env_id", "env_kwargs", "n_agents", "feature_dim", "state_dim", "state_kind")}
    n, f, d = meta["n_agents"], meta["feature_dim"], meta["state_dim"]
    net = HistoryRNN(n * f if config.mode == "joint" else f + n, d, config.hidden, config.layers)
    model = HistoryRegression(net, config, meta)
    x = model._inputs(data.histories)  # [M, T, in]
    y = torch.as_tensor(data.states, dtype=torch.float32)  # [N, T, d]
    if config.mode == "agent":
        y = y.repeat_interleave(n, dim=0)  # row e * n + i is agent i of episode e
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    steps = config.epochs * -(-x.shape[0] // config.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=0.05 * config.lr)
    gen = torch_generator(config.seed)
    t0 = time.perf_counter()
    bar = progress(total=steps, desc=f"regression ({config.mode})")
    done = 0
    for _ in range(config.epochs):
        net.train()
        for idx in torch.randperm(x.shape[0], generator=gen).split(config.batch_size):
            loss = ((net(x[idx]) - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if config.max_seconds is not None and time.perf_counter() - t0 > config.max_seconds:
            break
    bar.close()
    model.report = {"train_time": time.perf_counter() - t0, "steps": done, "train_episodes": len(data)}
    return model


def evaluate(model: HistoryRegression, data: HistoryDataset) -> dict[str, Any]:
    """Test MSE over every step (``mse``) and at the last step (``mse_final``); per agent and
    averaged in agent mode; MAP accuracy for small discrete state spaces (dec-tiger)."""
    pred = model.predict(data)
    states = data.states if model.config.mode == "joint" else data.states[:, :, None]
    err = (pred - states) ** 2
    out: dict[str, Any] = {"mse": float(err.mean()), "mse_final": float(err[:, -1].mean())}
    if model.config.mode == "agent":
        out["mse_each"] = err.mean(axis=(0, 1, 3)).tolist()
    if data.meta.get("n_states"):
        out["accuracy"] = float((pred.argmax(-1) == states.argmax(-1)).mean())
    return out
