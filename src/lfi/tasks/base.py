"""The :class:`Task` object and the exact / SMC samplers behind its reference posteriors.

A task bundles a prior, a pure JAX simulator ``simulator(key, theta) -> x`` for one θ, ten fixed
observations with the parameters that generated them, the likelihood where it is tractable, and a
sampler for the exact posterior p(θ | x_o). Reference samples are computed by lfi itself (no files
of posterior samples are shipped): analytically, by exact rejection / inversion, or — for tasks
with a likelihood but no closed-form posterior — by an adaptive-tempering SMC sampler
(:func:`smc_sample`) started from the prior, which weighs separated modes correctly.

See Lueckmann et al. (2021), "Benchmarking Simulation-Based Inference", arXiv:2101.04653.

>>> import numpy as np
>>> from lfi.tasks import get
>>> task = get("gaussian_2d")
>>> task.simulate(np.ones((4, 2)), seed=0).shape
(4, 2)
>>> task.reference_posterior(1, n=500).shape
(500, 2)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from importlib import resources
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lfi._rng import Seed, as_key

__all__ = ["Task", "load_data", "smc_sample"]

# ``reference(x_o, n, key) -> array (n, dim_theta)``: a sampler of p(θ | x_o).
ReferenceSampler = Callable[[np.ndarray, int, jax.Array], Any]


def load_data(name: str) -> dict:
    """The JSON file ``lfi/tasks/data/<name>.json`` (observations, true parameters, provenance)."""
    text = resources.files("lfi.tasks").joinpath("data", f"{name}.json").read_text()
    return json.loads(text)


def _seed_id(seed: Seed) -> Any:
    """A hashable identity for a seed (int, typed key or raw uint32 key)."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(seed)
    arr = jnp.asarray(seed)
    if jax.dtypes.issubdtype(arr.dtype, jax.dtypes.prng_key):
        arr = jax.random.key_data(arr)
    return tuple(np.asarray(arr).ravel().tolist())


class Task:
    """A benchmark task: prior, simulator, 10 observations, likelihood, reference posterior.

    Attributes: ``name``, ``prior`` (an lfi prior), ``simulator`` (pure JAX
    ``simulator(key, theta) -> x`` for one θ of shape ``(dim_theta,)``), ``dim_theta``, ``dim_x``,
    ``num_observations`` (10), ``has_likelihood``, ``description``, ``source`` and ``extras`` (a
    dict of task-specific functions, e.g. the ballistic task's latent-variable model).

    >>> from lfi.tasks import get
    >>> task = get("two_moons")
    >>> task.dim_theta, task.dim_x, task.num_observations
    (2, 2, 10)
    >>> task.observation(1)
    array([-0.6396706 ,  0.16234657], dtype=float32)
    >>> task.true_parameters(11)
    Traceback (most recent call last):
    ...
    ValueError: num_observation: expected an integer in 1..10, got 11
    """

    num_observations: int = 10

    def __init__(
        self,
        name: str,
        *,
        prior: Any,
        simulator: Callable[[jax.Array, jax.Array], jax.Array],
        dim_x: int,
        observations: Any,
        true_parameters: Any,
        reference: ReferenceSampler,
        log_likelihood: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
        description: str = "",
        source: str = "",
        extras: dict | None = None,
    ):
        self.name = name
        self.prior = prior
        self.simulator = simulator
        self.dim_theta = int(prior.dim)
        self.dim_x = int(dim_x)
        self.description = description
        self.source = source
        self.extras = dict(extras or {})
        self._observations = np.asarray(observations, np.float32)
        self._true_parameters = np.asarray(true_parameters, np.float32)
        n_obs = self.num_observations
        if self._observations.shape != (n_obs, self.dim_x):
            raise ValueError(f"observations: expected shape {(n_obs, self.dim_x)}")
        if self._true_parameters.shape != (n_obs, self.dim_theta):
            raise ValueError(f"true_parameters: expected shape {(n_obs, self.dim_theta)}")
        self._reference = reference
        self._loglik_one = log_likelihood
        self.has_likelihood = log_likelihood is not None
        self._cache: dict[tuple, np.ndarray] = {}
        self._simulate_batch = jax.jit(jax.vmap(simulator))
        self._loglik_batch = (
            jax.jit(jax.vmap(log_likelihood)) if log_likelihood is not None else None
        )

    def __repr__(self) -> str:
        return f"Task({self.name!r}, dim_theta={self.dim_theta}, dim_x={self.dim_x})"

    def _index(self, num_observation: Any) -> int:
        k = num_observation
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(
                f"num_observation: expected an integer in 1..{self.num_observations}, got {k!r}"
            )
        if not 1 <= int(k) <= self.num_observations:
            raise ValueError(
                f"num_observation: expected an integer in 1..{self.num_observations}, got {k!r}"
            )
        return int(k) - 1

    def observation(self, num_observation: int) -> np.ndarray:
        """The fixed observation x_o number ``num_observation`` (1..10), shape ``(dim_x,)``."""
        return self._observations[self._index(num_observation)].copy()

    def true_parameters(self, num_observation: int) -> np.ndarray:
        """The θ that generated observation ``num_observation`` (1..10), shape ``(dim_theta,)``."""
        return self._true_parameters[self._index(num_observation)].copy()

    def simulate(self, theta: Any, seed: Seed = 0) -> jax.Array:
        """Simulate x for a batch θ of shape ``(..., dim_theta)`` → ``(..., dim_x)`` (jit + vmap).

        >>> from lfi.tasks import get
        >>> get("slcp").simulate(get("slcp").prior.sample(3, seed=1), seed=2).shape
        (3, 8)
        """
        theta = jnp.asarray(theta, jnp.float32)
        if theta.ndim == 0 or theta.shape[-1] != self.dim_theta:
            raise ValueError(f"theta: expected shape (..., {self.dim_theta}), got {theta.shape}")
        batch = theta.shape[:-1]
        flat = theta.reshape(-1, self.dim_theta)
        keys = jax.random.split(as_key(seed), flat.shape[0])
        return self._simulate_batch(keys, flat).reshape(*batch, self.dim_x)

    def log_likelihood(self, theta: Any, x: Any) -> jax.Array:
        """log p(x | θ), batched over the (broadcast) leading dimensions of θ and x.

        >>> from lfi.tasks import get
        >>> task = get("gaussian_2d")
        >>> task.log_likelihood(np.ones((5, 2)), task.observation(1)).shape
        (5,)
        """
        if self._loglik_batch is None:
            raise NotImplementedError(
                f"task {self.name!r} has no tractable likelihood (has_likelihood is False); "
                "use its simulator instead"
            )
        theta = jnp.asarray(theta, jnp.float32)
        x = jnp.asarray(x, jnp.float32)
        if theta.ndim == 0 or theta.shape[-1] != self.dim_theta:
            raise ValueError(f"theta: expected shape (..., {self.dim_theta}), got {theta.shape}")
        if x.ndim == 0 or x.shape[-1] != self.dim_x:
            raise ValueError(f"x: expected shape (..., {self.dim_x}), got {x.shape}")
        batch = jnp.broadcast_shapes(theta.shape[:-1], x.shape[:-1])
        th = jnp.broadcast_to(theta, (*batch, self.dim_theta)).reshape(-1, self.dim_theta)
        xx = jnp.broadcast_to(x, (*batch, self.dim_x)).reshape(-1, self.dim_x)
        return self._loglik_batch(th, xx).reshape(batch)

    def reference_posterior(
        self, num_observation: int, n: int = 10_000, seed: Seed = 0
    ) -> np.ndarray:
        """``n`` samples of the exact posterior p(θ | x_o) for observation ``num_observation``.

        Computed by lfi (see the task's ``description`` for how) and cached in memory per
        ``(num_observation, n, seed)``. Returns a float32 array ``(n, dim_theta)``.
        """
        i = self._index(num_observation)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n: expected a positive integer, got {n!r}")
        cache_key = (i + 1, int(n), _seed_id(seed))
        if cache_key not in self._cache:
            key = jax.random.fold_in(as_key(seed), i + 1)
            samples = np.asarray(self._reference(self._observations[i], int(n), key), np.float32)
            if samples.shape != (n, self.dim_theta) or not np.all(np.isfinite(samples)):
                raise RuntimeError(f"{self.name}: reference sampler returned bad samples")
            self._cache[cache_key] = samples
        return self._cache[cache_key].copy()


# ---------------------------------------------------------------------------------------------
# Exact samplers


def truncated_normal(
    mean: Any, std: Any, low: Any, high: Any, n: int, key: jax.Array
) -> np.ndarray:
    """``n`` draws of independent N(mean_i, std_i²) truncated to [low_i, high_i], by inversion.

    Uniforms come from ``key``; the inverse CDF is scipy's (float64, accurate in the tails).

    >>> s = truncated_normal([0.0], [1.0], [0.0], [np.inf], 20_000, as_key(0))
    >>> bool(s.min() >= 0.0), round(float(s.mean()), 1)  # half-normal mean = sqrt(2/pi) = 0.80
    (True, 0.8)
    """
    from scipy.stats import truncnorm

    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    a = (np.asarray(low, np.float64) - mean) / std
    b = (np.asarray(high, np.float64) - mean) / std
    u = np.asarray(jax.random.uniform(key, (n, mean.shape[0]), minval=1e-7, maxval=1 - 1e-7))
    z = truncnorm.ppf(u.astype(np.float64), a, b)
    return np.clip(mean + std * z, low, high)


def rejection(propose: Callable[[jax.Array, int], Any], accept: Callable, n: int, key: jax.Array):
    """Exact rejection sampling: draw batches from ``propose(key, m)``, keep ``accept(samples)``.

    >>> f = lambda key, m: jax.random.normal(key, (m, 1))
    >>> rejection(f, lambda s: s[:, 0] > 0, 100, as_key(0)).min() > 0
    np.True_
    """
    kept: list[np.ndarray] = []
    total, batch = 0, max(1024, 2 * n)
    for _ in range(10_000):
        key, sub = jax.random.split(key)
        cand = np.asarray(propose(sub, batch))
        good = cand[np.asarray(accept(cand))]
        kept.append(good)
        total += len(good)
        if total >= n:
            return np.concatenate(kept)[:n]
    raise RuntimeError(f"rejection sampling: accepted only {total} of {n} requested samples")


# ---------------------------------------------------------------------------------------------
# Adaptive-tempering SMC (Del Moral, Doucet & Jasra 2006) with random-walk Metropolis moves


def _ess(logw: jax.Array) -> jax.Array:
    w = jax.nn.softmax(logw)
    return 1.0 / jnp.sum(w**2)


def _rwmh(parts: Callable, beta, key, u, lp, ll, chol, scale, steps: int):
    """``steps`` random-walk Metropolis moves of every particle, targeting lp + β·ll.

    ``parts(u) -> (lp, ll)``; returns the new states, their (lp, ll) and the acceptance rate.
    """

    def body(carry, k):
        u, lp, ll, acc = carry
        k1, k2 = jax.random.split(k)
        prop = u + scale * jax.random.normal(k1, u.shape) @ chol.T
        lp_prop, ll_prop = parts(prop)
        log_ratio = lp_prop + beta * ll_prop - lp - beta * ll
        ok = jnp.log(jax.random.uniform(k2, lp.shape)) < log_ratio
        u = jnp.where(ok[:, None], prop, u)
        lp, ll = jnp.where(ok, lp_prop, lp), jnp.where(ok, ll_prop, ll)
        return (u, lp, ll, acc + ok.mean()), None

    init = (u, lp, ll, 0.0)
    (u, lp, ll, acc), _ = jax.lax.scan(body, init, jax.random.split(key, steps))
    return u, lp, ll, acc / steps


def _weighted_chol(u: jax.Array, logw: jax.Array) -> jax.Array:
    w = jax.nn.softmax(logw)
    mean = w @ u
    cov = (u - mean).T @ ((u - mean) * w[:, None])
    cov = cov + 1e-6 * (jnp.trace(cov) / u.shape[1] + 1e-6) * jnp.eye(u.shape[1])
    return jnp.linalg.cholesky(cov)


class SMC:
    """Tempered SMC for π_β(u) ∝ prior(u) · L(u)^β, β: 0 → 1, in unconstrained space u.

    ``log_prior(u)`` and ``log_lik(u, x)`` act on one particle ``u`` of shape ``(d,)``. Each
    stage picks the next β so that the effective sample size of the incremental weights is
    ``target_ess`` · N (bisection), resamples (systematic), and applies ``steps`` random-walk
    Metropolis moves with the particles' covariance (scale tuned to ~25-40% acceptance). At β = 1
    the particles are moved ``final_steps`` more times and then snapshotted every ``thin`` steps.
    Modes are weighted by their mass because every particle starts from the prior.
    """

    def __init__(self, log_prior: Callable, log_lik: Callable, dim: int, steps: int = 10):
        self.dim, self.steps = dim, steps
        lp = jax.vmap(log_prior)
        ll = jax.vmap(log_lik, (0, None))

        def init(u, x):
            return lp(u), _finite(ll(u, x))

        def stage(key, u, lpu, llu, beta, scale, x, target_ess):
            from blackjax.smc.resampling import systematic  # imported when first traced

            n = u.shape[0]

            def too_small(b):
                return _ess((b - beta) * llu) < target_ess * n

            def bisect(_, lohi):
                lo, hi = lohi
                mid = 0.5 * (lo + hi)
                bad = too_small(mid)
                return jnp.where(bad, lo, mid), jnp.where(bad, mid, hi)

            lo, _ = jax.lax.fori_loop(0, 60, bisect, (beta, 1.0))
            new = jnp.where(too_small(1.0), jnp.maximum(lo, beta + 1e-6), 1.0)
            logw = (new - beta) * llu
            k1, k2 = jax.random.split(key)
            chol = _weighted_chol(u, logw)
            idx = jnp.where(new > beta, systematic(k1, jax.nn.softmax(logw), n), jnp.arange(n))
            u, lpu, llu = u[idx], lpu[idx], llu[idx]
            u, lpu, llu, acc = _rwmh(
                lambda v: init(v, x), new, k2, u, lpu, llu, chol, scale, self.steps
            )
            return u, lpu, llu, new, acc

        self._init, self._stage = jax.jit(init), jax.jit(stage)

    def run(self, u0, x, n: int, key, target_ess=0.5, final_steps=None, thin=None, max_stages=500):
        u = jnp.asarray(u0, jnp.float32)
        x = jnp.asarray(x, jnp.float32)
        lpu, llu = self._init(u, x)
        beta, scale, self.stages = 0.0, 2.38 / math.sqrt(self.dim), 0
        while beta < 1.0:
            if self.stages >= max_stages:
                raise RuntimeError(f"SMC: β reached only {beta:.3g} after {max_stages} stages")
            key, sub = jax.random.split(key)
            u, lpu, llu, b, acc = self._stage(sub, u, lpu, llu, beta, scale, x, target_ess)
            beta, scale, self.stages = float(b), _tune(scale, float(acc)), self.stages + 1
        final_steps = final_steps if final_steps is not None else 5 * self.steps
        thin = thin if thin is not None else 2 * self.steps
        out, moved, self.acceptance = [], 0, []
        while sum(len(o) for o in out) < n:
            key, sub = jax.random.split(key)  # a stage at β = 1: no reweighting, pure moves
            u, lpu, llu, _, acc = self._stage(sub, u, lpu, llu, 1.0, scale, x, target_ess)
            moved += self.steps
            self.acceptance.append(float(acc))
            scale = _tune(scale, float(acc)) if moved <= final_steps else scale
            if moved >= final_steps and (moved - final_steps) % thin == 0:
                out.append(np.asarray(u))
        return np.concatenate(out)[:n]


def _finite(a: jax.Array) -> jax.Array:
    return jnp.where(jnp.isnan(a), -jnp.inf, a)


def _tune(scale: float, acc: float) -> float:
    return scale * (0.6 if acc < 0.15 else 1.5 if acc > 0.5 else 1.0)


def smc_sample(
    prior: Any, log_lik: Callable, steps: int = 10, final_steps: int | None = None
) -> Callable:
    """A reference sampler ``(x_o, n, key) -> (n, dim)`` for ``prior`` and ``log_lik(θ, x)``.

    The SMC runs in the prior's unconstrained space; up to 10,000 particles are drawn from the
    prior, and for ``n`` > 10,000 the final particles are snapshotted repeatedly.

    >>> import lfi
    >>> prior = lfi.BoxUniform([-3.0], [3.0])
    >>> ll = lambda theta, x: -0.5 * jnp.sum((x - theta) ** 2) / 0.5**2
    >>> s = smc_sample(prior, ll)(np.array([1.0]), 4000, as_key(0))
    >>> s.shape, round(float(s.mean()), 1), round(float(s.std()), 1)
    ((4000, 1), 1.0, 0.5)
    """

    def log_prior(u):
        return prior.log_prob(prior.from_unconstrained(u)) + prior.log_det_from_unconstrained(u)

    def log_lik_u(u, x):
        return log_lik(prior.from_unconstrained(u), x)

    smc = SMC(log_prior, log_lik_u, prior.dim, steps)

    def sample(x, n, key):
        k0, k1 = jax.random.split(key)
        u0 = prior.to_unconstrained(prior.sample(min(n, 10_000), k0))
        u = smc.run(u0, x, n, k1, final_steps=final_steps)
        return np.asarray(prior.from_unconstrained(u))

    sample.smc = smc
    return sample
