"""Five tasks of the sbibm benchmark, defined exactly as in sbibm 1.1.0, re-implemented in JAX.

Priors, simulators, parameterisations and the ten observations (shipped in ``data/<task>.json``)
are those of sbibm 1.1.0 (MIT licence), so C2ST scores compare with the published ones
(Lueckmann et al. 2021, "Benchmarking Simulation-Based Inference", arXiv:2101.04653). Reference
posteriors are recomputed by lfi: analytic (``gaussian_linear``), exact rejection / inversion
(``gaussian_linear_uniform``, ``two_moons``, ``gaussian_mixture``) or tempered SMC on the
likelihood with the sign symmetry made explicit (``slcp``).

>>> from lfi.tasks import get
>>> task = get("gaussian_mixture")
>>> task.prior.sample(2, seed=0).shape, task.simulator(jax.random.PRNGKey(0), jnp.zeros(2)).shape
((2, 2), (2,))
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from lfi.priors import BoxUniform, Normal
from lfi.tasks.base import Task, load_data, rejection, smc_sample, truncated_normal

__all__ = ["gaussian_linear", "gaussian_linear_uniform", "gaussian_mixture", "slcp", "two_moons"]

_LOG_2PI = math.log(2 * math.pi)


def _normal_logpdf(x, mean, std):
    z = (x - mean) / std
    return -0.5 * z**2 - jnp.log(std) - 0.5 * _LOG_2PI


def _task(name: str, **kwargs) -> Task:
    data = load_data(name)
    return Task(
        name,
        observations=data["observations"],
        true_parameters=data["true_parameters"],
        source=data["source"],
        **kwargs,
    )


# --- gaussian_linear / gaussian_linear_uniform ------------------------------------------------
# sbibm: prior N(0, 0.1·I) (its "prior_scale" is a variance), x | θ ~ N(θ, 0.1·I), 10-d.
_GL_VAR = 0.1


def _gl_simulator(key, theta):
    return theta + math.sqrt(_GL_VAR) * jax.random.normal(key, theta.shape)


def _gl_loglik(theta, x):
    return jnp.sum(_normal_logpdf(x, theta, math.sqrt(_GL_VAR)))


def gaussian_linear(dim: int = 10) -> Task:
    """θ ~ N(0, 0.1·I), x | θ ~ N(θ, 0.1·I); posterior N(x/2, 0.05·I), sampled analytically.

    >>> from lfi.tasks import get
    >>> task = get("gaussian_linear")
    >>> s = task.reference_posterior(1, n=10_000)
    >>> bool(np.all(np.abs(s.mean(0) - task.observation(1) / 2) < 0.015))  # SE 0.0022
    True
    """
    post_var = 1.0 / (1.0 / _GL_VAR + 1.0 / _GL_VAR)

    def reference(x, n, key):
        mean = post_var * (x / _GL_VAR)  # prior mean 0
        return mean + math.sqrt(post_var) * np.asarray(jax.random.normal(key, (n, dim)))

    return _task(
        "gaussian_linear",
        prior=Normal(loc=0.0, scale=math.sqrt(_GL_VAR), dim=dim),
        simulator=_gl_simulator,
        dim_x=dim,
        reference=reference,
        log_likelihood=_gl_loglik,
        description="θ ~ N(0, 0.1 I₁₀), x ~ N(θ, 0.1 I₁₀). Reference: analytic Gaussian posterior.",
    )


def gaussian_linear_uniform(dim: int = 10) -> Task:
    """θ ~ U[-1, 1]¹⁰, x | θ ~ N(θ, 0.1·I); posterior N(x, 0.1·I) truncated to the box.

    The truncated Gaussian factorises over dimensions, so it is sampled exactly by inversion.

    >>> from lfi.tasks import get
    >>> s = get("gaussian_linear_uniform").reference_posterior(1, n=10_000)
    >>> bool(np.all(np.abs(s) <= 1.0))
    True
    """
    std = math.sqrt(_GL_VAR)

    def reference(x, n, key):
        return truncated_normal(x, np.full(dim, std), -np.ones(dim), np.ones(dim), n, key)

    return _task(
        "gaussian_linear_uniform",
        prior=BoxUniform(low=-1.0, high=1.0, dim=dim),
        simulator=_gl_simulator,
        dim_x=dim,
        reference=reference,
        log_likelihood=_gl_loglik,
        description="θ ~ U[-1,1]¹⁰, x ~ N(θ, 0.1 I). Reference: exact truncated-normal inversion.",
    )


# --- two_moons ---------------------------------------------------------------------------------
# sbibm: a ~ U(-π/2, π/2), r ~ N(0.1, 0.01²), p = (r cos a + 0.25, r sin a),
# z = R(-π/4) θ, x = p + (-|z₀|, z₁).
_TM_R, _TM_S, _TM_OFF = 0.1, 0.01, 0.25
_SQ = math.sqrt(0.5)


def _tm_z(theta):
    return _SQ * (theta[..., 0] + theta[..., 1]), _SQ * (theta[..., 1] - theta[..., 0])


def _tm_p(key, shape=()):
    ka, kr = jax.random.split(key)
    a = jax.random.uniform(ka, shape, minval=-math.pi / 2, maxval=math.pi / 2)
    r = _TM_R + _TM_S * jax.random.normal(kr, shape)
    return jnp.stack([r * jnp.cos(a) + _TM_OFF, r * jnp.sin(a)], -1)


def _tm_simulator(key, theta):
    z0, z1 = _tm_z(theta)
    return _tm_p(key) + jnp.stack([-jnp.abs(z0), z1])


def _tm_loglik(theta, x):
    """Exact density of x: the polar change of variables gives N(ρ; 0.1, 0.01) / (π ρ).

    (sbibm's ``_likelihood`` omits the 1/(πρ) Jacobian; its reference sampler does not use it.)
    """
    z0, z1 = _tm_z(theta)
    u, v = x[0] + jnp.abs(z0) - _TM_OFF, x[1] - z1
    rho = jnp.sqrt(u**2 + v**2)
    r = jnp.where(u >= 0, rho, -rho)  # r < 0 (a ~10σ event) lands at u < 0
    return _normal_logpdf(r, _TM_R, _TM_S) - jnp.log(math.pi * rho)


def two_moons() -> Task:
    """The two-moons task; the reference is sampled exactly as in sbibm.

    Given x_o, draw p from the simulator's noise, set |z₀| = p₀ − x₀ (rejected if negative: no θ
    maps there), z₁ = x₁ − p₁, pick the sign of z₀ with probability ½, rotate back and reject
    θ outside the prior box. (sbibm keeps the p₀ < x₀ draws; none of the 10 observations has
    x₀ > 0.25 = min p₀, so this changes nothing for them.)

    >>> from lfi.tasks import get
    >>> get("two_moons").reference_posterior(1, n=10_000).shape
    (10000, 2)
    """
    prior = BoxUniform(low=-1.0, high=1.0, dim=2)

    def propose(x):
        def f(key, m):
            k1, k2 = jax.random.split(key)
            p = _tm_p(k1, (m,))
            q0, z1 = p[:, 0] - x[0], x[1] - p[:, 1]
            z0 = jnp.where(jax.random.bernoulli(k2, 0.5, (m,)), q0, -q0)
            theta = jnp.stack([_SQ * (z0 - z1), _SQ * (z0 + z1)], -1)
            return jnp.concatenate([theta, q0[:, None]], -1)

        return f

    def accept(s):
        return (s[:, 2] >= 0) & np.asarray(prior.in_support(s[:, :2]))

    return _task(
        "two_moons",
        prior=prior,
        simulator=_tm_simulator,
        dim_x=2,
        reference=lambda x, n, key: rejection(propose(x), accept, n, key)[:, :2],
        log_likelihood=_tm_loglik,
        description="Two moons (sbibm). Reference: exact inversion of the simulator + rejection.",
    )


# --- slcp ----------------------------------------------------------------------------------
# sbibm: θ ~ U[-3, 3]⁵; m = (θ₀, θ₁), s₁ = θ₂², s₂ = θ₃², ρ = tanh θ₄,
# Σ = [[s₁² + ε, ρ s₁ s₂], [ρ s₁ s₂, s₂² + ε]], ε = 1e-6; x = 4 iid N(m, Σ) draws, flattened.
_EPS = 1e-6


def _slcp_cov(theta):
    s1, s2 = theta[2] ** 2, theta[3] ** 2
    rho = jnp.tanh(theta[4])
    v1, v2 = s1**2 + _EPS, s2**2 + _EPS
    det = (s1 * s2) ** 2 / jnp.cosh(theta[4]) ** 2 + _EPS * (s1**2 + s2**2) + _EPS**2
    return v1, v2, rho * s1 * s2, det


def _slcp_simulator(key, theta):
    v1, v2, c, det = _slcp_cov(theta)
    eps = jax.random.normal(key, (4, 2))
    l00 = jnp.sqrt(v1)
    x0 = theta[0] + l00 * eps[:, 0]
    x1 = theta[1] + (c / l00) * eps[:, 0] + jnp.sqrt(det / v1) * eps[:, 1]
    return jnp.stack([x0, x1], -1).reshape(8)


def _slcp_loglik(theta, x):
    v1, v2, c, det = _slcp_cov(theta)
    d = x.reshape(4, 2) - theta[:2]
    quad = (v2 * d[:, 0] ** 2 - 2 * c * d[:, 0] * d[:, 1] + v1 * d[:, 1] ** 2) / det
    return jnp.sum(-0.5 * quad) - 2.0 * jnp.log(det) - 4 * _LOG_2PI


def slcp() -> Task:
    """Simple likelihood, complex posterior (sbibm), reference by tempered SMC.

    The likelihood depends on θ₂ and θ₃ only through θ₂², θ₃², so under the symmetric prior the
    posterior has four mirror-image modes of exactly equal mass. SMC samples the folded
    posterior on θ₂, θ₃ ≥ 0 (started from the prior, so separated modes there are weighed
    correctly); each sample then gets independent fair random signs for θ₂ and θ₃.

    >>> from lfi.tasks import get
    >>> s = get("slcp").reference_posterior(1, n=10_000)
    >>> s.shape, bool(np.all(np.abs(s) <= 3.0))
    ((10000, 5), True)
    """
    folded = BoxUniform(low=[-3.0, -3.0, 0.0, 0.0, -3.0], high=[3.0, 3.0, 3.0, 3.0, 3.0])
    sample_folded = smc_sample(folded, _slcp_loglik, steps=25, final_steps=250)

    def reference(x, n, key):
        k1, k2 = jax.random.split(key)
        s = np.array(sample_folded(x, n, k1))
        signs = np.where(np.asarray(jax.random.bernoulli(k2, 0.5, (n, 2))), 1.0, -1.0)
        s[:, 2:4] *= signs
        return s

    return _task(
        "slcp",
        prior=BoxUniform(low=-3.0, high=3.0, dim=5),
        simulator=_slcp_simulator,
        dim_x=8,
        reference=reference,
        log_likelihood=_slcp_loglik,
        description="SLCP (sbibm). Reference: tempered SMC on the folded posterior + random signs.",
    )


# --- gaussian_mixture ------------------------------------------------------------------------
# sbibm: θ ~ U[-10, 10]²; x | θ ~ ½ N(θ, I) + ½ N(θ, 0.01 I) (one component for both dims).
_GM_STD = (1.0, 0.1)


def _gm_simulator(key, theta):
    k1, k2 = jax.random.split(key)
    std = jnp.where(jax.random.bernoulli(k1, 0.5), _GM_STD[1], _GM_STD[0])
    return theta + std * jax.random.normal(k2, theta.shape)


def _gm_loglik(theta, x):
    comps = jnp.stack([jnp.sum(_normal_logpdf(x, theta, s)) for s in _GM_STD])
    return jax.scipy.special.logsumexp(comps) + math.log(0.5)


def gaussian_mixture() -> Task:
    """Mixture of a broad and a narrow Gaussian; posterior = the same mixture in θ, truncated.

    Sampled exactly (as in sbibm): draw the component, then θ ~ N(x_o, σ²I), reject outside the box.

    >>> from lfi.tasks import get
    >>> s = get("gaussian_mixture").reference_posterior(1, n=10_000)
    >>> bool(np.all(np.abs(s) <= 10.0))
    True
    """
    prior = BoxUniform(low=-10.0, high=10.0, dim=2)

    def propose(x):
        def f(key, m):
            k1, k2 = jax.random.split(key)
            std = jnp.where(jax.random.bernoulli(k1, 0.5, (m, 1)), _GM_STD[1], _GM_STD[0])
            return x + std * jax.random.normal(k2, (m, 2))

        return f

    return _task(
        "gaussian_mixture",
        prior=prior,
        simulator=_gm_simulator,
        dim_x=2,
        reference=lambda x, n, key: rejection(
            propose(x), lambda s: np.asarray(prior.in_support(s)), n, key
        ),
        log_likelihood=_gm_loglik,
        description="Gaussian mixture (sbibm). Reference: exact mixture sampling + rejection.",
    )
