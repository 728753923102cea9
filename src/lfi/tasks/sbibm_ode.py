"""The two ODE tasks of sbibm 1.1.0, ``sir`` and ``lotka_volterra``, solved with diffrax.

Priors, observation models, time points and the ten observations (``data/<task>.json``, copied
from sbibm's ``files/num_observation_<k>/{observation,true_parameters}.csv``) are those of sbibm
1.1.0 (Lueckmann et al. 2021, "Benchmarking Simulation-Based Inference", arXiv:2101.04653):

``sir``: β ~ LogNormal(log 0.4, 0.5), γ ~ LogNormal(log 0.125, 0.2); S' = −βSI/N,
I' = βSI/N − γI, R' = γI with N = 10⁶, (S, I, R)(0) = (N − 1, 1, 0); x_k ~ Binomial(1000,
clamp(I(t_k)/N, 0, 1)) at t_k = 17k days, k = 0..9 (sbibm saves days 0..160 and keeps every 17th).

``lotka_volterra``: θ = (α, β, γ, δ) ~ LogNormal((−0.125, −3, −0.125, −3), 0.5²I);
X' = αX − βXY, Y' = −γY + δXY from (X, Y)(0) = (30, 1); x = (X(t_k))ₖ ++ (Y(t_k))ₖ with
t_k = 2.1k, k = 0..9 (every 21st of sbibm's 0.1-day grid), each ~ LogNormal(log clamp(·, 1e−10,
10⁴), 0.1).

The likelihoods are tractable given the ODE solution, so the reference posteriors are sampled by
lfi's tempered SMC (:func:`lfi.tasks.base.smc_sample`) on the exact likelihood. (sbibm: slice
MCMC, then a flow fitted to it as a rejection proposal.)

Not identical to sbibm: sbibm solves the ODEs in Julia through diffeqtorch, whose defaults it
keeps (Tsit5, reltol = abstol = 1e−8, float64; diffeqtorch is not version-pinned by sbibm). lfi
solves exactly equivalent ODEs in float32 with Tsit5 at rtol 1e−6, atol 1e−8 in log coordinates
(log I for SIR, log X and log Y for Lotka–Volterra:
positive populations, relative accuracy at any size); the two numerical solutions differ by far
less than the observation noise (checked in the tests against scipy at rtol 1e−10).

>>> import jax, jax.numpy as jnp
>>> from lfi.tasks import get
>>> task = get("sir")
>>> task.simulator(jax.random.PRNGKey(0), jnp.array([0.4, 0.125])).shape
(10,)
"""

from __future__ import annotations

import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from lfi.priors import LogNormal
from lfi.tasks.base import Task, load_data, smc_sample

__all__ = ["lotka_volterra", "lotka_volterra_path", "sir", "sir_infected"]

# --- sir --------------------------------------------------------------------------------------
SIR_N, SIR_COUNT = 1_000_000.0, 1000
SIR_TIMES = np.arange(0.0, 160.0, 17.0)  # days 0, 17, ..., 153
LV_TIMES = np.arange(10) * 2.1  # 0, 2.1, ..., 18.9
_RTOL, _ATOL, _MAX_STEPS = 1e-6, 1e-8, 4096


def _solve(field, y0, times, theta):
    """ys at ``times`` of y' = field(t, y, θ) by Tsit5 (adaptive); NaN where the solve failed."""
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        diffrax.Tsit5(),
        t0=0.0,
        t1=float(times[-1]),
        dt0=0.01,
        y0=y0,
        args=theta,
        saveat=diffrax.SaveAt(ts=jnp.asarray(times, jnp.float32)),
        stepsize_controller=diffrax.PIDController(rtol=_RTOL, atol=_ATOL),
        max_steps=_MAX_STEPS,
        throw=False,
    )
    ok = sol.result == diffrax.RESULTS.successful
    return jnp.where(ok, sol.ys, jnp.nan)


def _sir_field(t, y, theta):
    s, log_i = y[0], y[1]  # s = S/N; log I/N (I > 0 always)
    beta, gamma = theta[0], theta[1]
    return jnp.stack([-beta * s * jnp.exp(log_i), beta * s - gamma])


def sir_infected(theta: jax.Array) -> jax.Array:
    """I(t_k)/N at the 10 observation days, for one θ = (β, γ) (NaN if the solve failed)."""
    y0 = jnp.array([(SIR_N - 1.0) / SIR_N, math.log(1.0 / SIR_N)], jnp.float32)
    ys = _solve(_sir_field, y0, SIR_TIMES, theta)
    return jnp.exp(ys[:, 1])


def _sir_probs(theta):
    return jnp.clip(sir_infected(theta), 0.0, 1.0)


def _sir_simulator(key, theta):
    p = _sir_probs(theta)
    x = jax.random.binomial(key, SIR_COUNT, jnp.nan_to_num(p)).astype(jnp.float32)
    return jnp.where(jnp.isnan(p), jnp.nan, x)


def _sir_loglik(theta, x):
    p = _sir_probs(theta)
    n = SIR_COUNT
    log_comb = (
        jax.scipy.special.gammaln(n + 1.0)
        - jax.scipy.special.gammaln(x + 1.0)
        - jax.scipy.special.gammaln(n - x + 1.0)
    )
    lp = log_comb + jax.scipy.special.xlogy(x, p) + jax.scipy.special.xlog1py(n - x, -p)
    bad = jnp.any(jnp.isnan(p)) | jnp.any((x < 0) | (x > n) | (x != jnp.round(x)))
    return jnp.where(bad, -jnp.inf, jnp.sum(lp))


def sir() -> Task:
    """The SIR epidemic task of sbibm: 2 parameters, 10 binomial counts; SMC reference.

    >>> from lfi.tasks import get
    >>> task = get("sir")
    >>> task.dim_theta, task.dim_x, task.observation(1)[:4].tolist()
    (2, 10, [0.0, 1.0, 352.0, 40.0])
    """
    prior = LogNormal(loc=[math.log(0.4), math.log(0.125)], scale=[0.5, 0.2])
    data = load_data("sir")
    return Task(
        "sir",
        prior=prior,
        simulator=_sir_simulator,
        dim_x=10,
        observations=data["observations"],
        true_parameters=data["true_parameters"],
        reference=smc_sample(prior, _sir_loglik, steps=10, final_steps=50),
        log_likelihood=_sir_loglik,
        description=(
            "SIR (sbibm): N = 1e6, binomial(1000, I/N) counts on days 0, 17, ..., 153. "
            "ODE by diffrax Tsit5 (rtol 1e-6). Reference: tempered SMC on the exact likelihood."
        ),
        source=data["source"],
        extras={"infected": sir_infected, "times": SIR_TIMES},
    )


# --- lotka_volterra ---------------------------------------------------------------------------
LV_INITIAL = (30.0, 1.0)
LV_NOISE = 0.1
_LOG_MAX = 80.0  # exp(80) ~ 5e34: far above the 1e4 clamp, below float32 overflow


def _lv_field(t, y, theta):
    alpha, beta, gamma, delta = theta[0], theta[1], theta[2], theta[3]
    prey, pred = jnp.exp(jnp.minimum(y, _LOG_MAX))
    return jnp.stack([alpha - beta * pred, -gamma + delta * prey])  # d log X, d log Y


def lotka_volterra_path(theta: jax.Array) -> jax.Array:
    """(X(t_k))ₖ ++ (Y(t_k))ₖ: the 20 noise-free populations for one θ (NaN if the solve failed)."""
    y0 = jnp.log(jnp.array(LV_INITIAL, jnp.float32))
    ys = _solve(_lv_field, y0, LV_TIMES, theta)
    return jnp.exp(jnp.minimum(ys.T.reshape(20), _LOG_MAX))


def _lv_loc(theta):
    return jnp.log(jnp.clip(lotka_volterra_path(theta), 1e-10, 1e4))


def _lv_simulator(key, theta):
    return jnp.exp(_lv_loc(theta) + LV_NOISE * jax.random.normal(key, (20,)))


def _lv_loglik(theta, x):
    log_x = jnp.log(x)
    z = (log_x - _lv_loc(theta)) / LV_NOISE
    lp = jnp.sum(-0.5 * z**2 - log_x) - 20 * (math.log(LV_NOISE) + 0.5 * math.log(2 * math.pi))
    return jnp.where(jnp.isnan(lp), -jnp.inf, lp)


def lotka_volterra() -> Task:
    """The deterministic Lotka–Volterra task of sbibm: 4 parameters, 20 log-normal observations.

    (lfi's stochastic ``lotka_volterra_gillespie`` is a different model.)

    >>> from lfi.tasks import get
    >>> task = get("lotka_volterra")
    >>> task.dim_theta, task.dim_x
    (4, 20)
    """
    prior = LogNormal(loc=[-0.125, -3.0, -0.125, -3.0], scale=0.5, dim=4)
    data = load_data("lotka_volterra")
    return Task(
        "lotka_volterra",
        prior=prior,
        simulator=_lv_simulator,
        dim_x=20,
        observations=data["observations"],
        true_parameters=data["true_parameters"],
        reference=smc_sample(prior, _lv_loglik, steps=10, final_steps=50),
        log_likelihood=_lv_loglik,
        description=(
            "Lotka-Volterra (sbibm): X, Y at t = 0, 2.1, ..., 18.9, log-normal noise 0.1. ODE by "
            "diffrax Tsit5 (rtol 1e-6). Reference: tempered SMC on the exact likelihood."
        ),
        source=data["source"],
        extras={"populations": lotka_volterra_path, "times": LV_TIMES},
    )
