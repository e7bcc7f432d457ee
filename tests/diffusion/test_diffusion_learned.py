"""The learned reconstructor on a tiny budget: contract, determinism, checkpoints, composite gain."""

import numpy as np
import pytest
import torch

from infozoo.envs.decpomdp.histories import collect
from infozoo.solvers.diffusion import train
from infozoo.solvers.diffusion.analysis import analyse_fixed_points


@pytest.fixture(scope="module")
def lg():
    cfg = train.default_config("linear-gaussian-v0?obs_noise=0.0", seed=0)
    cfg.train_episodes, cfg.steps, cfg.hidden, cfg.width, cfg.blocks, cfg.batch_episodes = 2000, 250, 32, 64, 2, 32
    cfg.pairs = 512
    data = collect("linear-gaussian-v0", 2000, seed=0, env_kwargs={"obs_noise": 0.0})
    test = collect("linear-gaussian-v0", 64, seed=7, env_kwargs={"obs_noise": 0.0})
    return train.fit(data, cfg), cfg, data, test


def test_contract_shapes_and_composite_beats_single_agent(lg):
    recon, _, _, test = lg
    h = test.histories  # [B, T, n, F]
    s = test.states[:, -1]
    comp = recon.reconstruct(h)
    assert comp.shape == (64, 4) and comp.dtype == np.float32
    assert recon.last_flow is not None and recon.last_flow.sweeps >= 1
    single = [recon.reconstruct(h, agents=[i]) for i in range(2)]
    err_c = ((comp - s) ** 2).mean()
    err_s = np.mean([((x - s) ** 2).mean() for x in single])
    assert err_s > 0.3  # one agent sees half of the state: the other half keeps its prior variance (1)
    assert err_c < 0.35 * err_s  # CO: the agents' fixed points intersect at the true state
    samples = recon.sample(h[:5], 7)
    assert samples.shape == (5, 7, 4)
    with pytest.raises(ValueError, match="histories must have shape"):
        recon.reconstruct(h[..., :3])


def test_save_load_roundtrip_and_determinism(lg, tmp_path):
    recon, cfg, data, test = lg
    recon.save(tmp_path / "ck")
    again = train.load(tmp_path / "ck")
    np.testing.assert_allclose(again.reconstruct(test.histories), recon.reconstruct(test.histories), atol=1e-6)
    cfg2 = train.default_config("linear-gaussian-v0?obs_noise=0.0", seed=0)
    cfg2.__dict__.update({k: getattr(cfg, k) for k in ("train_episodes", "hidden", "width", "blocks",
                                                       "batch_episodes", "pairs")})
    cfg2.steps = 5
    a, b = train.fit(data.subset(slice(0, 200)), cfg2), train.fit(data.subset(slice(0, 200)), cfg2)
    for (ka, va), (kb, vb) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    with pytest.raises(ValueError, match="not 'diffusion'|does not exist"):
        train.load(tmp_path / "missing")


def test_fixed_point_analysis_runs_on_learned_denoisers(lg):
    recon, _, _, test = lg
    den = recon.bind(test.histories[:16])
    fa = analyse_fixed_points(den, recon.to_z(test.states[:16, -1]), recon.flow.sigma_min)
    assert fa.rank.shape == (16, 2) and np.all((fa.rank >= 0) & (fa.rank <= 4))
    summary = fa.summary()
    assert {"deviation_spearman", "bound_mean", "rank_mean"} <= set(summary)


def test_config_parsing_and_bad_input():
    env, kw = train.parse_env("linear-gaussian-v0?obs_noise=0.0&co=False")
    assert env == "linear-gaussian-v0" and kw == {"obs_noise": 0.0, "co": False}
    assert train.default_config("sensor-grid-v0").env_kwargs == {"max_cycles": 10}
    with pytest.raises(ValueError, match="unknown Dec-POMDP env"):
        train.default_config("auction-v0")
    with pytest.raises(ValueError, match="profile"):
        train.default_config("dec-tiger-v0", profile="huge")
    cfg = train.default_config("dec-tiger-v0")
    cfg.flow = {"sigma_mn": 0.1}
    with pytest.raises(ValueError, match="unknown flow setting"):
        train.fit("dec-tiger-v0", cfg)


def test_evaluation_tables_and_plots(lg, tmp_path):
    from infozoo.bench.store import Record
    from infozoo.bench.tables.decpomdp_diffusion import diffusion_plots, diffusion_tables
    from infozoo.envs.decpomdp.histories import model_of
    from infozoo.solvers.diffusion.evaluate import evaluate
    from infozoo.solvers.diffusion.exact import exact_denoiser

    recon, _, _, test = lg
    test = test.subset(slice(0, 16))
    exact = exact_denoiser(model_of("linear-gaussian-v0", obs_noise=0.0), test.observations, t=-1)
    ev = evaluate(recon, test, exact=exact, analysis_episodes=16)
    assert ev["nmse"] < ev["agent_nmse"] and 0 < ev["iterations"] <= recon.flow.max_sweeps
    assert "rank_affine_distance_mean" in ev and len(ev["curves"]["composite_error"]) >= recon.flow.flow_steps - 1
    rec = lambda method, metrics: Record("k", "decpomdp", "linear-gaussian", method, 0, "quick", {},  # noqa: E731
                                         metrics, 1.0, "0", "x", "now")
    records = [rec("diffusion-composite", {**ev, "train_time": 1.0}), rec("bayes-joint", {"mse": 0.5 * ev["mse"]})]
    tables = diffusion_tables(records)
    assert len(tables) == 2 and tables[0].rows[0][0] == "linear-gaussian"
    assert float(tables[0].rows[0][4].split()[0]) == pytest.approx(2.0, rel=1e-3)  # composite / Bayes floor
    paths = diffusion_plots(records, tmp_path)
    assert len(paths) == 3 and all(p.stat().st_size > 1000 for p in paths)


def test_edm_preconditioning_and_registry_entry():
    from infozoo import registry
    from infozoo.solvers.diffusion.model import ConditionalDenoiser

    net = ConditionalDenoiser(state_dim=5, cond_dim=3, width=16, blocks=1, local=4)
    x, e = torch.randn(7, 5), torch.randn(7, 3)
    with torch.no_grad():
        assert torch.allclose(net(x, torch.full((7,), 1e-6), e), x, atol=1e-4)  # c_skip -> 1, c_out -> 0
        big = torch.full((7,), 1e5)  # c_skip -> 0 and c_in -> 0: D forgets x (the posterior mean given e only)
        assert torch.allclose(net(x, big, e), net(10 * torch.randn(7, 5), big, e), atol=1e-2)
    solver = registry.load("solver", "diffusion")
    assert {"Config", "default_config", "fit", "load"} <= set(dir(solver))
    assert registry.get("solver", "diffusion").domain == "decpomdp"
