"""sbibm 1.1.0's Bernoulli GLM tasks, ``bernoulli_glm`` and ``bernoulli_glm_raw``, in JAX.

A neuron's spikes y_t ∈ {0, 1}, t = 1..100, follow a logistic GLM driven by a white-noise
stimulus: y_t ~ Bernoulli(σ(ψ_t)), ψ = Vθ, where V is the 100 × 10 design matrix with a column
of ones (the offset θ₀) and 9 lagged copies of the stimulus, V[t, j+1] = I[t − j] (t ≥ j, else
0). The stimulus is I = ``numpy.random.RandomState(42).randn(100)`` in float32, as in sbibm's
``_setup``; the stored observations confirm it (their summaries equal Vᵀy to 1e−5).

The prior is sbibm's Gaussian smoothness prior: θ ~ N(0, B⁻¹) with B₀₀ = 0.5 and, for the
filter, B = FᵀF, F = D² + diag(√(i/9)), i = 0..8, D the first-difference matrix.

``bernoulli_glm`` observes the 10 summary statistics of sbibm: the spike count and the
spike-triggered sums of the stimulus at lags 0..8 (sbibm's ``conv1d(y, I, padding=8)[-9:]``),
which together are exactly s = Vᵀy. ``bernoulli_glm_raw`` observes y itself. The likelihood is
p(y | θ) = exp(θᵀVᵀy − Σ_t log(1 + e^{ψ_t})), so s is sufficient and both tasks have the same
posterior. For the summary task, ``log_likelihood(θ, s)`` is θᵀs − Σ log(1 + e^{ψ_t}), which is
log p(s | θ) exactly when a single y maps to s — true for a generic real stimulus such as this
one, since distinct spike trains give distinct sums (the count 2^100 of trains against 10 real
sums). Reference posteriors: NUTS (:func:`lfi.samplers.mcmc`) on this log-concave posterior
(sbibm: Pólya–gamma Gibbs sampling). See Lueckmann et al. (2021), "Benchmarking Simulation-Based
Inference", arXiv:2101.04653.

>>> from lfi.tasks import get
>>> task = get("bernoulli_glm")
>>> y = get("bernoulli_glm_raw").observation(1)
>>> bool(np.allclose(task.extras["summary"](y), task.observation(1), atol=1e-4))
True
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lfi.priors import MultivariateNormal
from lfi.samplers import mcmc
from lfi.tasks.base import Task, load_data

__all__ = ["bernoulli_glm", "bernoulli_glm_raw", "design_matrix", "prior_precision"]

DIM, T = 10, 100


def design_matrix() -> np.ndarray:
    """sbibm's design matrix V (100, 10): ones, then the stimulus at lags 0..8 (float32)."""
    stimulus = np.random.RandomState(42).randn(T).astype(np.float32)
    v = np.zeros((T, DIM), np.float32)
    v[:, 0] = 1.0
    for j in range(DIM - 1):
        v[j:, j + 1] = stimulus[: T - j]
    return v


def prior_precision() -> np.ndarray:
    """sbibm's prior precision matrix B (10, 10), float64."""
    m = DIM - 1
    d = np.eye(m) - np.eye(m, k=-1)
    f = d @ d + np.diag(np.sqrt(np.arange(m) / m))
    b = np.zeros((DIM, DIM))
    b[0, 0] = 0.5
    b[1:, 1:] = f.T @ f
    return b


_V = jnp.asarray(design_matrix())


def _summary(y: jax.Array) -> jax.Array:
    """(…, 100) spike trains → (…, 10): spike count and spike-triggered stimulus sums = Vᵀy."""
    return jnp.asarray(y, jnp.float32) @ _V


def _spikes(key, theta):
    p = jax.nn.sigmoid(_V @ theta)
    return (jax.random.uniform(key, (T,)) < p).astype(jnp.float32)


def _loglik_summary(theta, s):
    return jnp.dot(theta, s) - jnp.sum(jax.nn.softplus(_V @ theta))


def _loglik_raw(theta, y):
    return _loglik_summary(theta, _summary(y))


def _log_posterior(params, theta):
    z = theta @ params["chol"]  # params["chol"]: B = LLᵀ, so θᵀBθ = |θL|²
    return _loglik_summary(theta, params["s"]) - 0.5 * jnp.sum(z**2)


def nuts_reference(s: np.ndarray, n: int, key: jax.Array, num_warmup: int = 400) -> np.ndarray:
    """``n`` NUTS draws of p(θ | s) for the summary s = Vᵀy.

    At least 4000 draws in 8 to 20 chains of ≥ 500 (so that R-hat is meaningful; the first
    ``n`` are returned), chains started from the prior; every run is checked (R-hat ≤ 1.01,
    ESS ≥ 400, no divergences), with a warning otherwise.
    """
    total = max(n, 4000)
    chains = min(20, total // 500)
    k1, k2 = jax.random.split(key)
    init = _prior().sample(chains, k1)
    params = {
        "s": jnp.asarray(s, jnp.float32),
        "chol": jnp.asarray(np.linalg.cholesky(prior_precision()), jnp.float32),
    }
    result = mcmc(_log_posterior, params, init, total, seed=k2, num_warmup=num_warmup)
    result.check(warn=True)
    nuts_reference.last = result  # the diagnostics of the latest run
    return result.flat[:n]


def _prior() -> MultivariateNormal:
    return MultivariateNormal(np.zeros(DIM), np.linalg.inv(prior_precision()))


def _task(name: str, raw: bool) -> Task:
    data = load_data(name)
    prior = _prior()
    if raw:
        simulator, loglik, dim_x = _spikes, _loglik_raw, T

        def reference(x, n, key):
            return nuts_reference(np.asarray(_summary(x)), n, key)

    else:

        def simulator(key, theta):
            return _summary(_spikes(key, theta))

        loglik, dim_x, reference = _loglik_summary, DIM, nuts_reference
    what = "the 100 raw spikes" if raw else "10 summaries (spike count, spike-triggered sums)"
    return Task(
        name,
        prior=prior,
        simulator=simulator,
        dim_x=dim_x,
        observations=data["observations"],
        true_parameters=data["true_parameters"],
        reference=reference,
        log_likelihood=loglik,
        description=(
            f"Bernoulli GLM (sbibm), x = {what}; Gaussian smoothness prior. Reference: NUTS "
            "(8-20 chains, dense metric) on the exact logistic likelihood."
        ),
        source=data["source"],
        extras={"design_matrix": design_matrix(), "summary": _summary},
    )


def bernoulli_glm() -> Task:
    """sbibm's ``bernoulli_glm``: 10 parameters, x = the 10 sufficient summary statistics.

    >>> from lfi.tasks import get
    >>> get("bernoulli_glm").reference_posterior(1, n=1000).shape
    (1000, 10)
    """
    return _task("bernoulli_glm", raw=False)


def bernoulli_glm_raw() -> Task:
    """sbibm's ``bernoulli_glm_raw``: 10 parameters, x = the 100 binary spikes.

    >>> from lfi.tasks import get
    >>> get("bernoulli_glm_raw").observation(1)[:5].tolist()
    [1.0, 1.0, 0.0, 1.0, 1.0]
    """
    return _task("bernoulli_glm_raw", raw=True)
