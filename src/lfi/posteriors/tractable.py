"""The posterior of a model whose likelihood you can write: prior × exp(log_likelihood).

"Standard statistics when you know the model": give ``log_likelihood(theta, x) -> scalar`` for
one θ (dθ,) and one x (dx,), written in JAX, and sample the posterior with NUTS (gradients by
autodiff; default), HMC, slice, random-walk or independence Metropolis–Hastings, with the same
interface and diagnostics as the learned NLE/NRE posteriors (several i.i.d. trials of x add
their log-likelihoods). The reference against which simulation-based methods are judged.

>>> import jax.numpy as jnp, numpy as np, lfi
>>> prior = lfi.Normal(0.0, 1.0)
>>> loglik = lambda theta, x: -0.5 * jnp.sum((x - theta) ** 2) / 0.5**2
>>> post = LikelihoodPosterior(prior, loglik, dim_x=1)
>>> draws = np.asarray(post.sample(4000, x=[1.0], seed=0, num_chains=4))
>>> round(float(draws.mean()), 1)  # N(0,1) prior, x ~ N(θ, 0.5²): mean 0.8, sd 0.45
0.8
>>> bool(post.diagnostics.rhat.max() < 1.01)
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from lfi.posteriors.direct import Standardizer
from lfi.posteriors.unnormalized import UnnormalizedPosterior, _box, _check_sampler
from lfi.priors import Prior

__all__ = ["LikelihoodPosterior"]


class _KnownLikelihood(eqx.Module):
    """f(u, x) = log_likelihood(T(u), x): the unconstrained θ mapped back through the prior."""

    prior: Any = eqx.field(static=True)
    log_likelihood: Callable = eqx.field(static=True)

    def __call__(self, u: jax.Array, x: jax.Array) -> jax.Array:
        value = self.log_likelihood(self.prior.from_unconstrained(u), x)
        return jnp.reshape(jnp.asarray(value, jnp.float32), ())


class LikelihoodPosterior(UnnormalizedPosterior):
    """prior × exp(Σ_i log_likelihood(θ, x_i)), known up to a constant; see the module doc.

    ``dim_x``: the length of one observation. Sampler and options as
    :meth:`lfi.UnnormalizedPosterior.sample` (default here: "nuts"). Cannot be saved: the
    likelihood is code (save its draws instead).
    """

    def __init__(
        self,
        prior: Prior,
        log_likelihood: Callable,
        *,
        dim_x: int,
        sampler: str = "nuts",
        **sampler_options: Any,
    ):
        if not callable(log_likelihood):
            raise TypeError(f"log_likelihood: expected a function, got {type(log_likelihood)}")
        self.prior, self.dim_x = prior, int(dim_x)
        self.kind, self.method = "likelihood", "tractable"
        self.net_config, self.history, self._trained = {}, None, None
        self._term = _KnownLikelihood(prior, log_likelihood)
        zt, zx = jnp.zeros(prior.dim), jnp.zeros(self.dim_x)
        self._stand = Standardizer(zt, jnp.ones(prior.dim), zx, jnp.ones(self.dim_x))
        self.sampler = _check_sampler(sampler)
        self.sampler_options = dict(sampler_options)
        self.default_x = None
        self.diagnostics = None
        self.theta_box = _box(None, prior.dim)  # a known likelihood: nothing to clamp
        theta0 = prior.from_unconstrained(jnp.zeros(prior.dim))
        shape = jax.eval_shape(log_likelihood, theta0, jnp.zeros(self.dim_x)).shape
        if shape not in ((), (1,)):
            raise ValueError(
                f"log_likelihood: expected a scalar for one θ ({prior.dim},) and one x "
                f"({self.dim_x},), got shape {shape}"
            )

    def __repr__(self) -> str:
        return f"LikelihoodPosterior(prior={self.prior!r})"

    def save(self, path: str) -> None:
        raise TypeError(
            "LikelihoodPosterior: cannot be saved, its likelihood is a Python function; "
            "save posterior draws (np.save) or the model's parameters instead"
        )
