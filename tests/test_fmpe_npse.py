"""FMPE and NPSE (ODE posteriors): densities against an analytic posterior, composition, options.

The model is sbibm's gaussian_linear reduced to 2-d: θ ~ N(0, 0.1·I), x | θ ~ N(θ, 0.1·I),
so p(θ | x_1…x_k) = N(Σx/(k+1), 0.1/(k+1)·I). Tests use tiny networks and few epochs.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lfi
from lfi.methods.fmpe import FMPE
from lfi.methods.npse import NPSE, sample_iid
from lfi.nets.paths import OTFlowPath, VPScorePath, path_from_config

VAR = 0.1
PRIOR = lfi.Normal(0.0, np.sqrt(VAR), dim=2)
X_O = np.array([0.3, -0.2], np.float32)
N = 2000  # Monte-Carlo draws for every check
TINY = dict(width=64, blocks=2, batch_size=100, max_epochs=40, progress=False)
# FMPE's straight paths need few steps; the VP probability-flow ODE is stiff near t_min, so
# NPSE keeps the adaptive solver (10 fixed Tsit5 steps under-disperse its samples by ~30%)
ODE = {"fmpe": dict(ode_steps=10), "npse": {}}


def analytic(xs):
    """Mean and variance (per coordinate) of p(θ | x_1…x_k)."""
    xs = np.atleast_2d(xs)
    k = xs.shape[0]
    return xs.sum(0) / (k + 1), VAR / (k + 1)


def log_normal(theta, mean, var):
    d = theta.shape[-1]
    return -0.5 * ((theta - mean) ** 2).sum(-1) / var - 0.5 * d * np.log(2 * np.pi * var)


def check_moments(s, mean, var):
    """MC s.e. of the mean is sd/√N (≈ 0.005); the tiny training budget gets 0.25 sd (≈ 0.056)
    on the mean and 35% on the variance."""
    sd = np.sqrt(var)
    np.testing.assert_allclose(s.mean(0), mean, atol=5 * sd / np.sqrt(len(s)) + 0.25 * sd)
    np.testing.assert_allclose(s.var(0), var, rtol=0.35)


@pytest.fixture(scope="module")
def data():
    theta = np.asarray(PRIOR.sample(3000, seed=0))
    noise = np.random.default_rng(0).standard_normal(theta.shape).astype(np.float32)
    return theta, theta + np.sqrt(VAR) * noise


@pytest.fixture(scope="module", params=["fmpe", "npse"])
def trained(request, data):
    est = lfi.METHODS[request.param](PRIOR, **TINY, **ODE[request.param])
    return request.param, est.fit(*data, seed=0)


def test_ode_log_prob_matches_monte_carlo_on_the_analytic_posterior(trained):
    """(a) the ODE density is the density of the ODE's own samples: importance weights against
    the analytic posterior average to 1 both ways (E_q[p/q] = ∫p = 1 and E_p[q/p] = ∫q = 1),
    within 5 Monte-Carlo standard errors (+0.01); (b) the samples' mean and variance match."""
    name, post = trained
    mean, var = analytic(X_O)
    s = np.asarray(post.sample(N, x=X_O, seed=1))
    log_q = np.asarray(post.log_prob(s, x=X_O))
    w = np.exp(log_normal(s, mean, var) - log_q)
    assert abs(w.mean() - 1) < 5 * w.std() / np.sqrt(N) + 0.01, (name, w.mean())
    p = (mean + np.sqrt(var) * np.random.default_rng(1).standard_normal((N, 2))).astype("f4")
    v = np.exp(np.asarray(post.log_prob(p, x=X_O)) - log_normal(p, mean, var))
    assert abs(v.mean() - 1) < 5 * v.std() / np.sqrt(N) + 0.01, (name, v.mean())
    assert np.corrcoef(log_q, log_normal(s, mean, var))[0, 1] > 0.9
    check_moments(s, mean, var)


def test_fixed_and_adaptive_solvers_agree_on_fmpe(trained):
    name, post = trained
    if name != "fmpe":
        pytest.skip("FMPE only")
    probe = np.asarray(PRIOR.sample(16, seed=4)) * 0.5 + analytic(X_O)[0]
    adaptive = post.with_ode(steps=None, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(post.log_prob(probe, X_O), adaptive.log_prob(probe, X_O), atol=0.05)


def test_npse_composes_iid_trials(trained):
    name, post = trained
    if name != "npse":
        pytest.skip("NPSE only")
    xs = np.array([[0.3, -0.2], [0.1, -0.4], [0.35, 0.0]], np.float32)
    s = np.asarray(sample_iid(post, N, xs, seed=2))
    assert s.shape == (N, 2) and np.all(np.isfinite(s))
    check_moments(s, *analytic(xs))


def test_sample_iid_needs_a_score_posterior(trained):
    name, post = trained
    if name == "fmpe":
        with pytest.raises(TypeError, match="NPSE"):
            sample_iid(post, 4, X_O[None])


def test_a_solve_cut_short_by_max_steps_is_an_error(trained):
    name, post = trained
    short = post.with_ode(max_steps=2)
    with pytest.raises(RuntimeError, match="max_steps=2"):
        short.sample(5, X_O, seed=0)  # diffrax stopped early: no draws
    with pytest.raises(RuntimeError, match="max_steps=2"):  # NaN densities were returned
        short.log_prob(post.sample(3, X_O, seed=0), X_O)
    if name == "npse":
        with pytest.raises(RuntimeError, match="max_steps=2"):
            sample_iid(short, 4, np.stack([X_O, X_O]))


def test_options_are_checked():
    with pytest.raises(ValueError, match="nn_widht"):
        FMPE(PRIOR, nn_widht=3)
    with pytest.raises(ValueError, match="sigma_min"):
        FMPE(PRIOR, sigma_min=1.5)
    with pytest.raises(ValueError, match="beta_min"):
        NPSE(PRIOR, beta_min=20.0)
    with pytest.raises(ValueError, match="euler"):
        NPSE(PRIOR, ode_solver="euler")
    with pytest.raises(ValueError, match="width"):
        FMPE(PRIOR, width=0)
    with pytest.raises(ValueError, match="beta_min"):
        FMPE(PRIOR, beta_min=0.1)  # a path option of the other method


def test_paths_round_trip_their_configs():
    for path in (OTFlowPath(sigma_min=1e-2, time_power=0.5), VPScorePath(beta_max=5.0)):
        assert path_from_config(path.to_config()) == path
    with pytest.raises(ValueError, match="kind"):
        path_from_config({"kind": "ve"})


def _exact_eps(path, mean, var):
    """The exact ε-prediction of a Gaussian N(mean, var) diffused along ``path`` (1-d)."""

    def net(z, t, zx):
        a, s = path.alpha_sigma(t)
        return s * (z - a * (mean if zx is None else zx)) / (a**2 * var + s**2)

    return net


def test_vp_ode_with_exact_scores_samples_the_target():
    """With the exact score, the probability-flow ODE from N(0, I) at t = 1 must return the
    target: a N(2.5, 0.1²) posterior (standardised space) to 5 standard errors of the mean
    (4000 draws: 0.008), with β_max = 20. The default β_max = 10 leaves α_1 = 0.08 and pulled
    the draws 0.0215 inwards (see VPScorePath)."""
    from lfi.posteriors.ode import _sample_z, ode_config

    path = VPScorePath(beta_max=20.0)
    z = np.asarray(_sample_z(_exact_eps(path, 2.5, 0.01), path, ode_config(),
                             jax.random.key(1), None, 4000, 1))[:, 0]  # fmt: skip
    assert abs(z.mean() - 2.5) < 5 * 0.1 / np.sqrt(4000), z.mean()
    assert abs(z.std() / 0.1 - 1) < 5 / np.sqrt(2 * 4000), z.std()


def test_a_posterior_at_the_t_min_noise_floor_is_warned():
    """The ODE stops at t_min, where the posterior is blurred by noise of sd 0.01 (default):
    with exact scores a N(0.5, 0.003²) target comes out with sd √(α²0.003² + σ²) ≈ 0.0105;
    draws that narrow are warned about, a sd of 0.1 is not."""
    import warnings

    from lfi.methods.npse import noise_floor_warning
    from lfi.posteriors.ode import _sample_z, ode_config

    path = VPScorePath(beta_max=20.0)
    z = np.asarray(_sample_z(_exact_eps(path, 0.5, 0.003**2), path, ode_config(),
                             jax.random.key(2), None, 4000, 1))  # fmt: skip
    a, s = (float(v) for v in path.alpha_sigma(jnp.asarray(path.t_min)))
    assert abs(z.std() / np.hypot(a * 0.003, s) - 1) < 5 / np.sqrt(2 * 4000), z.std()
    with pytest.warns(UserWarning, match="t_min"):
        noise_floor_warning(z, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        noise_floor_warning(0.5 + 0.1 * np.random.default_rng(0).standard_normal((4000, 2)), path)


def test_gauss_composition_is_exact_for_gaussians():
    """Prior N(0, 1), trials x_j ~ N(θ, 0.5): single-trial posteriors N(m_j, v₁), the 5-trial
    posterior N(m, v). With exact single-trial scores the GAUSS-composed score is exact, so the
    draws match N(m, v) to 5 standard errors (4000 draws). The weights of the diffused
    marginals' precisions, (α²Σ + σ²)⁻¹, put the mean 0.22 (0.7 sd) off."""
    from lfi.methods.npse import _composed_z
    from lfi.posteriors.ode import ode_config

    xs = np.array([0.8, 1.3, 0.5, 1.1, 0.9])
    v1 = 1 / (1 + 1 / 0.5)
    v = 1 / (1 + len(xs) / 0.5)
    m = v * xs.sum() / 0.5
    path = VPScorePath(beta_max=20.0)  # an exact N(0, I) start: only the composition is tested
    z = _composed_z(_exact_eps(path, None, v1), path, ode_config(), jax.random.key(0),
                    jnp.asarray(v1 * xs[:, None] / 0.5, jnp.float32), jnp.zeros(1), jnp.eye(1),
                    jnp.full((len(xs), 1, 1), v1), 4000)  # fmt: skip
    z = np.asarray(z)[:, 0]
    assert abs(z.mean() - m) < 5 * np.sqrt(v / 4000), (z.mean(), m)
    assert abs(z.std() / np.sqrt(v) - 1) < 5 / np.sqrt(2 * 4000), (z.std(), np.sqrt(v))
