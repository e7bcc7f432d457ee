"""The streaming reconstruction API (``DiffusionReconstructor.stream``) and its use by IPPO's wrapper."""

import numpy as np
import pytest
import torch

from infozoo.solvers.diffusion.model import DiffusionNet, DiffusionReconstructor, FlowSettings


@pytest.fixture(autouse=True)
def one_thread():
    """Batch-1 flows are hundreds of tiny ops: a second torch thread only adds synchronisation."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def random_reconstructor(n: int, f: int, d: int, seed: int = 0, **flow) -> DiffusionReconstructor:
    """An untrained model with random (non-trivial) weights; the stream must match it exactly anyway."""
    torch.manual_seed(seed)
    net = DiffusionNet(f, n, d, hidden=16, layers=1, width=32, blocks=2, local=4).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.2)
    meta = {"n_agents": n, "feature_dim": f, "state_dim": d, "state_mean": [0.5] * d, "state_std": [2.0] * d}
    return DiffusionReconstructor(net, meta, FlowSettings(**{"flow_steps": 6, "max_sweeps": 12, **flow}))


@pytest.mark.parametrize("agents", [None, [1]])
def test_stream_equals_full_history_reconstruction_at_every_step(agents):
    rec = random_reconstructor(3, 5, 4, flow_tol=1e-3)
    h = np.random.default_rng(0).normal(size=(2, 6, 3, 5)).astype(np.float32)
    stream = rec.stream(2, agents)
    for t in range(h.shape[1]):
        got = stream.step(h[:, t])
        want = rec.reconstruct(h[:, : t + 1], agents)
        assert got.shape == (2, 4) and np.abs(want).max() > 0.5  # not a trivial output
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        assert stream.last_flow.sweeps == rec.last_flow.sweeps
    stream.reset()  # new histories: step 0 again
    np.testing.assert_allclose(stream.step(h[::-1, 0]), rec.reconstruct(h[::-1, :1], agents), rtol=1e-5, atol=1e-5)


def test_warm_start_continues_the_flow_from_the_previous_estimate():
    rec = random_reconstructor(3, 5, 4)
    h = np.random.default_rng(1).normal(size=(2, 3, 3, 5)).astype(np.float32)
    stream = rec.stream(2, warm={"flow_steps": 1, "max_sweeps": 2})
    first = stream.step(h[:, 0])
    np.testing.assert_allclose(first, rec.reconstruct(h[:, :1]), rtol=1e-5, atol=1e-5)  # t = 0: a cold start
    second = stream.step(h[:, 1])
    # t = 1: two sweeps at sigma_min started at the previous estimate (standardised)
    want = rec.flow_bound(rec.bind(h[:, :2]), x0=rec.to_z(first), flow_steps=1, max_sweeps=2).x
    np.testing.assert_allclose(second, rec.to_state(want).numpy(), rtol=1e-4, atol=1e-4)
    assert stream.last_flow.sweeps <= 2
    assert np.abs(second - rec.reconstruct(h[:, :2])).max() > 1e-3  # no longer the cold-start answer


def test_stream_rejects_bad_input():
    rec = random_reconstructor(3, 5, 4)
    with pytest.raises(ValueError, match="unknown flow setting"):
        rec.stream(1, flow_sweeps=3)
    with pytest.raises(ValueError, match="batch"):
        rec.stream(0)
    with pytest.raises(ValueError, match=r"rows must have shape \[2, n, F\]"):
        rec.stream(2).step(np.zeros((1, 3, 5)))
    with pytest.raises(ValueError, match="histories must have shape"):
        rec.stream(1).step(np.zeros((1, 2, 5)))


def test_ippo_wrapper_uses_the_stream_and_matches_the_full_history_fallback():
    from infozoo.baselines.decpomdp import ippo

    kw = {"rows": 3, "cols": 3, "n_prey": 1, "max_cycles": 4}  # 4 sensors, rows of 11 + 9 features, d = 9
    rec = random_reconstructor(4, 20, 9)
    calls = []
    full = rec.reconstruct
    rec.reconstruct = lambda hist, *a, **k: calls.append(hist.shape) or full(hist, *a, **k)
    envs = {}
    for use in (True, False):
        cfg = ippo.Config(env_kwargs=kw, variant="reconstructed", recon_stream=use)
        envs[use] = ippo.make_env(cfg, rec)
    assert envs[True].stream is not None and envs[False].stream is None
    for episode in range(2):  # the second episode checks that reset restarts the stream
        obs = {use: env.reset(seed=episode)[0] for use, env in envs.items()}
        rng = np.random.default_rng(episode)
        while envs[True].agents:
            for a in obs[True]:
                np.testing.assert_allclose(obs[True][a], obs[False][a], rtol=1e-5, atol=1e-5)
            acts = {a: int(rng.integers(9)) for a in envs[True].agents}
            obs = {use: env.step(acts)[0] for use, env in envs.items()}
    assert len(calls) == 2 * 5 and calls[-1] == (1, 5, 4, 20)  # only the fallback re-reads whole histories


def test_ippo_table_uses_the_cached_reconstructor_and_refuses_other_episode_lengths(tmp_path, monkeypatch):
    from infozoo.bench.runner import Task
    from infozoo.bench.tables import decpomdp
    from infozoo.bench.tables.decpomdp_diffusion import cache_dir
    from infozoo.solvers.diffusion import train

    monkeypatch.setenv("INFOZOO_CACHE", str(tmp_path))
    rec = random_reconstructor(15, 20, 45)
    rec.config = train.Config(env_id="sensor-grid-v0", hidden=16, width=32, blocks=2, local=4)
    rec.meta["max_cycles"] = 20
    rec.report = {"train_time": 12.5}
    (task,) = [t for t in decpomdp.ippo_tasks("quick") if t.method == "ippo-reconstructed" and t.seed == 0]
    p = task.params
    rec.save(cache_dir(Task("decpomdp", task.setting, "diffusion-composite", decpomdp.IPPO_RECON_SEED, "quick",
                            {"env_id": p["env_id"], "env_kwargs": p["env_kwargs"]})))
    with pytest.raises(ValueError, match="20-step episodes, IPPO runs 10-step"):
        decpomdp.ippo_reconstructor(task)  # found in the cache (else it would train), but of the wrong length


def test_ippo_render_reports_the_gap_closed_with_its_caveat():
    from infozoo.bench.store import Record
    from infozoo.bench.tables.decpomdp import ippo_render

    def rec(method, seed, ret):
        return Record(f"{method}{seed}", "decpomdp-ippo", "sensor-grid", method, seed, "quick", {},
                      {"return_mean": ret, "episodes": 200, "timesteps": 300, "train_time": 1.0}, 1.0, "", "", "")

    rows = [rec("ippo-local", 0, 10.0), rec("ippo-local", 1, 12.0), rec("ippo-oracle", 0, 30.0),
            rec("ippo-oracle", 1, 32.0), rec("ippo-reconstructed", 0, 21.0)]
    note = ippo_render(rows)[1].notes[0]
    assert "oracle - local = 20.00" in note and "gap closed by reconstructed = 0.50" in note
    assert "not meaningful" not in note
    rows[2:4] = [rec("ippo-oracle", 0, 11.0), rec("ippo-oracle", 1, 14.0)]  # gap 1.5 < pooled seed std 1.80
    assert "within the seed spread" in ippo_render(rows)[1].notes[0]
    rows[2:4] = [rec("ippo-oracle", 0, 5.0), rec("ippo-oracle", 1, 6.0)]
    assert "the oracle does not beat local" in ippo_render(rows)[1].notes[0]
