"""Exact posteriors: the Kalman filter against brute-force Gaussian conditioning, the discrete
filters against enumeration and Monte Carlo, and the collective-observability (CO) check."""

import numpy as np
import pytest

from infozoo.baselines.decpomdp.bayes_filter import bayes_floor, posterior, tractable
from infozoo.envs.decpomdp.histories import collect, model_of
from infozoo.envs.decpomdp.linear_gaussian import kalman_filter


def brute_force_conditioning(y, A, Q, C, R, m0, P0):
    """Mean/cov of s_T given y_0..y_T by conditioning the joint Gaussian of all (s_t, y_t)."""
    t_len, d = y.shape[0], A.shape[0]
    means, covs = [m0], [P0]
    for _ in range(1, t_len):
        means.append(A @ means[-1])
        covs.append(A @ covs[-1] @ A.T + Q)
    sxx = np.zeros((t_len * d, t_len * d))
    for t in range(t_len):
        for u in range(t, t_len):
            block = np.linalg.matrix_power(A, u - t) @ covs[t]  # Cov(s_u, s_t)
            sxx[u * d:(u + 1) * d, t * d:(t + 1) * d] = block
            sxx[t * d:(t + 1) * d, u * d:(u + 1) * d] = block.T
    g = np.kron(np.eye(t_len), C)
    syy = g @ sxx @ g.T + np.kron(np.eye(t_len), R)
    sxy = sxx @ g.T
    gain = sxy @ np.linalg.pinv(syy, rtol=1e-12, hermitian=True)
    mx = np.concatenate(means)
    mean = mx + gain @ (y.reshape(-1) - g @ mx)
    cov = sxx - gain @ sxy.T
    return mean[-d:], cov[-d:, -d:]


def simulate(rng, A, Q, C, R, m0, P0, t_len):
    s = rng.multivariate_normal(m0, P0)
    ys = []
    for t in range(t_len):
        if t > 0:
            s = A @ s + rng.multivariate_normal(np.zeros(len(m0)), Q)
        ys.append(C @ s + (rng.multivariate_normal(np.zeros(C.shape[0]), R) if R.any() else 0.0))
    return np.array(ys)


@pytest.mark.parametrize("noise", [0.3, 0.0])
@pytest.mark.parametrize("singular_q", [False, True])
def test_kalman_matches_brute_force_gaussian_conditioning_to_1e8(noise, singular_q):
    rng = np.random.default_rng(3)
    d, t_len = 3, 4
    A = rng.normal(size=(d, d)) * 0.6
    L = rng.normal(size=(d, 1 if singular_q else d))
    Q = L @ L.T * 0.3
    C = rng.normal(size=(2, d))
    C[1] = 2 * C[0]  # rank 1: S = C P C^T is singular when noiseless
    R = noise**2 * np.eye(2)
    m0, P0 = rng.normal(size=d), np.diag([1.0, 0.5, 2.0])
    for _ in range(3):
        y = simulate(rng, A, Q, C, R, m0, P0, t_len)
        means, covs = kalman_filter(y[None], A, Q, C, R, m0, P0)
        for t in range(1, t_len + 1):
            mean, cov = brute_force_conditioning(y[:t], A, Q, C, R, m0, P0)
            np.testing.assert_allclose(means[0, t - 1], mean, atol=1e-8)
            np.testing.assert_allclose(covs[t - 1], cov, atol=1e-8)


def test_linear_gaussian_posterior_uses_each_agents_rows():
    model = model_of("linear-gaussian-v0", dim=4, n_agents=2, obs_noise=0.2)
    data = collect("linear-gaussian-v0", 5, seed=1, env_kwargs={"dim": 4, "n_agents": 2, "obs_noise": 0.2})
    mean, cov = posterior(data, [1]).mean, posterior(data, [1]).cov
    ref_mean, ref_cov = kalman_filter(data.observations[:, :, 1].astype(float), model.A, model.Q, model.C[1],
                                      model.R[1], model.m0, model.P0)
    np.testing.assert_allclose(mean, ref_mean)
    np.testing.assert_allclose(cov, ref_cov)


def test_co_linear_gaussian_joint_posterior_is_the_true_state_when_noiseless():
    kw = {"obs_noise": 0.0}
    data = collect("linear-gaussian-v0", 200, seed=0, env_kwargs=kw)
    joint = posterior(data)
    assert np.abs(joint.mean - data.states).max() < 1e-5  # float32 storage of the data
    assert np.trace(joint.cov[-1]) < 1e-10
    alone = posterior(data, [0])
    assert np.trace(alone.cov[-1]) > 0.5  # one agent never sees half of the coordinates


def test_non_co_linear_gaussian_joint_posterior_keeps_an_unobserved_direction():
    data = collect("linear-gaussian-v0", 200, seed=0, env_kwargs={"obs_noise": 0.0, "co": False})
    assert not data.meta["collectively_observable"]
    joint = posterior(data)
    assert np.trace(joint.cov[-1]) == pytest.approx(1.0, abs=1e-6)  # the last coordinate: its prior N(0, 1)
    assert np.abs(joint.mean - data.states)[..., :3].max() < 1e-5


def test_co_sensor_grid_joint_posterior_concentrates_on_the_true_state():
    kw = {"rows": 3, "cols": 5, "n_prey": 2, "max_cycles": 6}
    data = collect("sensor-grid-v0", 100, seed=0, env_kwargs=kw)
    assert data.meta["collectively_observable"]
    floor = bayes_floor(data)
    assert floor["joint_mse"] < 1e-12
    assert floor["agent_mse"] > 0.02  # a single sensor does not know where the other prey are


def test_sensor_grid_filter_with_one_prey_is_the_hidden_markov_model_filter():
    kw = {"rows": 3, "cols": 5, "n_prey": 1, "max_cycles": 5}
    model = model_of("sensor-grid-v0", **kw)
    data = collect("sensor-grid-v0", 30, seed=2, env_kwargs=kw)
    got = posterior(data, [1]).mean
    patch = model.patch_cells[1]
    for e in range(len(data)):
        b = np.full(model.n_cells, 1.0 / model.n_cells)
        for t in range(data.states.shape[1]):
            if t > 0:
                b = b @ model.transition
            seen = np.zeros(model.n_cells)
            for pos, cell in enumerate(patch):
                if cell >= 0:
                    seen[cell] = data.observations[e, t, 1, pos]
            inside = np.isin(np.arange(model.n_cells), patch)
            lik = np.where(inside, seen, 1.0 - seen.sum())  # prey in a watched cell, or unseen outside
            b = b * lik
            b /= b.sum()
            np.testing.assert_allclose(got[e, t], b, atol=1e-12)


def test_dec_tiger_is_not_collectively_observable():
    data = collect("dec-tiger-v0", 2000, seed=0)
    joint = posterior(data)
    assert not data.meta["collectively_observable"]
    assert (1 - joint.probs.max(-1)).mean() > 0.1  # the joint posterior stays spread
    assert bayes_floor(data)["joint_mse"] > 0.1


def test_dec_tiger_posteriors_match_monte_carlo_frequencies():
    """P(tiger right | h) from the filter equals the frequency among episodes with history h
    (within 4 standard errors), for one agent (the other's action is unseen) and jointly."""
    data = collect("dec-tiger-v0", 100_000, policy="scripted", seed=5, batch=100_000, env_kwargs={"max_cycles": 2})
    right = data.states[:, -1, 1]
    for agents in ([0], None):
        probs = posterior(data, agents).probs[:, -1, 1]
        cols = [0] if agents else [0, 1]
        key = np.concatenate([data.observations[:, :, cols].argmax(-1).reshape(len(data), -1),
                              data.actions[:, :, cols].reshape(len(data), -1)], 1)
        _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
        inv = inv.ravel()
        checked = 0
        for g in np.flatnonzero(counts > 1500):
            members = inv == g
            p = probs[members][0]
            assert np.ptp(probs[members]) < 1e-12  # the posterior is a function of the history
            assert abs(right[members].mean() - p) < 4 * np.sqrt(p * (1 - p) / members.sum()) + 1e-9
            checked += 1
        assert checked >= 8


def test_spread_po_has_no_exact_filter():
    pytest.importorskip("mpe2")
    assert not tractable("spread-po-v0")
    data = collect("spread-po-v0", 2, seed=0, env_kwargs={"max_cycles": 3})
    with pytest.raises(ValueError, match="no exact Bayes filter"):
        posterior(data)
