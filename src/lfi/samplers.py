"""Sampling posteriors known up to a constant: MCMC, rejection and importance sampling.

Every sampler takes a log density in an *unconstrained* space as a pure function plus an explicit
pytree of parameters, ``log_density(params, u) -> scalar`` with ``u`` of shape (d,). The function
is static under ``eqx.filter_jit`` and the parameters' arrays are traced, so a new network or
observation reuses the compiled sampler (numbers given as Python floats are static: pass arrays).
A NaN log density counts as −inf (outside the support).

:func:`mcmc` runs the chains in parallel (``jax.vmap``), warmup then sampling in one ``lax.scan``:
one compiled call. Kernels: ``"nuts"`` (Hoffman & Gelman 2014, arXiv:1111.4246; blackjax's
multinomial variant), ``"hmc"`` (integration time π/2 in the whitened space, jittered ±50%),
``"slice"`` (coordinate-wise slice sampling with stepping out, Neal 2003, Ann. Statist. 31:705,
along the whitened axes) and ``"rwm"`` (random-walk Metropolis). The warmup is *shared by the
chains*: one step size, tuned by dual averaging on the chains' mean acceptance (target 0.9 for
nuts/hmc, which keeps divergences rare on curved posteriors, 0.3 for rwm), and one metric: the
covariance pooled over all chains in Stan-like windows (15% buffer, windows 1:2:4, 10% final
buffer), dense up to d = 50, diagonal above. Pooling makes short warmups work (20 chains × 20
steps is already 400 draws for the covariance), and a dense metric makes correlated posteriors
as easy as round ones. :func:`rhat` and :func:`ess` are the rank-normalised split R-hat (max of
bulk and folded) and bulk ESS of Vehtari et al. (2021, arXiv:1903.08008).

>>> import jax.numpy as jnp, numpy as np
>>> def log_density(params, u):
...     return -0.5 * jnp.sum(((u - params["mean"]) / params["scale"]) ** 2)
>>> params = {"mean": jnp.array([1.0, -2.0]), "scale": jnp.array([1.0, 0.1])}
>>> init = np.random.default_rng(0).normal(size=(10, 2))
>>> result = mcmc(log_density, params, init, 2000, num_warmup=100, seed=0)
>>> result.samples.shape, result.flat.shape
((10, 200, 2), (2000, 2))
>>> np.round(result.flat.mean(0), 1).tolist()
[1.0, -2.0]
>>> bool(result.rhat.max() < 1.02), result.divergences
(True, 0)
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import blackjax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.mcmc import slice as bj_slice
from scipy.special import ndtri

from lfi._rng import Seed, as_key

__all__ = [
    "rhat_threshold",
    "KERNELS",
    "MCMCResult",
    "check",
    "ess",
    "importance_sample",
    "log_weights",
    "mcmc",
]
__all__ += ["rejection_sample", "rhat"]

KERNELS = ("nuts", "hmc", "slice", "rwm")
_TARGET = {"nuts": 0.9, "hmc": 0.9, "rwm": 0.3}  # acceptance targeted by dual averaging
_SLICE_WIDTH = 3.0  # slice bracket width, in whitened units
_DENSE_MAX_DIM = 50  # dense metric up to this dimension, diagonal above
LogDensity = Callable[[Any, jax.Array], jax.Array]


def _safe(log_density: LogDensity, params: Any) -> Callable[[jax.Array], jax.Array]:
    """u ↦ log_density(params, u) with NaN/+inf → −inf and non-finite gradients → 0.

    Zeroing a gradient keeps HMC exact: leapfrog is volume preserving and reversible for any
    position-dependent force, and the Metropolis step still corrects.
    """

    def value(u):
        v = jnp.reshape(jnp.asarray(log_density(params, u), u.dtype), ())
        return jnp.where(jnp.isnan(v) | (v == jnp.inf), -jnp.inf, v)

    @jax.custom_jvp
    def f(u):
        return value(u)

    @f.defjvp
    def _(primals, tangents):
        v, g = jax.value_and_grad(value)(primals[0])
        g = jnp.where(jnp.isfinite(v) & jnp.isfinite(g), g, 0.0)
        return v, jnp.dot(g, tangents[0])

    return f


@eqx.filter_jit
def _batch_log_density(log_density, params, u):
    return jax.vmap(_safe(log_density, params))(u)


def _factor(cov: jax.Array) -> jax.Array:
    """L with L Lᵀ = cov for a dense metric, the standard deviations for a diagonal one."""
    return jnp.linalg.cholesky(cov) if cov.ndim == 2 else jnp.sqrt(cov)


def _kernel(name: str, logdensity: Callable) -> tuple[Callable, Callable]:
    """init(u) -> state; step(key, states, eps, cov) -> (states, accept, divergent)."""
    if name in ("nuts", "hmc"):
        kern = blackjax.nuts.build_kernel() if name == "nuts" else blackjax.hmc.build_kernel()

        def step(key, states, eps, cov):
            k_len, k = jax.random.split(key)
            # hmc: integration time π/2 (a quarter period of a whitened Gaussian) jittered by ±50%,
            # shared by the chains, in n equal steps no longer than eps
            t = jnp.pi / 2 * jax.random.uniform(k_len, minval=0.5, maxval=1.5)
            n = jnp.clip(jnp.ceil(t / eps), 1, 1024)
            eps, args = (eps, ()) if name == "nuts" else (t / n, (n.astype(jnp.int32),))
            one = lambda k, s: kern(k, s, logdensity, eps, cov, *args)
            states, info = jax.vmap(one)(jax.random.split(k, states.position.shape[0]), states)
            return states, info.acceptance_rate, info.is_divergent

        return lambda u: blackjax.hmc.init(u, logdensity), step

    def rwm(key, state, eps, cov):
        (u, ld), (k1, k2), f = state, jax.random.split(key), _factor(cov)
        z = jax.random.normal(k1, u.shape, u.dtype)
        prop = u + eps * (f @ z if f.ndim == 2 else f * z)
        ld_prop = logdensity(prop)
        accept = jnp.exp(jnp.minimum(ld_prop - ld, 0.0))
        take = jax.random.uniform(k2) < accept
        return (jnp.where(take, prop, u), jnp.where(take, ld_prop, ld)), accept

    def slice_(key, state, eps, cov):  # coordinate-wise in the whitened space z = L⁻¹u
        (u, ld), f = state, _factor(cov)
        to_u = (lambda z: f @ z) if f.ndim == 2 else (lambda z: f * z)
        z = jax.scipy.linalg.solve_triangular(f, u, lower=True) if f.ndim == 2 else u / f
        kern = bj_slice.build_coordinate_kernel(bj_slice.stepping_out, initial_widths=eps)
        new, info = kern(key, bj_slice.SliceState(z, ld), lambda z: logdensity(to_u(z)))
        return (to_u(new.position), new.logdensity), info.is_accepted.astype(jnp.float32)

    one = rwm if name == "rwm" else slice_

    def step(key, states, eps, cov):
        keys = jax.random.split(key, states[0].shape[0])
        states, accept = jax.vmap(lambda k, s: one(k, s, eps, cov))(keys, states)
        return states, accept, jnp.zeros(accept.shape, bool)

    return lambda u: (u, logdensity(u)), step


def _positions(states: Any) -> jax.Array:
    return states.position if hasattr(states, "position") else states[0]


def _da_init(eps):
    """Dual averaging (Hoffman & Gelman 2014, Alg. 5): (log ε, log ε̄, t, H̄, μ)."""
    return jnp.log(eps), jnp.log(eps), jnp.float32(1.0), jnp.float32(0.0), jnp.log(10 * eps)


def _da_update(da, accept, target):
    log_eps, log_avg, t, h, mu = da
    h = (1 - 1 / (t + 10)) * h + (target - accept) / (t + 10)
    log_eps = jnp.clip(mu - jnp.sqrt(t) / 0.05 * h, -20.0, 5.0)
    eta = t**-0.75
    return log_eps, eta * log_eps + (1 - eta) * log_avg, t + 1, h, mu


def _schedule(num_warmup: int, total: int) -> tuple[np.ndarray, ...]:
    """Per step: adapting? feeding the metric estimate? metric update after it?"""
    adapt, in_window, ends = (
        np.arange(total) < num_warmup,
        np.zeros(total, bool),
        np.zeros(total, bool),
    )
    start, stop = int(0.15 * num_warmup), num_warmup - int(0.1 * num_warmup)
    if num_warmup >= 20:
        sizes = [1, 2, 4] if stop - start >= 60 else [1]
        cuts = start + np.round(np.cumsum(sizes) / sum(sizes) * (stop - start)).astype(int)
        in_window[start:stop], ends[cuts - 1] = True, True
    return adapt, in_window, ends


@eqx.filter_jit
def _run(log_density, params, init, key, kernel, num_warmup, num_draws, thin):
    """Warmup then sampling, as one scan (the kernel is compiled once)."""
    logdensity = _safe(log_density, params)
    init_fn, step = _kernel(kernel, logdensity)
    states, target = jax.vmap(init_fn)(init), _TARGET.get(kernel)
    d, dense = init.shape[1], init.shape[1] <= _DENSE_MAX_DIM
    var0 = jnp.var(init, axis=0)
    cov = jnp.where(jnp.isfinite(var0) & (var0 > 0), var0, 1.0)
    cov = jnp.diag(cov) if dense else cov
    outer = (lambda a, b: a.T @ b) if dense else (lambda a, b: jnp.sum(a * b, axis=0))
    eps = {"nuts": 1.0, "hmc": 1.0, "rwm": 2.38 / math.sqrt(d)}.get(kernel, 1.0)
    stats0 = (jnp.float32(0.0), jnp.zeros(d, init.dtype), jnp.zeros_like(cov))
    carry = (states, _da_init(jnp.float32(eps)), cov, stats0)

    def body(carry, xs):
        states, da, cov, (n, mean, m2) = carry
        key, adapting, on, end = xs
        log_eps = jnp.where(adapting | (num_warmup == 0), da[0], da[1])  # then the average
        states, accept, divergent = step(
            key, states, jnp.exp(log_eps) if target else _SLICE_WIDTH, cov
        )
        if target:
            new_da = _da_update(da, jnp.mean(jnp.nan_to_num(accept)), target)
            da = jax.tree.map(lambda a, b: jnp.where(adapting, a, b), new_da, da)
        x = _positions(states)  # pooled (Chan et al.) update with all chains' positions
        nb, mb = x.shape[0], x.mean(0)
        tot, delta = n + nb, (mb - mean)[None]
        m2_new = m2 + outer(x - mb, x - mb) + outer(delta, delta) * n * nb / tot
        new = (tot, mean + delta[0] * nb / tot, m2_new)
        n, mean, m2 = jax.tree.map(lambda a, b: jnp.where(on, a, b), new, (n, mean, m2))

        def update(args):
            da, cov = args
            new = m2 / jnp.maximum(n - 1, 1)
            if dense:  # shrink towards the diagonal, as Stan shrinks towards the identity
                new = (n * new + 5 * jnp.diag(jnp.diag(new))) / (n + 5)
            var = jnp.diag(new) if dense else new
            ok = jnp.all(jnp.isfinite(_factor(new))) & jnp.all(var > 0)
            return _da_init(jnp.exp(da[0])), jnp.where(ok, new, cov)

        da, cov = jax.lax.cond(end, update, lambda a: a, (da, cov))
        n, mean, m2 = jax.tree.map(lambda a: jnp.where(end, 0.0, a), (n, mean, m2))
        return (states, da, cov, (n, mean, m2)), (x, jnp.mean(accept), jnp.sum(divergent))

    total = num_warmup + num_draws * thin
    xs = (jax.random.split(key, total), *_schedule(num_warmup, total))
    (_, da, _, _), (x, accept, divergent) = jax.lax.scan(body, carry, xs)
    eps = jnp.exp(da[1] if num_warmup else da[0]) if target else jnp.float32(_SLICE_WIDTH)
    samples = jnp.swapaxes(x[num_warmup + thin - 1 :: thin], 0, 1)
    return samples, accept[num_warmup:].mean(), divergent[num_warmup:].sum(), eps


@dataclass(frozen=True)
class MCMCResult:
    """Draws of :func:`mcmc` in unconstrained space, with their convergence diagnostics.

    ``samples`` (chains, draws, d); ``rhat``, ``ess`` (d,): rank-normalised split R-hat and bulk
    ESS; ``acceptance``: mean acceptance probability (1 for slice); ``divergences``: divergent
    transitions while sampling (nuts/hmc); ``step_size``: adapted step (slice: bracket width in
    standard deviations); ``seconds``: wall time of the call, compilation included.
    """

    samples: np.ndarray
    rhat: np.ndarray
    ess: np.ndarray
    acceptance: float
    divergences: int
    kernel: str
    seconds: float
    step_size: float
    num_warmup: int
    num_samples: int

    @property
    def flat(self) -> np.ndarray:
        """(num_samples, d): the draws interleaved across chains (draw 0 of every chain first)."""
        d = self.samples.shape[-1]
        return np.swapaxes(self.samples, 0, 1).reshape(-1, d)[: self.num_samples]

    def summary(self) -> str:
        """One line: settings, time, step size, acceptance, divergences, max R-hat, min ESS."""
        chains, draws, d = self.samples.shape
        return (
            f"{self.kernel}: {chains} chains x {draws} draws, d={d}, warmup {self.num_warmup}, "
            f"{self.seconds:.2f} s; step size {self.step_size:.3g}, acceptance "
            f"{self.acceptance:.2f}, divergences {self.divergences}; max R-hat "
            f"{np.max(self.rhat):.4f}, min bulk ESS {np.min(self.ess):.0f}"
        )

    def check(self, warn: bool = True) -> list[str]:
        """See :func:`check`."""
        return check(self, warn=warn)


def rhat_threshold(num_chains: int, num_draws: int, dim: int, level: float = 0.01) -> float:
    """The R-hat above which a run is flagged: 1.01 (Vehtari et al. 2021), or, for short chains,
    the ``1 − level`` quantile of max R-hat over ``dim`` dimensions for independent draws.

    Split R-hat of independent draws is itself random: with m half-chains of n draws,
    R̂² ≈ (n − 1)/n + F/n, F ~ F(m − 1, m(n − 1)) (between- over within-chain variance). For 20
    chains of 50 draws in 5-d, max R-hat exceeds 1.01 in ~19% of runs of independent draws; this
    threshold (Bonferroni over bulk and folded R-hat per dimension) keeps such false alarms
    near ``level``. Long chains get 1.01.

    >>> rhat_threshold(4, 1000, 2), round(rhat_threshold(20, 50, 5), 3)
    (1.01, 1.017)
    """
    from scipy.stats import f

    m, n = 2 * int(num_chains), int(num_draws) // 2
    if n < 2:
        return 1.01
    q = f.ppf(1 - level / (2 * max(int(dim), 1)), m - 1, m * (n - 1))
    return max(1.01, float(np.sqrt((n - 1) / n + q / n)))


def check(result: MCMCResult, warn: bool = True) -> list[str]:
    """The problems of an MCMC run (empty when none), each also issued with ``warnings.warn``.

    Flags max R-hat above :func:`rhat_threshold` (1.01 unless the chains are short) or min bulk
    ESS < 400 (the thresholds of Vehtari et al. 2021), an acceptance below half the kernel's
    target, and any divergent transition.
    """
    problems = []
    limit = rhat_threshold(*result.samples.shape)
    if np.all(np.isnan(result.rhat)):
        problems.append("fewer than 4 draws per chain: mixing not checked (draw more)")
    elif not np.all(np.nan_to_num(result.rhat, nan=np.inf) <= limit):
        problems.append(
            f"max R-hat {np.nanmax(result.rhat):.3f} > {limit:.3f}: chains have not mixed"
        )
    if not np.all(np.isnan(result.ess)) and not np.all(np.nan_to_num(result.ess) >= 400):
        problems.append(f"min bulk ESS {np.nanmin(result.ess):.0f} < 400: draw more or thin")
    target = _TARGET.get(result.kernel)
    if target and result.acceptance < target / 2:
        problems.append(f"acceptance {result.acceptance:.2f} is low (target {target})")
    if result.kernel == "imh" and result.acceptance < 0.1:
        problems.append(
            f"acceptance {result.acceptance:.2f} is low: the proposal fits the posterior poorly "
            "(try sampler='nuts' or 'slice')"
        )
    if result.divergences > 0:
        problems.append(f"{result.divergences} divergent transitions: the draws may be biased")
    for problem in problems if warn else []:
        warnings.warn(f"mcmc ({result.kernel}): {problem}", stacklevel=2)
    return problems


def mcmc(
    log_density: LogDensity,
    params: Any,
    init: Any,
    num_samples: int,
    *,
    seed: Seed = 0,
    kernel: str = "nuts",
    num_warmup: int = 200,
    thin: int = 1,
) -> MCMCResult:
    """Draw ``num_samples`` in total from ``exp(log_density(params, u))`` with parallel chains.

    ``init`` (chains, d): one starting point per chain, each with a finite log density (e.g.
    :func:`importance_sample` from the prior). Each chain adapts for ``num_warmup`` steps, then
    keeps every ``thin``-th of ``ceil(num_samples / chains) * thin`` steps; ``result.flat`` has
    exactly ``num_samples`` rows. Check ``result.check()``. R-hat needs a per-chain ESS of a
    few hundred, so on CPU prefer ~20–50 chains of ≥ 200 draws over 100 chains of 100 draws
    (also faster: the warmup costs per chain). ``"slice"``/``"rwm"`` need no gradients but mix
    slower (raise ``thin``).
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel: expected one of {', '.join(KERNELS)}, got {kernel!r}")
    init = jnp.asarray(init, jnp.float32)
    if init.ndim != 2 or 0 in init.shape:
        raise ValueError(f"init: expected shape (chains, d), got {init.shape}")
    if min(num_samples, thin) < 1 or num_warmup < 0:
        raise ValueError(f"num_samples, thin, num_warmup: got {num_samples}, {thin}, {num_warmup}")
    tic = time.perf_counter()
    bad = np.flatnonzero(~np.isfinite(np.asarray(_batch_log_density(log_density, params, init))))
    if bad.size:
        raise ValueError(
            f"init: the log density is not finite at {bad.size} of {init.shape[0]} starting "
            f"points (rows {bad[:10].tolist()}); start every chain inside the support"
        )
    draws = -(-int(num_samples) // init.shape[0])
    samples, accept, divergent, eps = _run(
        log_density, params, init, as_key(seed), kernel, int(num_warmup), draws, int(thin)
    )
    x = np.asarray(samples)
    diagnostics = (*convergence(x), float(accept), int(divergent), kernel)
    seconds = time.perf_counter() - tic
    return MCMCResult(x, *diagnostics, seconds, float(eps), int(num_warmup), int(num_samples))


def convergence(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R-hat, bulk ESS) of draws (chains, draws, d); NaN with fewer than 4 draws per chain (too
    few to judge mixing, and warned on by :func:`check`)."""
    if x.shape[1] >= 4:
        return rhat(x), ess(x)
    nan = np.full(x.shape[2:], np.nan)
    return nan, nan


def _split_ranks(samples: Any, fold: bool = False) -> np.ndarray:
    """Split chains in halves, then rank-normalise over all draws: (2·chains, draws//2, ...)."""
    x = np.asarray(samples, np.float64)
    if x.ndim < 2 or x.shape[1] < 4:
        raise ValueError(f"samples: expected shape (chains, draws >= 4, ...), got {x.shape}")
    half = x.shape[1] // 2
    x = np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)
    if fold:
        x = np.abs(x - np.median(x, axis=(0, 1)))
    flat = x.reshape(x.shape[0] * x.shape[1], -1)
    ranks = np.stack([_average_ranks(col) for col in flat.T], axis=1).reshape(x.shape)
    return ndtri((ranks - 0.375) / (x.shape[0] * x.shape[1] + 0.25))


def _average_ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a 1-d array, ties given their average rank (scipy.stats.rankdata's
    "average" method, without importing scipy.stats: seconds on a sampler's first call); all
    NaN if any value is NaN, as rankdata's default."""
    if np.isnan(v).any():
        return np.full(v.shape, np.nan)
    order = np.argsort(v, kind="stable")
    where = np.empty_like(order)
    where[order] = np.arange(len(v))
    s = v[order]
    new = np.concatenate([[True], s[1:] != s[:-1]])
    group = np.cumsum(new)[where]  # 1-based index of each value's tie group
    edges = np.concatenate([np.flatnonzero(new), [len(v)]])
    return 0.5 * (edges[group] + edges[group - 1] + 1)


def _rhat(z: np.ndarray) -> np.ndarray:
    n = z.shape[1]
    within = z.var(axis=1, ddof=1).mean(0)
    return np.sqrt(((n - 1) / n * within + z.mean(1).var(0, ddof=1)) / within)


def rhat(samples: Any) -> np.ndarray:
    """Rank-normalised split R-hat, max of bulk and folded (Vehtari et al. 2021), per dimension.

    ``samples`` (chains, draws, ...) → shape ``samples.shape[2:]``.

    >>> rng = np.random.default_rng(0)
    >>> bool(rhat(rng.normal(size=(4, 1000, 1)))[0] < 1.01)
    True
    >>> bool(rhat(rng.normal(size=(4, 1000, 1)) + np.arange(4)[:, None, None])[0] > 1.1)
    True
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.maximum(_rhat(_split_ranks(samples)), _rhat(_split_ranks(samples, fold=True)))


def ess(samples: Any) -> np.ndarray:
    """Bulk effective sample size (Vehtari et al. 2021; Geyer's initial monotone sequence).

    ``samples`` (chains, draws, ...) → shape ``samples.shape[2:]``.

    >>> rng = np.random.default_rng(0)
    >>> 3600 < float(ess(rng.normal(size=(4, 1000, 1)))[0]) < 4400
    True
    """
    z = _split_ranks(samples)
    m, n = z.shape[:2]
    flat = z.reshape(m, n, -1)
    centred = flat - flat.mean(1, keepdims=True)
    spec = np.fft.rfft(centred, n=2 * n, axis=1)
    acov = np.fft.irfft(spec * np.conj(spec), n=2 * n, axis=1)[:, :n] / n  # (m, n, k)
    within = acov[:, 0].mean(0) * n / (n - 1)
    var_plus = within * (n - 1) / n + flat.mean(1).var(0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = 1 - (within - acov.mean(0)) / var_plus  # (n, k)
    rho[0] = 1.0  # by definition (Stan, ArviZ); the formula gives 1 − 1/n: short chains' ESS up
    out = np.empty(rho.shape[1])
    for j in range(rho.shape[1]):
        r = rho[:, j]
        if not np.isfinite(r).all():
            out[j] = np.nan
            continue
        pairs = r[: 2 * (n // 2)].reshape(-1, 2).sum(1)  # Γ_k = ρ_2k + ρ_2k+1
        stop = np.flatnonzero(pairs <= 0)
        pairs = pairs[: stop[0] if stop.size else len(pairs)]
        tau = -1 + 2 * np.minimum.accumulate(pairs).sum() if pairs.size else 1.0
        out[j] = m * n / max(tau, 1 / np.log10(m * n))
    return out.reshape(z.shape[2:])


def log_weights(log_target: LogDensity, params: Any, u: Any, log_q: Any) -> jax.Array:
    """log w = log_target(params, u) − log q(u) for rows ``u`` (n, d); −inf where not finite."""
    log_q = jnp.asarray(log_q)
    log_w = _batch_log_density(log_target, params, u) - log_q
    return jnp.where(jnp.isfinite(log_q), log_w, -jnp.inf)


def _proposals(sample: Callable, log_prob: Callable, key, n, log_target, params):
    u = jnp.asarray(sample(key, n))
    return u, np.asarray(log_weights(log_target, params, u, log_prob(u)), np.float64)


def rejection_sample(
    log_target: LogDensity,
    params: Any,
    proposal_sample: Callable[[jax.Array, int], jax.Array],
    proposal_log_prob: Callable[[jax.Array], jax.Array],
    n: int,
    *,
    seed: Seed = 0,
    log_bound: float | None = None,
    batch_size: int = 10_000,
    max_rounds: int = 100,
) -> tuple[np.ndarray, float]:
    """Exact draws (n, d) from ``exp(log_target(params, u))`` and the acceptance rate.

    Proposals come from ``proposal_sample(key, m) -> (m, d)`` with log density
    ``proposal_log_prob(u: (m, d)) -> (m,)``, ``batch_size`` at a time; one is kept with
    probability exp(log w − log_bound), log w = log_target − log q. Without ``log_bound``, a
    pilot batch estimates it as its largest log w + log 2; a later batch that exceeds the bound
    raises it and thins the draws kept so far, so the draws are exact wherever proposals have
    looked. A RuntimeError suggests :func:`mcmc` when ``max_rounds`` batches cannot suffice.

    >>> import jax, jax.numpy as jnp
    >>> draws, rate = rejection_sample(
    ...     lambda p, u: -0.5 * jnp.sum(u**2), None,
    ...     lambda key, m: 2 * jax.random.normal(key, (m, 1)),
    ...     lambda u: -0.5 * jnp.sum((u / 2) ** 2, axis=1), 500, seed=0)
    >>> draws.shape, round(float(draws.std()), 1), 0.2 < rate < 0.5
    ((500, 1), 1.0, True)
    """
    key, key_pilot = jax.random.split(as_key(seed))
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).tolist())
    if log_bound is None:
        _, lw = _proposals(proposal_sample, proposal_log_prob, key_pilot,
                           batch_size, log_target, params)  # fmt: skip
        if not np.isfinite(np.max(lw)):
            raise RuntimeError("rejection_sample: the target is -inf at every pilot proposal")
        log_bound = float(np.max(lw)) + math.log(2)
    kept: list[np.ndarray] = []
    proposed = total = 0
    for round_ in range(max_rounds):
        u, lw = _proposals(proposal_sample, proposal_log_prob, jax.random.fold_in(key, round_),
                           batch_size, log_target, params)  # fmt: skip
        if np.max(lw) > log_bound:
            new_bound = float(np.max(lw)) + math.log(2)
            warnings.warn(f"rejection_sample: log_bound raised to {new_bound:.3g}", stacklevel=2)
            keep = [rng.random(len(k)) < math.exp(log_bound - new_bound) for k in kept]
            kept, log_bound = [k[m] for k, m in zip(kept, keep)], new_bound
        kept.append(np.asarray(u)[rng.random(batch_size) < np.exp(lw - log_bound)])
        proposed, total = proposed + batch_size, sum(len(k) for k in kept)
        if total >= n:
            return np.concatenate(kept)[:n], total / proposed
        rate = max(total / proposed, np.mean(np.exp(lw - log_bound)))
        if rate == 0 or (n - total) / (rate * batch_size) > max_rounds - round_ - 1:
            break
    raise RuntimeError(
        f"rejection_sample: acceptance rate {total / proposed:.2g} is too low to draw n={n} in "
        f"max_rounds={max_rounds} batches of {batch_size}; use mcmc() or a closer proposal"
    )


def importance_sample(
    log_target: LogDensity,
    params: Any,
    proposal_sample: Callable[[jax.Array, int], jax.Array],
    proposal_log_prob: Callable[[jax.Array], jax.Array],
    n: int,
    *,
    seed: Seed = 0,
    num_proposals: int | None = None,
    warn: bool = True,
) -> tuple[np.ndarray, float]:
    """Sampling-importance-resampling: (n, d) draws and the ESS of the importance weights.

    Draws ``num_proposals`` (default max(10 n, 1000)) from the proposal (signatures as in
    :func:`rejection_sample`), weights them by exp(log_target − log q) and resamples ``n``
    systematically. Warns when the ESS (Σw)²/Σw² is below min(n, 100): the draws then repeat a
    few proposals. Approximate; good for starting MCMC chains.

    >>> import jax, jax.numpy as jnp
    >>> draws, ess_ = importance_sample(
    ...     lambda p, u: -0.5 * jnp.sum(u**2), None,
    ...     lambda key, m: 2 * jax.random.normal(key, (m, 1)),
    ...     lambda u: -0.5 * jnp.sum((u / 2) ** 2, axis=1), 1000, seed=0)
    >>> draws.shape, round(float(draws.std()), 1), ess_ > 3000
    ((1000, 1), 1.0, True)
    """
    from blackjax.smc.resampling import systematic

    key_q, key_r, key_p = jax.random.split(as_key(seed), 3)
    m = int(num_proposals or max(10 * n, 1000))
    u, lw = _proposals(proposal_sample, proposal_log_prob, key_q, m, log_target, params)
    if not np.isfinite(lw).any():
        raise RuntimeError("importance_sample: the target is -inf at every proposal")
    w = np.exp(lw - lw.max())
    ess_ = float(w.sum() ** 2 / (w**2).sum())
    if warn and ess_ < min(n, 100):
        warnings.warn(f"importance_sample: weights ESS {ess_:.1f} of {m} proposals", stacklevel=2)
    idx = systematic(key_r, jnp.asarray(w / w.sum()), n)
    return np.asarray(u)[np.asarray(jax.random.permutation(key_p, idx))], ess_
