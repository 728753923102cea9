"""Tests of lfi.tasks: shapes, reproducibility, likelihoods against independent math, and the
reference posteriors against closed forms or sbibm 1.1.0's own reference samples.

Every statistical check uses a tolerance of 5 Monte-Carlo standard errors computed from the
samples involved (never tuned). Samples of the exact samplers are iid. SMC samples (slcp,
ballistic) are treated as having an effective sample size of n/2: over 12 independent SMC runs
the spread of the posterior means was at most ~1.4x the iid standard error, i.e. a variance
inflation below 2.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import lfi.tasks as tasks
from lfi.priors import BoxUniform
from lfi.tasks import physics
from lfi.tasks.base import Task

DATA = Path(__file__).parent / "data"
NAMES = tasks.names()
NO_REFERENCE = {"lotka_volterra_gillespie"}  # intractable p(x | θ): no likelihood, no reference
LIK_NAMES = [n for n in NAMES if n not in NO_REFERENCE]
SMC_TASKS = {"slcp", "ballistic", "slcp_distractors", "sir", "lotka_volterra"}
# samples per reference check: one size per task (SMC compiles per n), the sizes that
# tests/test_tasks_sbibm_more.py draws, so the task's cache serves both
N_REF = {"ballistic": 4000, "bernoulli_glm": 2000, "bernoulli_glm_raw": 2000}
N_REF.update(sir=250, lotka_volterra=250)
SMC_ESS = 0.5
Z = 5.0
B = 10  # one batch size for simulate / log_likelihood calls: each new shape costs a compile


def n_ref(name: str) -> int:
    return N_REF.get(name, 10_000)


def ess(name: str, n: int) -> float:
    return n * SMC_ESS if name in SMC_TASKS else n


# --- registry --------------------------------------------------------------------------------


def test_names_and_get():
    assert NAMES == list(tasks.NAMES) and len(NAMES) == 16
    assert set(NAMES) >= {"gaussian_linear", "two_moons", "slcp", "gaussian_2d", "ballistic"}
    assert tasks.get("slcp") is tasks.get("slcp")  # shared instance keeps the cache
    with pytest.raises(ValueError, match="expected one of .*'two_moons'.*got 'Two_Moons'"):
        tasks.get("Two_Moons")


# --- every task ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_prior_simulator_shapes_and_reproducibility(name):
    task = tasks.get(name)
    assert task.name == name and task.num_observations == 10
    theta = np.asarray(task.prior.sample(B, seed=3))
    assert theta.shape == (B, task.dim_theta)
    key = jax.random.PRNGKey(7)
    x1 = task.simulator(key, jnp.asarray(theta[0]))  # one θ, plain call
    assert x1.shape == (task.dim_x,)
    np.testing.assert_array_equal(x1, task.simulator(key, jnp.asarray(theta[0])))
    # another key, another x (at the true θ: a prior draw can make sir's epidemic die out,
    # and a binomial count of a tiny I/N is 0 whatever the key)
    truth = jnp.asarray(task.true_parameters(1))
    x_true = task.simulator(key, truth)
    assert not np.allclose(x_true, task.simulator(jax.random.PRNGKey(8), truth))
    xs = task.simulate(theta, seed=1)  # jit(vmap(simulator))
    assert xs.shape == (B, task.dim_x) and np.all(np.isfinite(xs))
    np.testing.assert_array_equal(xs, task.simulate(theta, seed=1))
    assert not np.allclose(xs, task.simulate(theta, seed=2))


@pytest.mark.parametrize("name", LIK_NAMES)
def test_observations_and_likelihood_at_truth(name):
    task = tasks.get(name)
    xs = np.stack([task.observation(k) for k in range(1, 11)])
    thetas = np.stack([task.true_parameters(k) for k in range(1, 11)])
    assert xs.shape == (10, task.dim_x) and thetas.shape == (10, task.dim_theta)
    assert bool(np.all(task.prior.in_support(thetas)))
    assert task.has_likelihood
    assert np.all(np.isfinite(task.log_likelihood(thetas, xs)))
    obs = task.observation(1)
    obs[:] = 1e9  # a copy: the task's data is untouched
    assert task.observation(1)[0] != 1e9


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [0, 11, -1, 1.0, "1", True])
def test_bad_num_observation(name, bad):
    task = tasks.get(name)
    for method in (task.observation, task.true_parameters, task.reference_posterior):
        with pytest.raises(ValueError, match=r"num_observation: expected an integer in 1\.\.10"):
            method(bad)


@pytest.mark.parametrize("name", LIK_NAMES)
def test_log_likelihood_broadcasting(name):
    task = tasks.get(name)
    theta = np.asarray(task.prior.sample(B, seed=0)).reshape(2, B // 2, task.dim_theta)
    assert task.log_likelihood(theta, task.observation(2)).shape == (2, B // 2)
    xs = task.simulate(theta.reshape(B, -1), seed=0)
    assert task.log_likelihood(theta[0, 0], xs).shape == (B,)
    with pytest.raises(ValueError, match="theta: expected shape"):
        task.log_likelihood(np.zeros(task.dim_theta + 1), task.observation(1))


@pytest.mark.parametrize("name", LIK_NAMES)
def test_reference_posterior_support_and_cache(name):
    task = tasks.get(name)
    n = n_ref(name)
    s = task.reference_posterior(1, n=n, seed=0)
    assert s.shape == (n, task.dim_theta) and s.dtype == np.float32
    assert np.all(np.isfinite(s)) and bool(np.all(task.prior.in_support(s)))
    s[:] = 0.0  # a copy: the cache is untouched
    again = task.reference_posterior(1, n=n, seed=0)
    assert not np.all(again == 0.0)
    np.testing.assert_array_equal(again, task.reference_posterior(1, n=n, seed=0))
    if name not in SMC_TASKS:  # a new seed (or observation) gives new samples
        assert not np.allclose(again, task.reference_posterior(1, n=n, seed=1))
        assert not np.allclose(again, task.reference_posterior(2, n=n, seed=0))


def test_task_without_likelihood():
    prior = BoxUniform(0.0, 1.0, dim=1)
    task = Task(
        "toy",
        prior=prior,
        simulator=lambda key, theta: theta + jax.random.normal(key, (1,)),
        dim_x=1,
        observations=np.zeros((10, 1)),
        true_parameters=np.full((10, 1), 0.5),
        reference=lambda x, n, key: np.asarray(prior.sample(n, key)),
    )
    assert not task.has_likelihood
    with pytest.raises(NotImplementedError, match="toy.*no tractable likelihood"):
        task.log_likelihood([0.5], [0.0])


# --- likelihoods against independent math -------------------------------------------------


def test_gaussian_likelihoods_match_scipy():
    rng = np.random.default_rng(0)
    stds = {"gaussian_linear": math.sqrt(0.1), "gaussian_linear_uniform": math.sqrt(0.1)}
    for name, std in [*stds.items(), ("gaussian_2d", 0.1)]:
        task = tasks.get(name)
        theta = np.asarray(task.prior.sample(B, seed=1), np.float64)
        x = task.observation(3).astype(np.float64)
        want = stats.norm.logpdf(x, theta, std).sum(-1)
        np.testing.assert_allclose(task.log_likelihood(theta, x), want, rtol=1e-4, atol=1e-3)
    task = tasks.get("gaussian_mixture")
    theta = rng.uniform(-10, 10, (B, 2))
    x = task.observation(2).astype(np.float64)
    comps = [stats.multivariate_normal(np.zeros(2), s**2 * np.eye(2)) for s in (1.0, 0.1)]
    want = np.log(0.5 * comps[0].pdf(x - theta) + 0.5 * comps[1].pdf(x - theta))
    np.testing.assert_allclose(task.log_likelihood(theta, x), want, rtol=1e-4, atol=1e-3)


def test_slcp_likelihood_matches_scipy():
    task = tasks.get("slcp")
    theta = np.asarray(task.prior.sample(B, seed=2), np.float64)
    x = task.observation(1).astype(np.float64).reshape(4, 2)
    for t, got in zip(theta, np.asarray(task.log_likelihood(theta, x.ravel()))):
        s1, s2, rho = t[2] ** 2, t[3] ** 2, np.tanh(t[4])  # sbibm's parameterisation
        cov = [[s1**2 + 1e-6, rho * s1 * s2], [rho * s1 * s2, s2**2 + 1e-6]]
        want = stats.multivariate_normal(t[:2], cov).logpdf(x).sum()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def _grid_moments(logpdf, lo, hi, m):
    """Normalisation and mean of a density on a 2-d box by the midpoint rule."""
    h = (np.asarray(hi) - np.asarray(lo)) / m
    axes = [lo[i] + h[i] * (np.arange(m) + 0.5) for i in range(2)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    p = np.exp(np.asarray(logpdf(pts), np.float64)) * h.prod()
    return p.sum(), (p @ pts) / p.sum()


def test_two_moons_likelihood_is_the_simulator_density():
    task = tasks.get("two_moons")
    theta = np.array([0.3, -0.5], np.float32)
    x = np.asarray(task.simulate(np.tile(theta, (200_000, 1)), seed=0), np.float64)
    lo, hi = x.min(0) - 0.02, x.max(0) + 0.02
    mass, mean = _grid_moments(lambda pts: task.log_likelihood(theta, pts), lo, hi, 800)
    assert abs(mass - 1.0) < 2e-3  # quadrature error only
    se = x.std(0) / math.sqrt(len(x))
    assert np.all(np.abs(mean - x.mean(0)) < Z * se)


def test_ballistic_likelihood_against_monte_carlo_over_latents():
    task = tasks.get("ballistic")
    c = task.extras["constants"]
    theta, x = task.true_parameters(1), task.observation(1).astype(np.float64)
    z = np.asarray(
        jax.vmap(task.extras["sample_latents"], (0, None))(
            jax.random.split(jax.random.PRNGKey(0), 80_000), jnp.asarray(theta)
        ),
        np.float64,
    ).reshape(-1, 2)  # 400k iid (speed, angle) draws
    d = z[:, 0] ** 2 * np.sin(2 * z[:, 1]) / c["gravity"]
    for xi in x:
        dens = stats.norm.pdf(xi, d, c["sigma_d"])
        mc, se = dens.mean(), dens.std() / math.sqrt(len(dens))
        # the per-throw density, via 5 identical throws: p(x_i, ..., x_i | θ) = p(x_i | θ)^5
        quad = math.exp(float(task.log_likelihood(theta, np.full(5, xi))) / 5)
        assert abs(quad - mc) < Z * se, (xi, quad, mc, se)
    # the joint density integrates the latents back to the same likelihood structure
    lj = task.extras["joint_log_likelihood"](jnp.asarray(theta), jnp.asarray(z[:5]), x)
    want = (stats.norm.logpdf(z[:5, 0], theta[0], c["sigma_v"]).sum()
            + stats.norm.logpdf(z[:5, 1], theta[1], c["sigma_alpha"]).sum()
            + stats.norm.logpdf(x, d[:5], c["sigma_d"]).sum())  # fmt: skip
    np.testing.assert_allclose(float(lj), want, rtol=1e-4)


def test_ballistic_likelihood_is_normalised_like_the_simulator():
    task = tasks.get("ballistic")
    theta = np.array([11.0, 0.5], np.float32)
    sims = np.asarray(task.simulate(np.tile(theta, (40_000, 1)), seed=3), np.float64).ravel()
    grid = np.linspace(sims.min() - 1, sims.max() + 1, 1500)
    h = grid[1] - grid[0]
    p = np.exp(np.asarray(task.log_likelihood(theta, np.repeat(grid[:, None], 5, 1))) / 5) * h
    assert abs(p.sum() - 1.0) < 1e-3
    mean = (p @ grid) / p.sum()
    assert abs(mean - sims.mean()) < Z * sims.std() / math.sqrt(len(sims))


def test_physics_observations_are_reproducible():
    for name in ("gaussian_2d", "ballistic"):
        shipped = json.loads((Path(physics.__file__).parent / "data" / f"{name}.json").read_text())
        made = physics.generate_observations(name)
        assert made["observation_seed"] == shipped["observation_seed"]
        for key in ("true_parameters", "observations"):
            np.testing.assert_allclose(made[key], shipped[key], rtol=1e-5, atol=1e-6)


# --- reference posteriors against the math ----------------------------------------------


def _moments_z(s, mean, var, n_eff):
    """z-scores of the sample mean and variance of ``s`` against ``mean`` and ``var``."""
    c = s - s.mean(0)
    m4 = (c**4).mean(0)
    z_mean = (s.mean(0) - mean) / np.sqrt(s.var(0) / n_eff)
    z_var = (s.var(0) - var) / np.sqrt((m4 - s.var(0) ** 2) / n_eff)
    return np.abs(z_mean).max(), np.abs(z_var).max()


@pytest.mark.parametrize("k", [1, 7])
def test_gaussian_linear_reference_is_the_analytic_posterior(k):
    task = tasks.get("gaussian_linear")
    s = task.reference_posterior(k, n=10_000).astype(np.float64)
    # prior N(0, 0.1 I), likelihood N(θ, 0.1 I): posterior N(x/2, 0.05 I)
    x = task.observation(k)
    zm, zv = _moments_z(s, x / 2, 0.05, len(s))
    assert zm < Z and zv < Z
    off = np.cov(s.T)[np.triu_indices(10, 1)]
    assert np.abs(off).max() < Z * 0.05 / math.sqrt(len(s))  # SE of a zero covariance


@pytest.mark.parametrize(
    "name, std, low, high",
    [("gaussian_linear_uniform", math.sqrt(0.1), -1.0, 1.0), ("gaussian_2d", 0.1, 0.0, 2.0)],
)
def test_truncated_gaussian_references(name, std, low, high):
    task = tasks.get(name)
    for k in (1, 2):
        x = task.observation(k).astype(np.float64)
        a, b = (low - x) / std, (high - x) / std
        mean, var = stats.truncnorm.stats(a, b, loc=x, scale=std, moments="mv")
        s = task.reference_posterior(k, n=10_000).astype(np.float64)
        zm, zv = _moments_z(s, mean, var, len(s))
        assert zm < Z and zv < Z


def test_gaussian_mixture_reference_is_the_truncated_mixture():
    task = tasks.get("gaussian_mixture")
    x = task.observation(1).astype(np.float64)
    comps = []
    for sd in (1.0, 0.1):
        a, b = (-10 - x) / sd, (10 - x) / sd
        m, v = stats.truncnorm.stats(a, b, loc=x, scale=sd, moments="mv")
        comps.append((0.5 * np.prod(stats.norm.cdf(b) - stats.norm.cdf(a)), m, v))
    w = np.array([c[0] for c in comps]) / sum(c[0] for c in comps)
    mean = sum(wi * m for wi, (_, m, _) in zip(w, comps))
    var = sum(wi * (v + m**2) for wi, (_, m, v) in zip(w, comps)) - mean**2
    s = task.reference_posterior(1, n=10_000).astype(np.float64)
    zm, zv = _moments_z(s, mean, var, len(s))
    assert zm < Z and zv < Z


def test_ballistic_reference_against_grid_posterior():
    task = tasks.get("ballistic")
    m = 201
    lo, hi = np.asarray(task.prior.low, np.float64), np.asarray(task.prior.high, np.float64)
    axes = [np.linspace(lo[i], hi[i], m) for i in range(2)]
    w = np.ones(m)
    w[[0, -1]] = 0.5  # trapezoid rule
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    ll = np.asarray(task.log_likelihood(pts, task.observation(1)), np.float64)
    p = np.outer(w, w).ravel() * np.exp(ll - ll.max())
    p /= p.sum()
    mean = p @ pts
    var = p @ (pts - mean) ** 2
    s = task.reference_posterior(1, n=n_ref("ballistic")).astype(np.float64)
    zm, zv = _moments_z(s, mean, var, ess("ballistic", len(s)))
    assert zm < Z and zv < Z


# --- reference posteriors against sbibm's reference samples -----------------------------


@pytest.mark.parametrize(
    "name", ["gaussian_linear_uniform", "two_moons", "slcp", "gaussian_mixture"]
)
def test_reference_matches_sbibm_samples(name):
    ref = np.load(DATA / f"sbibm_{name}_obs1_ref2000.npz")["samples"].astype(np.float64)
    task = tasks.get(name)
    s = task.reference_posterior(1, n=n_ref(name)).astype(np.float64)
    n1, n2 = ess(name, len(s)), len(ref)

    def m4(a):
        return ((a - a.mean(0)) ** 4).mean(0)

    se_mean = np.sqrt(s.var(0) / n1 + ref.var(0) / n2)
    assert np.all(np.abs(s.mean(0) - ref.mean(0)) < Z * se_mean)
    se_var = np.sqrt((m4(s) - s.var(0) ** 2) / n1 + (m4(ref) - ref.var(0) ** 2) / n2)
    assert np.all(np.abs(s.var(0) - ref.var(0)) < Z * se_var)
    if name == "slcp":  # the four sign modes of (θ3, θ4) carry 1/4 of the mass each
        for s3 in (1, -1):
            for s4 in (1, -1):
                p1 = np.mean((np.sign(s[:, 2]) == s3) & (np.sign(s[:, 3]) == s4))
                p2 = np.mean((np.sign(ref[:, 2]) == s3) & (np.sign(ref[:, 3]) == s4))
                se = math.sqrt(0.25 * 0.75 * (1 / len(s) + 1 / n2))  # signs are iid in both
                assert abs(p1 - p2) < Z * se and abs(p1 - 0.25) < Z * math.sqrt(0.1875 / len(s))


def test_fixtures_are_small():
    for f in DATA.glob("*"):
        assert f.stat().st_size < 200_000, f


def test_task_without_reference_says_why():
    task = tasks.get("lotka_volterra_gillespie")
    assert not task.has_likelihood
    with pytest.raises(NotImplementedError, match="intractable"):
        task.reference_posterior(1, n=10)
    xs = np.stack([task.observation(k) for k in range(1, 11)])
    assert xs.shape == (10, 9) and np.all(np.isfinite(xs))
