"""Tasks with latent paths and exact likelihoods, for the mining-gold methods.

Each simulator is an augmented simulator (:mod:`lfi.augment`): it returns x and log p(x, z | θ),
so the joint score and ratio come by autodiff; each task also has the exact p(x | θ). ``extras``
hold ``simulate_with_latents(key, theta) -> (x, z)`` (the same draws as the simulator) and
the closed-form joint score and log-probability of a path, which the tests compare with autodiff.

- ``galton``: the generalized Galton board of Brehmer, Louppe, Pavez & Cranmer (PNAS 2020,
  arXiv:1805.12244; ../shared/anchors/mining_gold.md): 20 rows, 31 nails, the ball starts at
  nail 15; P(left | row i, nail j, θ) = (1 − sin πv)/2 + sin(πv) σ(10 θ h), v = i/19,
  h = 2j/30 − 1; x = the final nail. p(x | θ) is exact by dynamic programming over the nails.
- ``madminer_toy``: z ~ N(θ, 2²), x ~ N(z, 1), so p(x | θ) = N(x; θ, 5) and the joint score is
  t(x, z | θ) = (z − θ)/4 (MadMiner's tutorial writes (x − θ)/4, which is not it).
- ``particle_chain``: the seed lecture's chain p(x | z_h) p(z_h | z_p) p(z_p | θ): a core
  interaction z_p ~ N(θ, 0.5²) (the energy of a produced particle), a shower of
  z_h ~ Poisson(2 exp(z_p / 2)) secondaries, and a detector reading x = (energy, multiplicity) with
  x₁ ~ N(z_p + 0.1 z_h, 0.3²), x₂ ~ N(z_h, 1). p(x | θ) is a sum over z_h (0..80) of an
  integral over z_p (64-node Gauss–Hermite quadrature).

>>> from lfi.tasks import get
>>> task = get("galton")
>>> task.dim_theta, task.dim_x
(1, 1)
>>> p = np.exp(np.asarray(task.log_likelihood(np.full((31, 1), -0.6), np.arange(31.0)[:, None])))
>>> round(float(p.sum()), 5)
1.0
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from lfi.augment import augmented, bernoulli, normal, poisson
from lfi.priors import BoxUniform
from lfi.tasks.base import Task, truncated_normal

__all__ = ["galton", "galton_probabilities", "madminer_toy", "particle_chain"]

GALTON_ROWS, GALTON_NAILS, GALTON_START = 20, 31, 15
_OBS_SEED = {"galton": 20_261_126, "madminer_toy": 20_261_127, "particle_chain": 20_261_128}


def _observations(simulator, prior, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """10 (θ, x) pairs: key_k = fold_in(PRNGKey(seed), k); θ ~ prior; x = simulator(k_x, θ)."""
    thetas, xs = [], []
    for k in range(1, 11):
        k_theta, k_x = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), k))
        theta = prior.sample(1, k_theta)[0]
        thetas.append(np.asarray(theta))
        xs.append(np.asarray(simulator(k_x, theta)))
    return np.stack(thetas), np.stack(xs)


def _path_task(name: str, prior, path, dim_x: int, **task_args) -> Task:
    """A Task whose simulator is the augmented ``path(key, θ) -> (x, log p, z)`` without z, with
    ``extras["simulate_with_latents"]`` giving (x, z) from the same draws."""
    sim = augmented(lambda key, theta: path(key, theta)[:2])
    thetas, xs = _observations(sim, prior, _OBS_SEED[name])
    extras = {"simulate_with_latents": lambda key, theta: path(key, theta)[::2]}
    extras.update(task_args.pop("extras", {}))
    return Task(name, prior=prior, simulator=sim, dim_x=dim_x, observations=xs,
                true_parameters=thetas, extras=extras, **task_args)  # fmt: skip


# --- galton ------------------------------------------------------------------------------------
def _p_left(row, nail, theta):
    v = row / (GALTON_ROWS - 1)
    h = 2.0 * nail / (GALTON_NAILS - 1) - 1.0
    s = jnp.sin(jnp.pi * v)
    return (1.0 - s) / 2.0 + s * jax.nn.sigmoid(10.0 * theta * h)


def _galton_path(key, theta):
    """(x, log p(x, z | θ), z): z = the 20 decisions (1 = left)."""

    def step(carry, inputs):
        nail, lp = carry
        row, k = inputs
        left, lp_b = bernoulli(k, _p_left(row, nail, theta[0]))
        even = row % 2 == 0
        nail = jnp.where(even, nail + (1.0 - left), nail - left)
        return (nail, lp + lp_b), left

    rows = jnp.arange(GALTON_ROWS, dtype=jnp.float32)
    keys = jax.random.split(key, GALTON_ROWS)
    (nail, lp), z = jax.lax.scan(step, (jnp.float32(GALTON_START), 0.0), (rows, keys))
    return jnp.atleast_1d(nail), lp, z


def galton_joint_log_prob(theta, z):
    """Closed form: Σ_i log P(decision_i) along the path z (1 = left), and its θ-derivative."""
    theta = jnp.asarray(theta, jnp.float32).reshape(())
    nails, nail = [], float(GALTON_START)
    for i, left in enumerate(np.asarray(z)):
        nails.append(nail)
        nail = nail + (1.0 - left) if i % 2 == 0 else nail - left
    rows = np.arange(GALTON_ROWS, dtype=np.float32)
    nails = np.asarray(nails, np.float32)
    v, h = rows / (GALTON_ROWS - 1), 2.0 * nails / (GALTON_NAILS - 1) - 1.0
    s = np.sin(np.pi * v)
    sig = jax.nn.sigmoid(10.0 * theta * h)
    p = (1.0 - s) / 2.0 + s * sig
    dp = s * sig * (1.0 - sig) * 10.0 * h
    zf = jnp.asarray(z, jnp.float32)
    log_p = jnp.sum(jnp.where(zf > 0.5, jnp.log(p), jnp.log1p(-p)))
    score = jnp.sum(jnp.where(zf > 0.5, dp / p, -dp / (1.0 - p)))
    return log_p, score


def galton_probabilities(theta) -> jax.Array:
    """Exact p(x = j | θ) for j = 0..30, by dynamic programming over (row, nail)."""
    theta = jnp.asarray(theta, jnp.float32).reshape(())
    nails = jnp.arange(GALTON_NAILS, dtype=jnp.float32)

    def step(prob, row):
        pl = _p_left(row, nails, theta)
        left, right = prob * pl, prob * (1.0 - pl)
        even = row % 2 == 0
        moved_right = jnp.roll(right, 1).at[0].set(0.0)  # j -> j + 1
        moved_left = jnp.roll(left, -1).at[-1].set(0.0)  # j -> j - 1
        return jnp.where(even, left + moved_right, moved_left + right), None

    prob0 = jnp.zeros(GALTON_NAILS).at[GALTON_START].set(1.0)
    prob, _ = jax.lax.scan(step, prob0, jnp.arange(GALTON_ROWS, dtype=jnp.float32))
    return prob


def _galton_loglik(theta, x):
    j = jnp.clip(jnp.round(x[0]), 0, GALTON_NAILS - 1).astype(jnp.int32)
    valid = (x[0] == jnp.round(x[0])) & (x[0] >= 0) & (x[0] <= GALTON_NAILS - 1)
    p = galton_probabilities(theta[0])[j]
    return jnp.where(valid & (p > 0), jnp.log(jnp.where(p > 0, p, 1.0)), -jnp.inf)


def _grid_reference(loglik, low: float, high: float, points: int = 4001):
    grid = np.linspace(low, high, points, dtype=np.float64)
    width = grid[1] - grid[0]

    def sample(x, n, key):
        ll = np.asarray(jax.vmap(lambda t: loglik(t[None], jnp.asarray(x)))(jnp.asarray(grid)))
        w = np.exp(ll - ll.max())
        w /= w.sum()
        k1, k2 = jax.random.split(key)
        idx = np.asarray(jax.random.choice(k1, points, (n,), p=jnp.asarray(w)))
        jitter = np.asarray(jax.random.uniform(k2, (n,), minval=-0.5, maxval=0.5)) * width
        return np.clip(grid[idx] + jitter, low, high)[:, None]

    return sample


def galton() -> Task:
    """The generalized Galton board: θ ~ U[−1, −0.4], x = the final nail (0..30)."""
    prior = BoxUniform(low=-1.0, high=-0.4, dim=1)
    return _path_task(
        "galton",
        prior,
        _galton_path,
        1,
        reference=_grid_reference(_galton_loglik, -1.0, -0.4),
        log_likelihood=_galton_loglik,
        description=(
            "Generalized Galton board (20 rows, 31 nails; arXiv:1805.12244). Exact p(x | θ) by "
            "dynamic programming; reference posterior on a 4001-point θ grid."
        ),
        source=f"lfi; observations from seed {_OBS_SEED['galton']} (see tasks.gold._observations)",
        extras={
            "joint_log_prob": galton_joint_log_prob,
            "probabilities": galton_probabilities,
            "theta0": -0.8,
            "theta1": -0.6,
            "bins": GALTON_NAILS,
        },
    )


# --- madminer_toy ------------------------------------------------------------------------------
TOY_SIGMA_Z, TOY_SIGMA_X = 2.0, 1.0


def _toy_path(key, theta):
    k1, k2 = jax.random.split(key)
    z, lp_z = normal(k1, theta[0], TOY_SIGMA_Z)
    x, lp_x = normal(k2, z, TOY_SIGMA_X)
    return jnp.atleast_1d(x), lp_z + lp_x, z


def toy_joint_log_prob(theta, z, x):
    """Closed form log N(z; θ, 4) + log N(x; z, 1) and the joint score (z − θ)/4."""
    theta = jnp.asarray(theta, jnp.float32).reshape(())
    lz = (
        -0.5 * ((z - theta) / TOY_SIGMA_Z) ** 2
        - math.log(TOY_SIGMA_Z)
        - 0.5 * math.log(2 * math.pi)
    )
    lx = -0.5 * ((x - z) / TOY_SIGMA_X) ** 2 - math.log(TOY_SIGMA_X) - 0.5 * math.log(2 * math.pi)
    return lz + lx, (z - theta) / TOY_SIGMA_Z**2


_TOY_STD = math.sqrt(TOY_SIGMA_Z**2 + TOY_SIGMA_X**2)


def _toy_loglik(theta, x):
    r = (x[0] - theta[0]) / _TOY_STD
    return -0.5 * r**2 - math.log(_TOY_STD) - 0.5 * math.log(2 * math.pi)


def madminer_toy() -> Task:
    """MadMiner's toy: θ ~ U[−3, 3], z ~ N(θ, 2²), x ~ N(z, 1); p(x | θ) = N(x; θ, 5)."""
    prior = BoxUniform(low=-3.0, high=3.0, dim=1)
    return _path_task(
        "madminer_toy",
        prior,
        _toy_path,
        1,
        reference=lambda x, n, key: truncated_normal(x, [_TOY_STD], [-3.0], [3.0], n, key),
        log_likelihood=_toy_loglik,
        description=(
            "MadMiner's toy (arXiv:1907.10621): z ~ N(θ, 2²), x ~ N(z, 1). Exact p(x | θ) = "
            "N(x; θ, 5); reference posterior: exact truncated-normal inversion."
        ),
        source=f"lfi; observations from seed {_OBS_SEED['madminer_toy']}",
        extras={
            "joint_log_prob": toy_joint_log_prob,
        },
    )


# --- particle_chain ----------------------------------------------------------------------------
CHAIN_SIGMA_P, CHAIN_SIGMA_E, CHAIN_SIGMA_N, CHAIN_MAX_H = 0.5, 0.3, 1.0, 80
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(64)  # ∫ f(u) N(u; 0, 1) du


def _shower_rate(z_p):
    return 2.0 * jnp.exp(0.5 * z_p)


def _chain_path(key, theta):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    z_p, lp_p = normal(k1, theta[0], CHAIN_SIGMA_P)
    z_h, lp_h = poisson(k2, _shower_rate(z_p))
    e, lp_e = normal(k3, z_p + 0.1 * z_h, CHAIN_SIGMA_E)
    m, lp_m = normal(k4, z_h, CHAIN_SIGMA_N)
    return jnp.stack([e, m]), lp_p + lp_h + lp_e + lp_m, jnp.stack([z_p, z_h])


def _log_normal(x, mean, std):
    return -0.5 * ((x - mean) / std) ** 2 - jnp.log(std) - 0.5 * math.log(2 * math.pi)


def chain_joint_log_prob(theta, z, x):
    """Closed form log p(x, z | θ) and ∂/∂θ = (z_p − θ)/σ_p² (only z_p depends on θ)."""
    theta = jnp.asarray(theta, jnp.float32).reshape(())
    z_p, z_h = z[0], z[1]
    rate = _shower_rate(z_p)
    lp = (
        _log_normal(z_p, theta, CHAIN_SIGMA_P)
        + z_h * jnp.log(rate)
        - rate
        - jax.scipy.special.gammaln(z_h + 1)
        + _log_normal(x[0], z_p + 0.1 * z_h, CHAIN_SIGMA_E)
        + _log_normal(x[1], z_h, CHAIN_SIGMA_N)
    )
    return lp, (z_p - theta) / CHAIN_SIGMA_P**2


def _chain_loglik(theta, x):
    """log Σ_{z_h} ∫ dz_p p(x | z) p(z_h | z_p) p(z_p | θ), quadrature over z_p."""
    z_p = theta[0] + CHAIN_SIGMA_P * jnp.asarray(_GH_NODES, jnp.float32)  # (64,)
    log_w = jnp.log(jnp.asarray(_GH_WEIGHTS / np.sqrt(2 * np.pi), jnp.float32))
    z_h = jnp.arange(CHAIN_MAX_H + 1, dtype=jnp.float32)[:, None]  # (81, 1)
    rate = _shower_rate(z_p)[None]
    terms = (
        z_h * jnp.log(rate)
        - rate
        - jax.scipy.special.gammaln(z_h + 1)
        + _log_normal(x[0], z_p[None] + 0.1 * z_h, CHAIN_SIGMA_E)
        + _log_normal(x[1], z_h, CHAIN_SIGMA_N)
        + log_w[None]
    )
    return jax.scipy.special.logsumexp(terms)


def particle_chain() -> Task:
    """The lecture's simulation chain: θ ~ U[0, 3], x = (energy, multiplicity)."""
    prior = BoxUniform(low=0.0, high=3.0, dim=1)
    return _path_task(
        "particle_chain",
        prior,
        _chain_path,
        2,
        reference=_grid_reference(_chain_loglik, 0.0, 3.0),
        log_likelihood=_chain_loglik,
        description=(
            "The seed lecture's chain p(x|z_h) p(z_h|z_p) p(z_p|θ): z_p ~ N(θ, 0.5²), z_h ~ "
            "Poisson(2 exp(z_p/2)), x ~ N((z_p + 0.1 z_h, z_h), diag(0.3², 1)). p(x | θ) by "
            "summing z_h and Gauss-Hermite quadrature over z_p; reference on a θ grid."
        ),
        source=f"lfi; observations from seed {_OBS_SEED['particle_chain']}",
        extras={
            "joint_log_prob": chain_joint_log_prob,
        },
    )
