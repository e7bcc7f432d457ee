"""The sensor-network Dec-POMDP (the MACO sensor task): sensors on a grid watch moving prey."""

from __future__ import annotations

from typing import Any

import numpy as np

from infozoo.envs.decpomdp.base import DecPOMDPEnv, DecPOMDPModel, ModelInfo, check_float, check_positive_int

# the 8 neighbouring cells a sensor can scan (action k = 1..8 scans OFFSETS[k - 1]; action 0 = idle)
OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
# the 3x3 patch of a sensor, row-major (index 4 is the sensor's own cell)
PATCH = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]


class SensorGridModel(DecPOMDPModel):
    """Batched simulator of ``sensor-grid-v0`` (see ``SensorGridEnv`` for the rules).

    Useful attributes for exact filtering: ``transition`` ``[C, C]`` (one prey's move from cell to
    cell, ``C = rows * cols`` cells, row-major ``cell = row * cols + col``), ``patch_cells``
    ``[n, 9]`` (the cells each sensor sees, ``-1`` off the grid), ``sensor_cells`` ``[n]``.
    """

    def __init__(self, rows: int = 5, cols: int = 9, n_prey: int = 3, max_move: int = 2,
                 capture_reward: float = 3.0, scan_cost: float = 0.1, max_cycles: int = 20) -> None:
        self.rows = check_positive_int("rows", rows)
        self.cols = check_positive_int("cols", cols)
        self.n_prey = check_positive_int("n_prey", n_prey)
        self.max_move = check_positive_int("max_move", max_move, minimum=0)
        self.capture_reward = check_float("capture_reward", capture_reward)
        self.scan_cost = check_float("scan_cost", scan_cost, low=0.0)
        self.max_cycles = check_positive_int("max_cycles", max_cycles)
        self.n_cells = self.rows * self.cols
        # sensors sit every second cell, so their 3x3 patches cover the whole grid
        self.sensor_rc = np.array([(r, c) for r in range(0, self.rows, 2) for c in range(0, self.cols, 2)])
        n = len(self.sensor_rc)
        self.sensor_cells = self.sensor_rc[:, 0] * self.cols + self.sensor_rc[:, 1]
        self.patch_cells = np.array([[self._cell(r + dr, c + dc) for dr, dc in PATCH] for r, c in self.sensor_rc])
        self.scan_cells = np.array([[-1] + [self._cell(r + dr, c + dc) for dr, dc in OFFSETS]
                                    for r, c in self.sensor_rc])  # [n, 9]; action 0 and off-grid -> -1
        self.transition = self._transition()
        pos = self.sensor_rc / np.maximum([self.rows - 1, self.cols - 1], 1)
        self._pos_obs = pos.astype(np.float64)  # [n, 2] normalised sensor coordinates
        covered = np.zeros(self.n_cells, bool)
        covered[self.patch_cells[self.patch_cells >= 0]] = True
        self.info = ModelInfo(n_agents=n, obs_dim=len(PATCH) + 2, action_kind="discrete", action_dim=9,
                              state_dim=self.n_cells, state_kind="discrete",
                              collectively_observable=bool(covered.all()), max_cycles=self.max_cycles)
        self.obs_low, self.obs_high = 0.0, float(max(self.n_prey, 1))
        self.state_low, self.state_high = 0.0, float(self.n_prey)

    def _cell(self, r: int, c: int) -> int:
        return r * self.cols + c if 0 <= r < self.rows and 0 <= c < self.cols else -1

    def _transition(self) -> np.ndarray:
        """``T[c, c']``: a prey at ``c`` moves by an offset uniform on ``{-m..m}^2``, clipped to the grid."""
        m = self.max_move
        t = np.zeros((self.n_cells, self.n_cells))
        for r in range(self.rows):
            for c in range(self.cols):
                for dr in range(-m, m + 1):
                    for dc in range(-m, m + 1):
                        r2 = min(max(r + dr, 0), self.rows - 1)
                        c2 = min(max(c + dc, 0), self.cols - 1)
                        t[r * self.cols + c, r2 * self.cols + c2] += 1.0 / (2 * m + 1) ** 2
        return t

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "cols": self.cols, "n_prey": self.n_prey, "max_move": self.max_move,
                "capture_reward": self.capture_reward, "scan_cost": self.scan_cost, "max_cycles": self.max_cycles}

    # ---- dynamics --------------------------------------------------------------------------
    def reset(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        prey = rng.integers(0, self.n_cells, size=(batch, self.n_prey))
        return prey, self.observe(prey)

    def occupancy(self, prey: np.ndarray) -> np.ndarray:
        """Prey count per cell, ``[B, C]``."""
        occ = np.zeros((prey.shape[0], self.n_cells + 1))
        np.add.at(occ, (np.arange(prey.shape[0])[:, None], prey), 1.0)
        return occ[:, : self.n_cells]

    def observe(self, prey: np.ndarray) -> np.ndarray:
        occ = self.occupancy(prey)
        occ = np.concatenate([occ, np.zeros((occ.shape[0], 1))], axis=1)  # column -1: off the grid
        patch = occ[:, self.patch_cells]  # [B, n, 9]
        pos = np.broadcast_to(self._pos_obs, (occ.shape[0], *self._pos_obs.shape))
        return np.concatenate([patch, pos], axis=2)

    def step(self, prey: np.ndarray, actions: np.ndarray, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b = prey.shape[0]
        n = self.info.n_agents
        scanned = self.scan_cells[np.arange(n)[None, :], actions]  # [B, n], -1 = nothing
        scanners = np.zeros((b, self.n_cells + 1))
        np.add.at(scanners, (np.arange(b)[:, None], scanned), 1.0)
        hits = scanners[np.arange(b)[:, None], prey]  # [B, n_prey] sensors scanning each prey's cell
        team = self.capture_reward * (hits >= 2).sum(1) - self.scan_cost * (actions > 0).sum(1)
        rewards = np.repeat(team[:, None], n, axis=1)
        move = rng.integers(-self.max_move, self.max_move + 1, size=(b, self.n_prey, 2))
        r = np.clip(prey // self.cols + move[..., 0], 0, self.rows - 1)
        c = np.clip(prey % self.cols + move[..., 1], 0, self.cols - 1)
        prey = r * self.cols + c
        return prey, self.observe(prey), rewards

    def state_vector(self, prey: np.ndarray) -> np.ndarray:
        return self.occupancy(prey)

    def render_text(self, prey: np.ndarray) -> str:
        occ = self.occupancy(prey)[0].reshape(self.rows, self.cols)
        sensors = set(self.sensor_cells.tolist())
        lines = []
        for r in range(self.rows):
            row = []
            for c in range(self.cols):
                k = int(occ[r, c])
                row.append(str(k) if k else ("s" if r * self.cols + c in sensors else "."))
            lines.append(" ".join(row))
        return "\n".join(lines)


def scripted_policy(model: SensorGridModel):
    """Scan the neighbouring cell with the most prey in view (idle when none is in view).

    Uses only the current observation, so it is a function of the history like any policy."""
    neighbour = [PATCH.index(o) for o in OFFSETS]  # patch index of each scan action 1..8

    def policy(obs: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        counts = obs[..., neighbour]  # [B, n, 8]
        best = counts.argmax(-1) + 1
        return np.where(counts.max(-1) > 0, best, 0).astype(np.int64)

    return policy


class SensorGridEnv(DecPOMDPEnv):
    """## Description

    The sensor-network task of the MACO benchmark. Sensors sit on every second cell of a
    ``rows x cols`` grid (15 sensors on the default 5 x 9 grid) and ``n_prey`` prey walk on it:
    each step every prey moves by an offset drawn uniformly from ``{-2..2}^2`` (clipped to the
    grid), independently of the others and of the sensors. Several prey may share a cell.
    The 3 x 3 patches of the sensors cover the grid, so the joint observation identifies the state
    at every step: the task is **collectively observable**; one sensor alone is not.

    ## Agents

    ``agent_0`` ... ``agent_{n-1}``: sensor ``i`` sits at row ``2 * (i // ceil(cols/2))``, column
    ``2 * (i % ceil(cols/2))``.

    ## Observation

    ``Box(0, n_prey, (11,), float32)``: the prey count of each cell of the sensor's 3 x 3 patch
    (row-major, cells off the grid read 0), then its own position (row, col) scaled to [0, 1].

    ## Action

    ``Discrete(9)``: 0 = idle, 1..8 = scan the neighbouring cell at offset
    (-1,-1), (-1,0), (-1,1), (0,-1), (0,1), (1,-1), (1,0), (1,1).

    ## Rewards

    One team reward, paid to every agent: ``capture_reward`` (3) for every prey whose cell is
    scanned by two or more sensors at once, minus ``scan_cost`` (0.1) per scanning sensor.

    ## Episode End

    Every episode lasts ``max_cycles`` steps (all agents truncate together). ``state()`` is the
    prey count of every cell, ``rows * cols`` numbers, row-major (``state_space`` =
    ``Box(0, n_prey)``): permutation-invariant, so it is identified by the joint observation.

    ## Arguments

    ``rows=5``, ``cols=9``, ``n_prey=3``, ``max_move=2``, ``capture_reward=3.0``,
    ``scan_cost=0.1``, ``max_cycles=20``, ``render_mode=None | "ansi" | "human"``.

    >>> import infozoo
    >>> env = infozoo.make("sensor-grid-v0", n_prey=2)
    >>> obs, infos = env.reset(seed=0)
    >>> obs, rewards, terms, truncs, infos = env.step({a: 0 for a in env.agents})

    ## Version History

    - v0: initial release.
    """

    metadata = {"name": "sensor_grid_v0", "render_modes": ["ansi", "human"], "is_parallelizable": True,
                "collectively_observable": True}

    def __init__(self, rows: int = 5, cols: int = 9, n_prey: int = 3, max_move: int = 2,
                 capture_reward: float = 3.0, scan_cost: float = 0.1, max_cycles: int = 20,
                 render_mode: str | None = None) -> None:
        model = SensorGridModel(rows, cols, n_prey, max_move, capture_reward, scan_cost, max_cycles)
        self.metadata = {**self.metadata, "collectively_observable": model.info.collectively_observable}
        super().__init__(model, render_mode)
