"""Mining gold: the joint score and joint likelihood ratio of a simulator's latent path (autodiff).

A simulator is a program with latent variables z: x ~ p(x, z | θ). Its likelihood p(x | θ) is an
intractable integral over z, but the joint probability of one run is a product of the densities of
its random choices, log p(x, z | θ) = Σ_choices log p(choice | θ, earlier choices). From it come

- the joint score t(x, z | θ) = ∇θ log p(x, z | θ), and
- the joint log-ratio log r(x, z | θ, θ') = log p(x, z | θ) − log p(x, z | θ'), the same path z
  re-evaluated at another θ',

which are unbiased targets of the intractable score and ratio: E[t(x, z | θ) | x] = t(x | θ) and
E[r(x, z | θ, θ') | x] = r(x | θ, θ') when z ~ p(z | x, θ') (Brehmer, Louppe, Pavez & Cranmer,
"Mining gold from implicit models", PNAS 2020, arXiv:1805.12244).

Write the simulator in JAX as ``f(key, theta) -> (x, log_p)``, drawing every random choice with
the primitives below — each returns ``(value, log_density)`` — and summing the log-densities;
wrap it with :func:`augmented`. lfi then derives t and log r without the user deriving anything:
the program runs once per θ of a small batch under ``jax.vmap``; every primitive draws its value
in the first row (θ_sample) and shares it with the other rows, which only re-evaluate the
densities (so the path is the same), and the values carry no gradient (so ∇θ holds z fixed).
Outside lfi's augmentation the primitives are ordinary samplers. Loops may use ``lax.scan``.
The identities above need every random choice's support not to depend on θ (e.g. no
``uniform(key, 0, θ)``): with a moving support edge the joint score misses the edge's term and
its mean is no longer t(x | θ).

>>> import jax, jax.numpy as jnp, lfi
>>> def toy(key, theta):                       # z ~ N(θ, 2²), x ~ N(z, 1)
...     k1, k2 = jax.random.split(key)
...     z, lp_z = normal(k1, theta[0], 2.0)
...     x, lp_x = normal(k2, z, 1.0)
...     return jnp.atleast_1d(x), lp_z + lp_x
>>> sim = augmented(toy)
>>> x, log_p, score = sim.joint(jax.random.key(0), jnp.array([0.5]), jnp.array([[0.5], [1.0]]))
>>> x.shape, log_p.shape, score.shape    # one path drawn at θ = 0.5, evaluated at 0.5 and 1.0
((1,), (2,), (2, 1))
>>> sim(jax.random.key(0), jnp.array([0.5])).shape    # an ordinary JAX simulator too
(1,)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from lfi._rng import Seed, as_key
from lfi.priors import Prior
from lfi.simulate import _Wrapped, check_num_simulations

__all__ = [
    "AugmentedSimulator",
    "GoldData",
    "augmented",
    "bernoulli",
    "categorical",
    "exponential",
    "normal",
    "poisson",
    "run_augmented",
    "simulate_augmented",
    "simulate_gold",
    "uniform",
]

_AXIS = "lfi_path"  # the vmap axis over (θ_sample, θ_eval_1, ..., θ_eval_k)
_LOG_2PI = math.log(2 * math.pi)


def _shared(value: jax.Array) -> jax.Array:
    """The value drawn in row 0 (θ_sample), in every row; no gradient flows through it."""
    value = jax.lax.stop_gradient(value)
    try:
        row = jax.lax.axis_index(_AXIS)
    except NameError:  # not under augmentation: an ordinary draw
        return value
    return jax.lax.psum(jnp.where(row == 0, value, jnp.zeros_like(value)), _AXIS)


def normal(key: jax.Array, loc: Any, scale: Any, shape: tuple = ()) -> tuple[jax.Array, jax.Array]:
    """z ~ N(loc, scale²) (broadcast to ``shape``); returns (z, Σ log N(z; loc, scale²))."""
    loc, scale = jnp.asarray(loc, jnp.float32), jnp.asarray(scale, jnp.float32)
    shape = jnp.broadcast_shapes(shape, loc.shape, scale.shape)
    z = _shared(loc + scale * jax.random.normal(key, shape))
    lp = -0.5 * ((z - loc) / scale) ** 2 - jnp.log(scale) - 0.5 * _LOG_2PI
    return z, jnp.sum(lp)


def uniform(key: jax.Array, low: Any, high: Any, shape: tuple = ()) -> tuple[jax.Array, jax.Array]:
    """z ~ U(low, high); returns (z, Σ log density)."""
    low, high = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)
    shape = jnp.broadcast_shapes(shape, low.shape, high.shape)
    z = _shared(low + (high - low) * jax.random.uniform(key, shape))
    inside = (z >= low) & (z <= high)
    return z, jnp.sum(jnp.where(inside, -jnp.log(high - low), -jnp.inf))


def exponential(key: jax.Array, rate: Any, shape: tuple = ()) -> tuple[jax.Array, jax.Array]:
    """z ~ Exp(rate) (mean 1/rate); returns (z, Σ log rate − rate z)."""
    rate = jnp.asarray(rate, jnp.float32)
    shape = jnp.broadcast_shapes(shape, rate.shape)
    z = _shared(jax.random.exponential(key, shape) / rate)
    return z, jnp.sum(jnp.log(rate) - rate * z)


def bernoulli(key: jax.Array, p: Any, shape: tuple = ()) -> tuple[jax.Array, jax.Array]:
    """b ~ Bernoulli(p) as 0./1. floats; returns (b, Σ log p^b (1−p)^(1−b))."""
    p = jnp.asarray(p, jnp.float32)
    shape = jnp.broadcast_shapes(shape, p.shape)
    b = _shared(jax.random.bernoulli(key, p, shape).astype(jnp.float32))
    one = b > 0.5  # each branch's argument made harmless where unused: no NaN gradient at p = 0, 1
    return b, jnp.sum(
        jnp.where(one, jnp.log(jnp.where(one, p, 1.0)), jnp.log1p(-jnp.where(one, 0.0, p)))
    )


def categorical(key: jax.Array, log_probs: Any) -> tuple[jax.Array, jax.Array]:
    """k ~ Categorical(softmax(log_probs)) over the last axis (an int); returns (k, log p_k)."""
    log_probs = jax.nn.log_softmax(jnp.asarray(log_probs, jnp.float32), axis=-1)
    k = _shared(jax.random.categorical(key, jax.lax.stop_gradient(log_probs)))
    return k, jnp.sum(jnp.take_along_axis(log_probs, k[..., None], axis=-1))


def poisson(key: jax.Array, rate: Any, shape: tuple = ()) -> tuple[jax.Array, jax.Array]:
    """k ~ Poisson(rate) as floats; returns (k, Σ k log rate − rate − log k!)."""
    rate = jnp.asarray(rate, jnp.float32)
    shape = jnp.broadcast_shapes(shape, rate.shape)
    k = _shared(jax.random.poisson(key, jax.lax.stop_gradient(rate), shape).astype(jnp.float32))
    safe = jnp.where(k > 0, rate, 1.0)  # k log rate = 0 at k = 0, also where rate = 0
    return k, jnp.sum(k * jnp.log(safe) - rate - jax.scipy.special.gammaln(k + 1))


class AugmentedSimulator(_Wrapped):
    """A JAX simulator ``f(key, theta) -> (x, log p(x, z | θ))`` (see the module docstring).

    Called as ``sim(key, theta)`` it is an ordinary JAX simulator returning x, so it works with
    every lfi method; :meth:`joint` adds the joint log-probabilities and scores of one path.
    """

    def __init__(self, fn: Callable):
        if isinstance(fn, AugmentedSimulator):
            fn = fn.program
        if not callable(fn):
            raise TypeError(f"simulator: expected a callable, got {type(fn).__name__}")
        self.program = fn
        super().__init__(lambda key, theta: self._x(key, theta), "jax")
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self._batched = jax.jit(jax.vmap(self.joint))

    def _x(self, key: jax.Array, theta: jax.Array) -> jax.Array:
        out = self.program(key, theta)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"simulator: an augmented simulator returns (x, log_p), got {type(out).__name__}"
            )
        return jnp.atleast_1d(out[0])

    def joint(
        self, key: jax.Array, theta_sample: jax.Array, theta_eval: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """One run with its path z drawn at ``theta_sample`` (dθ,), evaluated at each row of
        ``theta_eval`` (k, dθ): returns x, log p(x, z | θ_eval) (k,) and the joint scores
        ∇θ log p(x, z | θ_eval) (k, dθ)."""

        def log_p(thetas: jax.Array) -> tuple[jax.Array, jax.Array]:
            def row(theta: jax.Array) -> tuple[jax.Array, jax.Array]:
                out = self.program(key, theta)
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise TypeError(
                        "simulator: an augmented simulator returns (x, log_p), got "
                        f"{type(out).__name__}"
                    )
                return jnp.atleast_1d(jax.lax.stop_gradient(out[0])), jnp.asarray(out[1]).sum()

            x, lp = jax.vmap(row, axis_name=_AXIS)(thetas)
            return jnp.sum(lp[1:]), (x[0], lp[1:])

        thetas = jnp.concatenate([theta_sample[None], theta_eval]).astype(jnp.float32)
        grads, (x, lp) = jax.grad(log_p, has_aux=True)(thetas)
        return x, lp, grads[1:]


def augmented(fn: Callable) -> AugmentedSimulator:
    """Mark ``fn(key, theta) -> (x, log_p)`` as an augmented simulator (see the module doc)."""
    return AugmentedSimulator(fn)


def _check(simulator: Any) -> AugmentedSimulator:
    if not isinstance(simulator, AugmentedSimulator):
        raise TypeError(
            "simulator: the joint ratio and score need an augmented simulator; wrap "
            "f(key, theta) -> (x, log_p) with lfi.augmented(f), or compute log r and t yourself "
            f"and pass them to the method's fit (got {type(simulator).__name__})"
        )
    return simulator


def run_augmented(
    simulator: AugmentedSimulator,
    theta_sample: Any,
    theta_eval: Any,
    seed: Seed = 0,
    *,
    chunk_size: int = 10_000,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``n`` paths drawn at ``theta_sample`` (n, dθ), each evaluated at its ``theta_eval``
    (n, k, dθ): returns x (n, dx), log p (n, k) and scores (n, k, dθ) as numpy arrays."""
    sim = _check(simulator)
    ts = np.asarray(theta_sample, np.float32)
    te = np.asarray(theta_eval, np.float32)
    if ts.ndim != 2 or te.ndim != 3 or te.shape[0] != ts.shape[0] or te.shape[2] != ts.shape[1]:
        raise ValueError(
            f"theta_sample, theta_eval: expected (n, d) and (n, k, d), got {ts.shape}, {te.shape}"
        )
    n, key = ts.shape[0], as_key(seed)
    out: list[tuple] = []
    bar = tqdm(
        total=n, unit="sim", desc="simulating (augmented)", disable=not progress, leave=False
    )
    for c, start in enumerate(range(0, n, chunk_size)):
        stop = min(start + chunk_size, n)
        pad = chunk_size - (stop - start) if n > chunk_size else 0
        a, b = ts[start:stop], te[start:stop]
        if pad:
            a = np.concatenate([a, np.repeat(a[-1:], pad, 0)])
            b = np.concatenate([b, np.repeat(b[-1:], pad, 0)])
        keys = jax.random.split(jax.random.fold_in(key, c), a.shape[0])
        x, lp, score = sim._batched(keys, jnp.asarray(a), jnp.asarray(b))
        out.append(tuple(np.asarray(v)[: stop - start] for v in (x, lp, score)))
        bar.update(stop - start)
    bar.close()
    x, lp, score = (np.concatenate([o[i] for o in out]) for i in range(3))
    return x.astype(np.float32), lp, score


def _warn_nonfinite(*arrays: np.ndarray) -> None:
    bad = np.zeros(len(arrays[0]), bool)
    for a in arrays:
        bad |= ~np.all(np.isfinite(a.reshape(len(a), -1)), axis=1)
    if bad.any():
        warnings.warn(
            f"{int(bad.sum())} of {bad.size} augmented simulations have NaN/inf in x, log r or "
            "the score; they are kept and excluded (with a count) when a method trains on them",
            stacklevel=3,
        )


@dataclass
class GoldData:
    """Training rows for the mining-gold methods (all numpy, one row per simulation).

    ``theta`` (n, dθ): the parameter the network is conditioned on; ``x`` (n, dx); ``y`` (n,):
    0 where x was drawn at ``theta``, 1 where it was drawn at ``theta_ref``; ``log_r`` (n,):
    log r(x, z | θ, θ_ref) = log p(x, z | θ) − log p(x, z | θ_ref) along the path; ``score``
    (n, dθ): t(x, z | θ) = ∇θ log p(x, z | θ); ``theta_ref`` (dθ,) or None.
    """

    theta: np.ndarray
    x: np.ndarray
    score: np.ndarray
    log_r: np.ndarray | None = None
    y: np.ndarray | None = None
    theta_ref: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.theta)


def check_theta_ref(prior: Prior, theta_ref: Any) -> np.ndarray:
    """``theta_ref`` as a (dθ,) float32 array inside the prior's support, or a ValueError."""
    ref = np.asarray(theta_ref, np.float32).reshape(-1)
    if ref.shape != (prior.dim,) or not np.all(np.isfinite(ref)):
        raise ValueError(f"theta_ref: expected {prior.dim} finite values, got {theta_ref!r}")
    if not bool(prior.in_support(ref)):
        raise ValueError(f"theta_ref: {ref.tolist()} lies outside the prior's support")
    return ref


def simulate_augmented(
    simulator: AugmentedSimulator,
    prior: Prior,
    num_simulations: int,
    seed: Seed = 0,
    *,
    theta_ref: Any = None,
    progress: bool = True,
) -> GoldData:
    """θ ~ prior, x ~ p(x | θ) with the joint score t(x, z | θ) and, given ``theta_ref``, the
    joint log-ratio log r(x, z | θ, θ_ref). All rows have y = 0 (drawn at θ).

    >>> import lfi
    >>> from lfi.tasks import get
    >>> task = get("madminer_toy")
    >>> data = simulate_augmented(task.simulator, task.prior, 4, seed=0, theta_ref=[0.0],
    ...                           progress=False)
    >>> data.x.shape, data.score.shape, data.log_r.shape
    ((4, 1), (4, 1), (4,))
    """
    if not isinstance(prior, Prior):
        raise TypeError(f"prior: expected an lfi prior, got {type(prior).__name__}")
    n = check_num_simulations(num_simulations)
    key_theta, key_sim = jax.random.split(as_key(seed))
    theta = np.asarray(prior.sample(n, key_theta), np.float32)
    evals = [theta[:, None]]
    ref = None
    if theta_ref is not None:
        ref = check_theta_ref(prior, theta_ref)
        evals.append(np.broadcast_to(ref, theta.shape)[:, None])
    x, lp, score = run_augmented(
        simulator, theta, np.concatenate(evals, 1), key_sim, progress=progress
    )
    log_r = lp[:, 0] - lp[:, 1] if ref is not None else None
    _warn_nonfinite(x, score[:, 0], *(() if log_r is None else (log_r,)))
    return GoldData(theta, x, score[:, 0], log_r, np.zeros(n, np.float32), ref)


def simulate_gold(
    simulator: AugmentedSimulator,
    prior: Prior,
    num_simulations: int,
    theta_ref: Any,
    seed: Seed = 0,
    *,
    progress: bool = True,
) -> GoldData:
    """Training data for the ratio methods (CARL, ROLR, RASCAL, CASCAL, ALICE, ALICES).

    ``num_simulations`` rows, each with its own θ ~ prior: the first half (y = 0) drawn at θ,
    the rest (y = 1) drawn at ``theta_ref``; every row carries log r(x, z | θ, θ_ref) and the
    joint score t(x, z | θ) of its own path. Re-running with the same seed gives the same rows.
    """
    if not isinstance(prior, Prior):
        raise TypeError(f"prior: expected an lfi prior, got {type(prior).__name__}")
    n = check_num_simulations(num_simulations)
    ref = check_theta_ref(prior, theta_ref)
    key_theta, key_sim = jax.random.split(as_key(seed))
    theta = np.asarray(prior.sample(n, key_theta), np.float32)
    y = (np.arange(n) >= (n + 1) // 2).astype(np.float32)
    refs = np.broadcast_to(ref, theta.shape)
    sample_at = np.where(y[:, None] > 0, refs, theta)
    x, lp, score = run_augmented(
        simulator, sample_at, np.stack([theta, refs], 1), key_sim, progress=progress
    )
    log_r = lp[:, 0] - lp[:, 1]
    _warn_nonfinite(x, log_r, score[:, 0])
    return GoldData(theta, x, score[:, 0], log_r, y, ref)
