"""lfi's own tasks: ``gaussian_2d`` (a sanity check) and ``ballistic`` (latent-variable physics).

**gaussian_2d.** θ ~ U[0, 2]², x = θ + 0.1·ε with ε ~ N(0, I₂). The posterior is the product of
two independent normals N(x_i, 0.1²) truncated to [0, 2], sampled exactly by inversion.

**ballistic.** A ball is thrown ``NUM_THROWS`` = 5 times from ground level; θ = (v̄, ᾱ) are the
thrower's mean launch speed [m/s] and mean launch angle [rad], with a uniform prior on
[5, 15] m/s × [π/12, π/4] (15° to 45°; capping ᾱ at 45° removes the exact ᾱ ↔ π/2 − ᾱ mirror
symmetry of the range). Throw i has explicit latent variables

    v_i = v̄ + σ_v a_i,   α_i = ᾱ + σ_α b_i,   a_i, b_i ~ N(0, 1),   σ_v = 0.5 m/s, σ_α = 0.05 rad,

lands (no drag) at d_i = v_i² sin(2α_i) / g, g = 9.81 m/s², and its landing spot is measured with
Gaussian error, x_i = d_i + σ_d η_i, σ_d = 0.2 m. The mean distance pins down v̄² sin 2ᾱ; the
spread of the throws, CV² ≈ (2σ_v/v̄)² + (2 σ_α cot 2ᾱ)², carries the information that separates
speed from angle, so the posterior is a curved, strongly correlated ridge.

The likelihood p(x | θ) = Π_i ∫∫ N(a) N(b) N(x_i; d(a, b), σ_d²) da db has no closed form; it is
computed by nested adaptive Gauss–Hermite quadrature (Liu & Pierce 1994): for each of
``K_OUTER`` = 16 angle nodes, placed around the mode of a linearised model of the angle integrand,
the speed integral uses ``K_INNER`` = 12 nodes around the Gauss–Newton mode of its integrand.
Against a 3001² brute-force grid the log-likelihood is accurate to ~1e-6 (float64) over the prior.
The speed branch v < 0 (≥ 10 σ_v away) is ignored. The joint density log p(x, z | θ) of data
and latents is available as ``task.extras["joint_log_likelihood"]`` for gradient-based "mining
gold" methods.

The ten observations of both tasks were generated once by :func:`generate_observations`
(θ_k from the prior, x_k from the simulator, keys derived from a fixed seed) and are shipped in
``data/<task>.json``.

>>> from lfi.tasks import get
>>> task = get("ballistic")
>>> x, z = task.extras["simulate_with_latents"](jax.random.PRNGKey(0), jnp.array([10.0, 0.6]))
>>> x.shape, z.shape
((5,), (5, 2))
>>> bool(jnp.allclose(x, task.simulator(jax.random.PRNGKey(0), jnp.array([10.0, 0.6]))))
True
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from lfi.priors import BoxUniform
from lfi.tasks.base import Task, load_data, smc_sample, truncated_normal

__all__ = ["ballistic", "gaussian_2d", "generate_observations"]

_LOG_2PI = math.log(2 * math.pi)

# --- gaussian_2d ---------------------------------------------------------------------------
_G2_STD = 0.1


def _g2_prior() -> BoxUniform:
    return BoxUniform(low=0.0, high=2.0, dim=2)


def _g2_simulator(key, theta):
    return theta + _G2_STD * jax.random.normal(key, theta.shape)


def _g2_loglik(theta, x):
    z = (x - theta) / _G2_STD
    return jnp.sum(-0.5 * z**2) - 2 * (math.log(_G2_STD) + 0.5 * _LOG_2PI)


def gaussian_2d() -> Task:
    """θ ~ U[0, 2]², x ~ N(θ, 0.1² I); exact reference by truncated-normal inversion.

    >>> from lfi.tasks import get
    >>> s = get("gaussian_2d").reference_posterior(1, n=10_000)
    >>> bool(np.all((s >= 0) & (s <= 2)))
    True
    """
    data = load_data("gaussian_2d")
    return Task(
        "gaussian_2d",
        prior=_g2_prior(),
        simulator=_g2_simulator,
        dim_x=2,
        observations=data["observations"],
        true_parameters=data["true_parameters"],
        reference=lambda x, n, key: truncated_normal(
            x, np.full(2, _G2_STD), np.zeros(2), np.full(2, 2.0), n, key
        ),
        log_likelihood=_g2_loglik,
        description="θ ~ U[0,2]², x ~ N(θ, 0.1² I). Reference: exact truncated-normal inversion.",
        source=data["source"],
    )


# --- ballistic -----------------------------------------------------------------------------
NUM_THROWS = 5
GRAVITY = 9.81
SIGMA_V, SIGMA_ALPHA, SIGMA_D = 0.5, 0.05, 0.2
K_OUTER, K_INNER, _NEWTON_STEPS = 16, 12, 8


def _ballistic_prior() -> BoxUniform:
    return BoxUniform(low=[5.0, math.pi / 12], high=[15.0, math.pi / 4])


def distance(z):
    """Landing distance [m] of throws with latents ``z[..., 0]`` = speed, ``z[..., 1]`` = angle."""
    return z[..., 0] ** 2 * jnp.sin(2 * z[..., 1]) / GRAVITY


def sample_latents(key, theta):
    """Latent (speed, angle) of each throw, shape ``(NUM_THROWS, 2)``."""
    eps = jax.random.normal(key, (NUM_THROWS, 2))
    return theta + eps * jnp.array([SIGMA_V, SIGMA_ALPHA])


def simulate_with_latents(key, theta):
    """``(x, z)``: measured distances ``(NUM_THROWS,)`` and latents ``(NUM_THROWS, 2)``."""
    k_z, k_x = jax.random.split(key)
    z = sample_latents(k_z, theta)
    x = distance(z) + SIGMA_D * jax.random.normal(k_x, (NUM_THROWS,))
    return x, z


def _ballistic_simulator(key, theta):
    return simulate_with_latents(key, theta)[0]


def _lognormal(x, mean, std):
    return -0.5 * ((x - mean) / std) ** 2 - jnp.log(std) - 0.5 * _LOG_2PI


def joint_log_likelihood(theta, z, x):
    """log p(x, z | θ) for one θ ``(2,)``, latents ``z`` ``(NUM_THROWS, 2)``, data ``x``."""
    lz = _lognormal(z[:, 0], theta[0], SIGMA_V) + _lognormal(z[:, 1], theta[1], SIGMA_ALPHA)
    return jnp.sum(lz + _lognormal(x, distance(z), SIGMA_D))


_T_OUT, _W_OUT = np.polynomial.hermite.hermgauss(K_OUTER)
_T_IN, _W_IN = np.polynomial.hermite.hermgauss(K_INNER)
# ∫ f(t) dt ≈ Σ_k w_k e^{t_k²} f(t_k): log-weights for a general integrand
_LW_OUT = np.log(_W_OUT) + _T_OUT**2
_LW_IN = np.log(_W_IN) + _T_IN**2


def _std_normal(a):
    return -0.5 * a**2 - 0.5 * _LOG_2PI


def _speed_integral(c, vbar, x):
    """log ∫ N(a) N(x; c (v̄ + σ_v a)², σ_d²) da, adaptive GH around the Gauss–Newton mode."""

    def newton(a, _):
        v = vbar + SIGMA_V * a
        r, jac = x - c * v * v, -2 * c * v * SIGMA_V
        return a - (a + r * jac / SIGMA_D**2) / (1 + (jac / SIGMA_D) ** 2), None

    a, _ = jax.lax.scan(newton, jnp.zeros_like(vbar), None, length=_NEWTON_STEPS)
    jac = -2 * c * (vbar + SIGMA_V * a) * SIGMA_V
    scale = math.sqrt(2) / jnp.sqrt(1 + (jac / SIGMA_D) ** 2)
    nodes = a + scale * _T_IN
    v = vbar + SIGMA_V * nodes
    log_f = _std_normal(nodes) + _lognormal(x, c * v * v, SIGMA_D)
    return jax.scipy.special.logsumexp(_LW_IN + log_f) + jnp.log(scale)


def _throw_loglik(theta, x):
    """log p(x_i | θ) for one throw: outer adaptive GH over the standardised angle b."""
    vbar, abar = theta[0], theta[1]
    v2 = vbar**2 + SIGMA_V**2  # E[v²]

    def linearised(b):  # x ≈ N(m(b), s²(b)): mean and spread after integrating out the speed
        c = jnp.sin(2 * (abar + SIGMA_ALPHA * b)) / GRAVITY
        dm = 2 * jnp.cos(2 * (abar + SIGMA_ALPHA * b)) / GRAVITY * v2 * SIGMA_ALPHA
        s2 = SIGMA_D**2 + (2 * c * vbar * SIGMA_V) ** 2
        return c * v2, dm, s2

    def newton(b, _):
        m, dm, s2 = linearised(b)
        return b - (b - (x - m) * dm / s2) / (1 + dm * dm / s2), None

    b, _ = jax.lax.scan(newton, jnp.zeros_like(vbar), None, length=_NEWTON_STEPS)
    _, dm, s2 = linearised(b)
    scale = math.sqrt(2) / jnp.sqrt(1 + dm * dm / s2)
    nodes = b + scale * _T_OUT
    c = jnp.sin(2 * (abar + SIGMA_ALPHA * nodes)) / GRAVITY
    inner = jax.vmap(_speed_integral, (0, None, None))(c, vbar, x)
    log_f = _std_normal(nodes) + inner
    return jax.scipy.special.logsumexp(_LW_OUT + log_f) + jnp.log(scale)


def _ballistic_loglik(theta, x):
    return jnp.sum(jax.vmap(_throw_loglik, (None, 0))(theta, x))


def ballistic() -> Task:
    """Thrown ball with latent speed and angle per throw; see the module docstring.

    Reference posterior: tempered SMC on the quadrature likelihood.

    >>> from lfi.tasks import get
    >>> task = get("ballistic")
    >>> float(task.log_likelihood(task.true_parameters(1), task.observation(1))) < 0
    True
    """
    data = load_data("ballistic")
    return Task(
        "ballistic",
        prior=_ballistic_prior(),
        simulator=_ballistic_simulator,
        dim_x=NUM_THROWS,
        observations=data["observations"],
        true_parameters=data["true_parameters"],
        reference=smc_sample(_ballistic_prior(), _ballistic_loglik, steps=10),
        log_likelihood=_ballistic_loglik,
        description=(
            "θ = (mean launch speed, mean angle); 5 throws with latent speed/angle, noisy landing "
            "distances. Likelihood by adaptive Gauss–Hermite quadrature; reference by SMC."
        ),
        source=data["source"],
        extras={
            "sample_latents": sample_latents,
            "simulate_with_latents": simulate_with_latents,
            "joint_log_likelihood": joint_log_likelihood,
            "distance": distance,
            "constants": {
                "num_throws": NUM_THROWS,
                "gravity": GRAVITY,
                "sigma_v": SIGMA_V,
                "sigma_alpha": SIGMA_ALPHA,
                "sigma_d": SIGMA_D,
            },
        },
    )


# --- observations ----------------------------------------------------------------------------
_OBS_SEEDS = {"gaussian_2d": 20_240_002, "ballistic": 20_240_001}
_MODEL = {
    "gaussian_2d": (_g2_prior, _g2_simulator),
    "ballistic": (_ballistic_prior, _ballistic_simulator),
}


def _floats(a) -> list[float]:
    return [float(str(v)) for v in np.asarray(a, np.float32)]  # shortest float32 repr


def generate_observations(name: str) -> dict:
    """Re-create the JSON document of a physics task's 10 observations (how they were made).

    For k = 1..10: ``key = jax.random.fold_in(jax.random.PRNGKey(seed), k)``,
    ``k_theta, k_x = jax.random.split(key)``, θ_k = ``prior.sample(1, k_theta)[0]``,
    x_k = ``simulator(k_x, θ_k)``.

    >>> generate_observations("gaussian_2d")["observation_seed"]
    20240002
    """
    make_prior, simulator = _MODEL[name]
    prior, seed = make_prior(), _OBS_SEEDS[name]
    thetas, xs = [], []
    for k in range(1, 11):
        k_theta, k_x = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), k))
        theta = prior.sample(1, k_theta)[0]
        thetas.append(_floats(theta))
        xs.append(_floats(simulator(k_x, theta)))
    return {
        "task": name,
        "source": (
            "lfi; generated by lfi.tasks.physics.generate_observations: for k=1..10, "
            "key=fold_in(PRNGKey(observation_seed), k); k_theta, k_x = split(key); "
            "theta=prior.sample(1, k_theta)[0]; x=simulator(k_x, theta)"
        ),
        "observation_seed": seed,
        "true_parameters": thetas,
        "observations": xs,
    }
