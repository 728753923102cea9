"""Lotka–Volterra by the Gillespie algorithm, with the joint likelihood of every run.

The stochastic predator–prey model of Papamakarios, Sterratt & Murray (SNL, arXiv:1805.07226),
used by Brehmer et al. for SCANDAL (PNAS 2020, arXiv:1805.12244): X predators and Y prey start at
(50, 100); four reactions fire at rates exp(θ) · (XY, X, Y, XY): a predator is born, a predator
dies, a prey is born, a prey is eaten. θ = the log rates, prior U[−5, 2]⁴; the run is recorded
every 0.2 time units up to T = 30 and summarised by 9 statistics (means and log variances of
both series, their autocorrelations at lags 1 and 2, and their cross-correlation), as in SNL.

The simulator is augmented (:mod:`lfi.augment`): the path is the sequence of waiting times
(exponential at the total rate R) and reactions (categorical ∝ the rates), and log p(x, z | θ) =
Σ_events [log rate_k − R Δt] − R_last (T − t_last) (the last term: no event before T). A run
that needs more than 10 000 events (populations exploding) returns NaN, which lfi counts and
excludes. The marginal likelihood p(x | θ) is intractable, so the task has no reference
posterior; the joint score and ratio are its ground truth.

>>> import jax, jax.numpy as jnp
>>> from lfi.tasks import get
>>> task = get("lotka_volterra_gillespie")
>>> x = task.simulator(jax.random.key(0), jnp.log(jnp.array([0.01, 0.5, 1.0, 0.01])))
>>> x.shape
(9,)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lfi.augment import augmented, categorical, exponential
from lfi.priors import BoxUniform
from lfi.tasks.base import Task

__all__ = ["lotka_volterra_gillespie"]

INITIAL = (50.0, 100.0)
T_END, DT_RECORD, MAX_EVENTS = 30.0, 0.2, 10_000
TRUE_THETA = np.log([0.01, 0.5, 1.0, 0.01]).astype(np.float32)
_CHANGES = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
_OBS_SEED = 20_261_129


def _gillespie(key, theta):
    """(series (151, 2), log p(x, z | θ), finished): one run, at most MAX_EVENTS events."""
    times = jnp.arange(0.0, T_END + 1e-6, DT_RECORD)

    def step(carry, k):
        t, state, series, lp, done = carry
        k1, k2 = jax.random.split(k)
        x, y = state
        rates = jnp.exp(theta) * jnp.stack([x * y, x, y, x * y])
        total = jnp.sum(rates)
        alive = total > 0
        safe_total = jnp.where(alive, total, 1.0)
        dt, lp_dt = exponential(k1, safe_total)
        log_rates = jnp.log(jnp.where(rates > 0, rates, 1e-30))
        masked = jnp.where(rates > 0, log_rates, -jnp.inf)
        reaction, lp_k = categorical(k2, jnp.where(alive, masked, 0.0))  # dead: no event
        t_new = jnp.where(alive, t + dt, jnp.inf)
        fires = (~done) & (t_new <= T_END)
        ends = (~done) & ~fires
        # grid times in [t, t_new) see the state before this event
        record = (~done) & (times >= t) & (times < t_new)
        series = jnp.where(record[:, None], state[None], series)
        lp = lp + jnp.where(fires, lp_dt + lp_k, 0.0)
        lp = lp + jnp.where(ends & alive, -safe_total * (T_END - t), 0.0)
        state = jnp.where(fires, state + _CHANGES[reaction], state)
        t = jnp.where(fires, t_new, t)
        return (t, state, series, lp, done | ends), None

    init = (0.0, jnp.array(INITIAL), jnp.zeros((times.shape[0], 2)), 0.0, False)
    keys = jax.random.split(key, MAX_EVENTS)
    (_, _, series, lp, done), _ = jax.lax.scan(step, init, keys)
    return series, lp, done


def summaries(series: jax.Array) -> jax.Array:
    """SNL's 9 statistics of a (151, 2) predator/prey series."""
    mean = series.mean(0)
    var = series.var(0)
    z = (series - mean) / jnp.sqrt(jnp.where(var > 0, var, 1.0))
    n = series.shape[0]

    def autocorr(lag):
        return jnp.sum(z[lag:] * z[:-lag], 0) / (n - 1)

    cross = jnp.sum(z[:, 0] * z[:, 1]) / (n - 1)
    return jnp.concatenate([mean, jnp.log(var + 1.0), autocorr(1), autocorr(2), cross[None]])


def _program(key, theta):
    series, lp, done = _gillespie(key, theta)
    x = summaries(series)
    return jnp.where(done, x, jnp.nan), lp


def _no_reference(x, n, key):
    raise NotImplementedError(
        "lotka_volterra_gillespie: p(x | θ) is intractable, so there is no reference posterior; "
        "its ground truth is the joint score and ratio of each run"
    )


def lotka_volterra_gillespie() -> Task:
    """θ = log rates ~ U[−5, 2]⁴; x = 9 summaries of a Gillespie predator–prey run."""
    prior = BoxUniform(low=-5.0, high=2.0, dim=4)
    sim = augmented(_program)
    keys = [jax.random.fold_in(jax.random.PRNGKey(_OBS_SEED), k) for k in range(1, 11)]
    xs = np.stack([np.asarray(sim(k, jnp.asarray(TRUE_THETA))) for k in keys])
    return Task(
        "lotka_volterra_gillespie",
        prior=prior,
        simulator=sim,
        dim_x=9,
        observations=xs,
        true_parameters=np.tile(TRUE_THETA, (10, 1)),
        reference=_no_reference,
        log_likelihood=None,
        description=(
            "Stochastic Lotka-Volterra (Gillespie; SNL arXiv:1805.07226, SCANDAL "
            "arXiv:1805.12244): θ = log rates, 9 summaries. Augmented simulator; no reference "
            "posterior (intractable p(x | θ))."
        ),
        source=f"lfi; 10 runs at the true θ, keys fold_in(PRNGKey({_OBS_SEED}), k)",
        extras={"gillespie": _gillespie, "summaries": summaries},
    )
