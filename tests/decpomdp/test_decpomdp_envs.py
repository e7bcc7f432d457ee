"""Dynamics, rewards, datasets and baselines of the Dec-POMDP suite (small budgets)."""

import numpy as np
import pytest

import infozoo
from infozoo.envs.decpomdp.dec_tiger import LISTEN, OPEN_LEFT, OPEN_RIGHT, reward_table
from infozoo.envs.decpomdp.histories import HistoryDataset, collect, model_of


def test_metadata_says_which_envs_are_collectively_observable():
    assert infozoo.make("sensor-grid-v0").metadata["collectively_observable"] is True
    assert infozoo.make("dec-tiger-v0").metadata["collectively_observable"] is False
    assert infozoo.make("linear-gaussian-v0").metadata["collectively_observable"] is True
    assert infozoo.make("linear-gaussian-v0", co=False).metadata["collectively_observable"] is False


def test_sensor_grid_default_is_the_maco_task_and_patches_cover_the_grid():
    model = model_of("sensor-grid-v0")
    assert model.info.n_agents == 15 and (model.rows, model.cols, model.n_prey) == (5, 9, 3)
    covered = set(model.patch_cells[model.patch_cells >= 0].tolist())
    assert covered == set(range(45))
    env = infozoo.make("sensor-grid-v0")
    obs, _ = env.reset(seed=3)
    state = env.state()
    assert state.shape == (45,) and state.sum() == 3
    # every sensor's patch counts are the state's counts in its patch
    for i, a in enumerate(env.agents):
        cells = model.patch_cells[i]
        np.testing.assert_array_equal(obs[a][:9], np.where(cells >= 0, state[cells], 0))


def test_sensor_grid_pays_for_a_prey_scanned_by_two_sensors():
    model = model_of("sensor-grid-v0", capture_reward=3.0, scan_cost=0.1)
    prey = np.array([[1 * 9 + 1, 0, 0]])  # one prey at (1, 1), two at (0, 0)
    acts = np.zeros((1, 15), np.int64)
    acts[0, 0] = 8  # sensor (0, 0) scans offset (1, 1) -> cell (1, 1)
    acts[0, 1] = 6  # sensor (0, 2) scans offset (1, -1) -> cell (1, 1)
    _, _, r = model.step(prey, acts, np.random.default_rng(0))
    assert r[0, 0] == pytest.approx(3.0 - 0.2) and np.all(r == r[0, 0])
    acts[0, 1] = 0  # a single scanner catches nothing
    _, _, r = model.step(prey, acts, np.random.default_rng(0))
    assert r[0, 0] == pytest.approx(-0.1)


def test_sensor_grid_prey_move_at_most_two_cells():
    model = model_of("sensor-grid-v0")
    rng = np.random.default_rng(0)
    prey, _ = model.reset(500, rng)
    new, _, _ = model.step(prey, np.zeros((500, 15), np.int64), rng)
    assert np.abs(new // 9 - prey // 9).max() == 2 and np.abs(new % 9 - prey % 9).max() == 2
    np.testing.assert_allclose(model.transition.sum(1), 1.0)


def test_dec_tiger_rewards_are_the_literature_table():
    r = reward_table()
    tl = 0  # tiger left: opening left meets the tiger
    assert r[tl, LISTEN, LISTEN] == -2
    assert r[tl, OPEN_RIGHT, OPEN_RIGHT] == 20 and r[tl, OPEN_LEFT, OPEN_LEFT] == -50
    assert r[tl, OPEN_LEFT, OPEN_RIGHT] == -100 and r[tl, LISTEN, OPEN_RIGHT] == 9 and r[tl, OPEN_LEFT, LISTEN] == -101
    np.testing.assert_array_equal(r[1], r[0][[0, 2, 1]][:, [0, 2, 1]])  # mirror image


def test_dec_tiger_listening_is_85_percent_accurate():
    model = model_of("dec-tiger-v0")
    rng = np.random.default_rng(0)
    tiger, _ = model.reset(20_000, rng)
    tiger, obs, _ = model.step(tiger, np.zeros((20_000, 2), np.int64), rng)
    assert (obs.argmax(-1) == tiger[:, None]).mean() == pytest.approx(0.85, abs=0.01)


def test_linear_gaussian_matrices_and_noiseless_observations():
    model = model_of("linear-gaussian-v0", dim=4, n_agents=2, obs_noise=0.0)
    assert np.linalg.matrix_rank(model.C_joint) == 4 and all(np.linalg.matrix_rank(c) == 2 for c in model.C)
    assert not model.R_joint.any()
    rng = np.random.default_rng(0)
    s, y = model.reset(3, rng)
    np.testing.assert_allclose(y, np.stack([s @ c.T for c in model.C], 1))
    non_co = model_of("linear-gaussian-v0", co=False)
    assert np.linalg.matrix_rank(non_co.C_joint) == 3


def test_spread_po_hides_what_is_out_of_view():
    pytest.importorskip("mpe2")
    env = infozoo.make("spread-po-v0", view_radius=0.0)
    obs, _ = env.reset(seed=0)
    assert env.state().shape == (18,)
    for o in obs.values():
        assert not o[4:].any()  # radius 0: no landmark or agent is visible
    far = infozoo.make("spread-po-v0", view_radius=100.0)
    obs, _ = far.reset(seed=0)
    s = far.state()
    lm = s[12:].reshape(3, 2) - s[0:2]
    np.testing.assert_allclose(obs["agent_0"][4:13].reshape(3, 3)[:, 1:], lm, atol=1e-6)


@pytest.mark.parametrize("bad", [{"rows": 0}, {"n_prey": -1}, {"max_cycles": 1.5}])
def test_bad_arguments_name_the_argument(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        infozoo.make("sensor-grid-v0", **bad)


def test_bad_actions_are_rejected():
    env = infozoo.make("dec-tiger-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="agent_1"):
        env.step({"agent_0": 0, "agent_1": 7})


def test_collect_is_deterministic_and_round_trips(tmp_path):
    a = collect("sensor-grid-v0", 30, "scripted", seed=4, batch=7)
    b = collect("sensor-grid-v0", 30, "scripted", seed=4, batch=7)
    np.testing.assert_array_equal(a.histories, b.histories)
    assert not np.array_equal(a.states, collect("sensor-grid-v0", 30, "scripted", seed=5, batch=7).states)
    assert a.histories.shape == (30, 21, 15, 20) and a.states.shape == (30, 21, 45)
    # layout: observation columns, then the previous action one-hot (zeros at t = 0)
    lo, hi = a.meta["feature_slices"]["previous_action"]
    assert not a.histories[:, 0, :, lo:hi].any()
    np.testing.assert_array_equal(a.histories[:, 1:, :, lo:hi].argmax(-1), a.actions)
    a.save(tmp_path / "d.safetensors")
    c = HistoryDataset.load(tmp_path / "d.safetensors")
    np.testing.assert_array_equal(c.histories, a.histories)
    assert c.meta == a.meta and (tmp_path / "d.safetensors.json").is_file()
    assert c.meta["state_kind"] == "discrete" and c.meta["collectively_observable"]


@pytest.mark.parametrize("env_id", ["sensor-grid-v0", "dec-tiger-v0", "linear-gaussian-v0"])
def test_the_parallel_env_is_the_batched_model_with_one_episode(env_id):
    """env.reset(seed=s) and its steps are model.reset/step(1, default_rng(s)): datasets and the
    PettingZoo env share one implementation of the dynamics."""
    env = infozoo.make(env_id)
    model = env.model
    rng = np.random.default_rng(11)
    obs, _ = env.reset(seed=11)
    internal, mobs = model.reset(1, rng)
    while env.agents:
        np.testing.assert_allclose(np.stack([obs[a] for a in env.agents]), mobs[0], rtol=1e-6)
        np.testing.assert_allclose(env.state(), model.state_vector(internal)[0], rtol=1e-6)
        acts = {a: env.action_space(a).sample() for a in env.agents}
        batch = np.stack([np.asarray(acts[a]) for a in env.agents])[None]
        obs, rew, _, _, _ = env.step(acts)
        internal, mobs, mrew = model.step(internal, batch, rng)
        np.testing.assert_allclose([rew[a] for a in rew], mrew[0], rtol=1e-6)


def test_collect_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="random"):
        collect("dec-tiger-v0", 3, policy="clever")
    with pytest.raises(ValueError, match="Dec-POMDP"):
        collect("auction-v0", 3)
    with pytest.raises(ValueError, match="episodes"):
        collect("dec-tiger-v0", 0)
    (tmp_path / "bad.safetensors").write_bytes(b"not a dataset")
    with pytest.raises(ValueError, match="bad.safetensors"):
        HistoryDataset.load(tmp_path / "bad.safetensors")


def test_cli_collect_writes_a_dataset(tmp_path, capsys):
    from infozoo.cli import main

    out = tmp_path / "tiger.safetensors"
    assert main(["collect", "dec-tiger-v0", "--episodes", "20", "--out", str(out), "--seed", "1"]) == 0
    data = HistoryDataset.load(out)
    assert len(data) == 20 and data.meta["env_id"] == "dec-tiger-v0" and data.meta["seed"] == 1
    assert main(["collect", "no-such-v0", "--episodes", "2", "--out", str(out)]) == 2
