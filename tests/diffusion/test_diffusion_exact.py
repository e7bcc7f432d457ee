"""The composite algorithm checked on the exact linear-Gaussian denoisers (no learning involved)."""

import numpy as np
import pytest
import torch

from infozoo.envs.decpomdp.histories import collect, model_of
from infozoo.solvers.diffusion.analysis import analyse_fixed_points, jacobian, numerical_rank
from infozoo.solvers.diffusion.composite import composite_flow, fixed_point, karras_sigmas, sample
from infozoo.solvers.diffusion.exact import exact_denoiser


def _exact(episodes=48, seed=0, **kw):
    data = collect("linear-gaussian-v0", episodes=episodes, seed=seed, env_kwargs=kw)
    model = model_of("linear-gaussian-v0", **kw)
    return exact_denoiser(model, data.observations, t=-1), torch.as_tensor(data.states[:, -1], dtype=torch.float64)


@pytest.mark.parametrize("kw", [{"obs_noise": 0.0}, {"obs_noise": 0.0, "dim": 6, "n_agents": 3}])
def test_composite_flow_reaches_true_state_noiseless_co(kw):
    den, s = _exact(**kw)
    res = composite_flow(den, sigma_min=1e-4, sigma_max=10.0, steps=20, tol=1e-9, target=s,
                         generator=torch.Generator().manual_seed(0))
    assert (res.x - s).norm(dim=-1).max() < 1e-6
    assert res.converged.all() and res.stop_reason == "tolerance"
    assert res.errors[-1] < 1e-6 < res.errors[0]  # error-vs-iteration diagnostic is recorded


def test_single_agent_fixed_points_are_the_consistent_affine_set():
    den, s = _exact(obs_noise=0.0)
    x0 = 3 * torch.randn(s.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for i in range(den.n_agents):
        assert (den.affine_distance(i, s) < 1e-9).all()  # the true state is consistent with h_i
        fp = fixed_point(den, i, x0, sigma=1e-3, tol=1e-8)
        assert (den.affine_distance(i, fp.x) < 1e-9).all()
        assert (den.affine_distance(i, x0) > 1e-3).all()  # ... which the starting points were not
        # ... and it is (up to the slow O(sigma^2) pull toward mu_i) the projection of x0 onto the set
        moved_free = torch.einsum("bde,be->bd", den.projection(i), fp.x - x0).norm(dim=-1)
        assert (moved_free < 1e-2 * x0.norm(dim=-1)).all()


def test_jacobian_rank_is_the_unknown_dimension():
    den, s = _exact(episodes=8, obs_noise=0.0, dim=6, n_agents=2)
    for i in range(2):
        jac = jacobian(den, i, s, 1e-3)
        assert torch.allclose(jac, den.jacobian(i, 1e-3), atol=1e-10)
        assert (numerical_rank(jac) == den.unknown_dims(i)).all() and (den.unknown_dims(i) == 3).all()
    fa = analyse_fixed_points(den, s, 1e-3, exact=den)
    assert np.all(fa.affine_distance < 1e-9) and np.all(fa.rank == fa.exact_rank)
    assert np.all(fa.pinned_deviation < 1e-9) and np.all(fa.bound < 1e-9)  # exact model: no deviation


def test_non_co_flow_stops_on_the_intersection_and_samples_spread_along_it():
    den, s = _exact(episodes=6, obs_noise=0.0, co=False)  # nobody observes the last coordinate
    res = composite_flow(den, sigma_min=1e-4, steps=20, tol=1e-9, generator=torch.Generator().manual_seed(0))
    assert (res.x[:, :3] - s[:, :3]).abs().max() < 1e-6
    smp = sample(den, 300, steps=100, sigma_min=1e-4, generator=torch.Generator().manual_seed(2))
    assert (smp[..., :3] - s[:, None, :3]).abs().max() < 1e-3  # every sample on the intersection
    # along it: the joint posterior of the unobserved coordinate is N(0, 1) (A diagonal, no information)
    assert abs(float(smp[..., 3].mean())) < 0.1 and 0.75 < float(smp[..., 3].var()) < 1.1


def test_ancestral_samples_match_the_gaussian_posterior():
    den, _ = _exact(episodes=2)
    smp = sample(den, 2000, agents=[1], steps=150, sigma_min=1e-3, generator=torch.Generator().manual_seed(3))
    mean, cov = smp.mean(1), torch.stack([torch.cov(x.T) for x in smp])
    assert (mean - den.mu[:, 1]).abs().max() < 0.1
    assert (cov - den.cov[:, 1]).abs().max() < 0.12


def test_schedule_and_bad_input():
    sig = karras_sigmas(5, 0.01, 10.0)
    assert sig[0] == pytest.approx(10.0) and sig[-1] == pytest.approx(0.01) and sig == sorted(sig, reverse=True)
    den, _ = _exact(episodes=2)
    with pytest.raises(ValueError, match="agents"):
        composite_flow(den, agents=[5])
    with pytest.raises(ValueError, match="sigma_min"):
        karras_sigmas(3, 0.0, 1.0)
