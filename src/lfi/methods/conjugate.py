"""Closed-form conjugate posteriors: exact references to check simulation-based inference against.

Each model holds the hyperparameters of a prior on θ. ``update(x)`` returns the same model with
the posterior hyperparameters after i.i.d. observations ``x`` (a 1-d array), ``distribution()``
the scipy frozen distribution of θ, ``predictive()`` that of one new observation, and
``posterior(x)`` a :class:`ConjugatePosterior` with lfi's posterior interface (``sample``,
``log_prob``, ``map``; normalised). With n observations and s = Σ x_i:

- :class:`BetaBernoulli` ``(alpha, beta)``: x_i ∈ {0, 1} ~ Bernoulli(θ); α + s, β + n − s.
- :class:`BetaBinomial` ``(alpha, beta, trials)``: x_i ∈ {0..m} ~ Binomial(m, θ);
  α + s, β + nm − s. Predictive: beta-binomial.
- :class:`BetaNegativeBinomial` ``(alpha, beta, failures)``: x_i = number of successes before the
  r-th failure, θ = success probability, p(x | θ) = C(x + r − 1, x) θ^x (1 − θ)^r;
  α + s, β + nr. In scipy's terms (which counts failures before n successes of probability p)
  this is ``nbinom(r, 1 − θ)``, and the predictive is ``betanbinom(r, β, α)``.
- :class:`GammaPoisson` ``(shape, rate=None | scale=None)``: x_i ~ Poisson(θ);
  shape + s, rate + n (scale / (1 + n·scale)), reported in the parameterisation given.
  Predictive: negative binomial ``nbinom(shape, rate / (rate + 1))``.
- :class:`DirichletCategorical` ``(concentration)``: x_i ∈ {0..K−1} are category *indices*
  (not counts) with P(x_i = k) = θ_k; α_k + #{i: x_i = k}. θ has dimension K.
- :class:`NormalNormal` ``(mean, std, noise_std)``: x_i ~ Normal(θ, noise_std²), prior
  Normal(mean, std²); precisions add, means are precision-weighted.

References: Fink (1997), *A compendium of conjugate priors*; Gelman et al. (2013), *Bayesian
Data Analysis*, 3rd ed., chapters 2–3.

>>> post = BetaBernoulli(alpha=1.0, beta=1.0).posterior([1, 0, 1, 1])
>>> post.model
BetaBernoulli(alpha=4.0, beta=2.0)
>>> float(post.mean()[0]), float(post.map()[0]), post.sample(1000, seed=0).shape
(0.6666666666666666, 0.75, (1000, 1))
>>> round(float(post.predictive().pmf(1)), 4)
0.6667
>>> GammaPoisson(2.0, scale=0.5).update([3, 1])
GammaPoisson(shape=6.0, scale=0.25)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats
from scipy.special import gammaln, xlogy

from lfi.posteriors.base import ArvizMixin
from lfi.posteriors.io import read_archive, write_archive


def _scalar(value: Any, name: str, positive: bool = True) -> float:
    arr = np.asarray(value)
    kind = "a positive finite number" if positive else "a finite number"
    if arr.shape != () or not np.issubdtype(arr.dtype, np.number) or arr.dtype.kind == "c":
        raise ValueError(f"{name}: expected {kind}, got {value!r}")
    v = float(arr)
    if not np.isfinite(v) or (positive and v <= 0):
        raise ValueError(f"{name}: expected {kind}, got {v!r}")
    return v


def _positive_int(value: Any, name: str) -> int:
    v = _scalar(value, name)
    if v != int(v):
        raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    return int(v)


class _Conjugate:
    """Shared machinery: x checks, repr, posterior, likelihood.

    Subclasses give ``_update(x)``, ``_likelihood(theta)`` (scipy distribution of x_i | θ),
    ``distribution()``, ``predictive()``, ``_mode()`` and, for bounded x, ``_high()``.
    """

    _params: tuple[str, ...] = ()
    _integer = True  # observations are counts/indices (non-negative integers)
    dim = 1

    def __repr__(self) -> str:
        def show(v: Any) -> str:
            return repr(v.tolist() if isinstance(v, np.ndarray) else v)

        args = ", ".join(f"{k}={show(getattr(self, k))}" for k in self._params)
        return f"{type(self).__name__}({args})"

    def _high(self) -> float:
        return np.inf

    def _check_x(self, x: Any) -> np.ndarray:
        try:
            arr = np.asarray(x, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"x: expected a 1-d array of numbers, got {x!r}") from None
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1:
            raise ValueError(f"x: expected a 1-d array of i.i.d. observations, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("x: the observations contain NaN or inf")
        if self._integer:
            high = self._high()
            bad = (arr != np.floor(arr)) | (arr < 0) | (arr > high)
            if np.any(bad):
                what = "non-negative integers" if high == np.inf else f"integers in 0..{high:.0f}"
                raise ValueError(f"x: expected {what}, got {arr[bad][0]!r}")
        return arr

    def update(self, x: Any) -> _Conjugate:
        """The same model with the posterior hyperparameters after observing ``x``."""
        return self._update(self._check_x(x))

    def posterior(self, x: Any) -> ConjugatePosterior:
        """The exact posterior p(θ | x) with lfi's posterior interface."""
        return ConjugatePosterior(self, x)

    def log_likelihood(self, theta: Any, x: Any) -> np.ndarray:
        """Σ_i log p(x_i | θ), normalised in x; θ of shape (...,) (or (..., K)) → (...)."""
        x = self._check_x(x)
        theta = np.asarray(theta, dtype=float)
        dist = self._likelihood(theta)
        logp = dist.logpmf if self._integer else dist.logpdf
        return np.sum(logp(x.reshape((-1,) + (1,) * theta.ndim)), axis=0)

    def _log_density(self, theta: np.ndarray) -> np.ndarray:
        return self.distribution().logpdf(theta[..., 0])


class _BetaPrior(_Conjugate):
    """Beta(alpha, beta) prior on a probability θ."""

    def __init__(self, alpha: float, beta: float) -> None:
        self.alpha = _scalar(alpha, "alpha")
        self.beta = _scalar(beta, "beta")

    def distribution(self) -> Any:
        return stats.beta(self.alpha, self.beta)

    def _mode(self) -> np.ndarray:
        a, b = self.alpha, self.beta
        if a > 1 and b > 1:
            return np.array([(a - 1) / (a + b - 2)])
        if a <= 1 < b or (a < 1 and b == 1):
            return np.array([0.0])
        if b <= 1 < a or (b < 1 and a == 1):
            return np.array([1.0])
        raise ValueError(f"map: Beta({a}, {b}) has no unique mode")


class BetaBernoulli(_BetaPrior):
    """Beta prior on θ = P(x = 1) for Bernoulli observations x ∈ {0, 1}."""

    _params = ("alpha", "beta")

    def _high(self) -> float:
        return 1.0

    def _update(self, x: np.ndarray) -> BetaBernoulli:
        s = x.sum()
        return BetaBernoulli(self.alpha + s, self.beta + x.size - s)

    def _likelihood(self, theta: np.ndarray) -> Any:
        return stats.bernoulli(theta)

    def predictive(self) -> Any:
        return stats.bernoulli(self.alpha / (self.alpha + self.beta))


class BetaBinomial(_BetaPrior):
    """Beta prior on the success probability θ of Binomial(trials, θ) observations."""

    _params = ("alpha", "beta", "trials")

    def __init__(self, alpha: float, beta: float, trials: int) -> None:
        super().__init__(alpha, beta)
        self.trials = _positive_int(trials, "trials")

    def _high(self) -> float:
        return float(self.trials)

    def _update(self, x: np.ndarray) -> BetaBinomial:
        s = x.sum()
        return BetaBinomial(self.alpha + s, self.beta + x.size * self.trials - s, self.trials)

    def _likelihood(self, theta: np.ndarray) -> Any:
        return stats.binom(self.trials, theta)

    def predictive(self) -> Any:
        return stats.betabinom(self.trials, self.alpha, self.beta)


class BetaNegativeBinomial(_BetaPrior):
    """Beta prior on the success probability θ; x = successes before the ``failures``-th failure.

    p(x | θ) = C(x + r − 1, x) θ^x (1 − θ)^r, i.e. scipy's ``nbinom(r, 1 − θ)``. ``failures``
    may be any positive real (the update is the same), though it counts failures when integer.
    """

    _params = ("alpha", "beta", "failures")

    def __init__(self, alpha: float, beta: float, failures: float) -> None:
        super().__init__(alpha, beta)
        self.failures = _scalar(failures, "failures")

    def _update(self, x: np.ndarray) -> BetaNegativeBinomial:
        return BetaNegativeBinomial(
            self.alpha + x.sum(), self.beta + x.size * self.failures, self.failures
        )

    def _likelihood(self, theta: np.ndarray) -> Any:
        return stats.nbinom(self.failures, 1 - theta)

    def predictive(self) -> Any:
        return stats.betanbinom(self.failures, self.beta, self.alpha)


class GammaPoisson(_Conjugate):
    """Gamma prior on a Poisson rate θ; give exactly one of ``rate`` or ``scale`` (= 1 / rate).

    Both parameterisations give the same posterior; ``update`` reports it in the one given, and
    both ``rate`` and ``scale`` are always available as attributes.
    """

    def __init__(self, shape: float, rate: float | None = None, scale: float | None = None) -> None:
        if (rate is None) == (scale is None):
            raise ValueError("rate, scale: give exactly one of rate or scale")
        self.shape = _scalar(shape, "shape")
        if rate is not None:
            self.rate = _scalar(rate, "rate")
            self.scale = 1.0 / self.rate
            self._params = ("shape", "rate")
        else:
            self.scale = _scalar(scale, "scale")
            self.rate = 1.0 / self.scale
            self._params = ("shape", "scale")

    def _update(self, x: np.ndarray) -> GammaPoisson:
        shape, n = self.shape + x.sum(), x.size
        if self._params[1] == "rate":
            return GammaPoisson(shape, rate=self.rate + n)
        return GammaPoisson(shape, scale=self.scale / (1 + n * self.scale))

    def _likelihood(self, theta: np.ndarray) -> Any:
        return stats.poisson(theta)

    def distribution(self) -> Any:
        return stats.gamma(self.shape, scale=self.scale)

    def predictive(self) -> Any:
        return stats.nbinom(self.shape, self.rate / (self.rate + 1))

    def _mode(self) -> np.ndarray:
        return np.array([max(self.shape - 1, 0.0) / self.rate])


class DirichletCategorical(_Conjugate):
    """Dirichlet prior on the K probabilities θ of categorical observations x ∈ {0..K−1}.

    x holds category indices (one per observation), not counts. ``log_prob`` is the density with
    respect to the first K − 1 coordinates (scipy's convention); θ off the simplex gives −inf.
    """

    _params = ("concentration",)

    def __init__(self, concentration: Any) -> None:
        arr = np.asarray(concentration, dtype=float)
        if arr.ndim != 1 or arr.size < 2 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(
                "concentration: expected a 1-d array of K ≥ 2 positive finite numbers, "
                f"got {concentration!r}"
            )
        self.concentration = arr
        self.dim = arr.size

    def _high(self) -> float:
        return float(self.dim - 1)

    def counts(self, x: Any) -> np.ndarray:
        """How often each category occurs in ``x``: shape (K,)."""
        return np.bincount(self._check_x(x).astype(int), minlength=self.dim)

    def _update(self, x: np.ndarray) -> DirichletCategorical:
        return DirichletCategorical(self.concentration + self.counts(x))

    def log_likelihood(self, theta: Any, x: Any) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        if theta.ndim == 0 or theta.shape[-1] != self.dim:
            raise ValueError(f"theta: expected shape (..., {self.dim}), got {theta.shape}")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sum(xlogy(self.counts(x), theta), axis=-1)

    def distribution(self) -> Any:
        return stats.dirichlet(self.concentration)

    def predictive(self) -> Any:
        p = self.concentration / self.concentration.sum()
        return stats.rv_discrete(values=(np.arange(self.dim), p))

    def _log_density(self, theta: np.ndarray) -> np.ndarray:
        a = self.concentration
        inside = np.all(theta >= 0, axis=-1) & (np.abs(theta.sum(-1) - 1) <= 1e-6)
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = np.sum(xlogy(a - 1, theta), axis=-1) + gammaln(a.sum()) - gammaln(a).sum()
        return np.where(inside, lp, -np.inf)

    def _mode(self) -> np.ndarray:
        a = self.concentration
        if np.any(a <= 1):
            raise ValueError("map: the Dirichlet mode is on the boundary unless every α_k > 1")
        return (a - 1) / (a.sum() - a.size)


class NormalNormal(_Conjugate):
    """Normal(mean, std²) prior on the mean θ of Normal(θ, noise_std²) observations."""

    _params = ("mean", "std", "noise_std")
    _integer = False

    def __init__(self, mean: float, std: float, noise_std: float) -> None:
        self.mean = _scalar(mean, "mean", positive=False)
        self.std = _scalar(std, "std")
        self.noise_std = _scalar(noise_std, "noise_std")

    def _update(self, x: np.ndarray) -> NormalNormal:
        prec = self.std**-2 + x.size * self.noise_std**-2
        mean = (self.mean * self.std**-2 + x.sum() * self.noise_std**-2) / prec
        return NormalNormal(mean, prec**-0.5, self.noise_std)

    def _likelihood(self, theta: np.ndarray) -> Any:
        return stats.norm(theta, self.noise_std)

    def distribution(self) -> Any:
        return stats.norm(self.mean, self.std)

    def predictive(self) -> Any:
        return stats.norm(self.mean, np.hypot(self.std, self.noise_std))

    def _mode(self) -> np.ndarray:
        return np.array([self.mean])


class ConjugatePosterior(ArvizMixin):
    """The exact posterior of a conjugate model for one observation set (lfi's interface).

    ``prior`` is the model before the data, ``model`` the updated one (posterior
    hyperparameters), ``x`` the data. ``sample`` and ``log_prob`` take ``x=None`` only: to
    condition on other data build another with ``prior.posterior(x)``.
    """

    normalized = True

    def __init__(self, prior: _Conjugate, x: Any) -> None:
        self.prior = prior
        self.x = prior._check_x(x)
        self.model = prior._update(self.x)
        self.dim = prior.dim

    def __repr__(self) -> str:
        return (
            f"ConjugatePosterior(prior={self.prior!r}, n_obs={self.x.size}, model={self.model!r})"
        )

    @staticmethod
    def _no_x(x: Any) -> None:
        if x is not None:
            raise ValueError(
                "x: a ConjugatePosterior is fixed to the data it was built with; pass x=None "
                "(use prior.posterior(x) for other data)"
            )

    def sample(self, n: int, x: Any = None, seed: int = 0) -> np.ndarray:
        """n exact posterior draws, shape (n, dθ), from ``numpy.random.default_rng(seed)``."""
        self._no_x(x)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n: expected a non-negative integer, got {n!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
        rng = np.random.default_rng(int(seed))
        draws = self.model.distribution().rvs(size=int(n), random_state=rng)
        return np.asarray(draws, dtype=float).reshape(int(n), self.dim)

    def log_prob(self, theta: Any, x: Any = None) -> np.ndarray:
        """Normalised log p(θ | x) for θ of shape (n, dθ) or (dθ,) (or a scalar if dθ = 1)."""
        self._no_x(x)
        arr = np.asarray(theta, dtype=float)
        if arr.ndim == 0 and self.dim == 1:
            return self.model._log_density(arr.reshape(1))
        if arr.ndim == 0 or arr.shape[-1] != self.dim:
            raise ValueError(
                f"theta: expected shape (n, {self.dim}) or ({self.dim},), got {arr.shape}"
            )
        return self.model._log_density(arr)

    def map(self, x: Any = None, seed: int = 0) -> np.ndarray:
        """The posterior mode, shape (dθ,); ``seed`` is unused (the mode is exact)."""
        self._no_x(x)
        return self.model._mode()

    def mean(self) -> np.ndarray:
        """Posterior mean, shape (dθ,)."""
        return np.atleast_1d(np.asarray(self.model.distribution().mean(), dtype=float))

    def var(self) -> np.ndarray:
        """Posterior marginal variances, shape (dθ,)."""
        return np.atleast_1d(np.asarray(self.model.distribution().var(), dtype=float))

    def cov(self) -> np.ndarray:
        """Posterior covariance, shape (dθ, dθ)."""
        if self.dim == 1:
            return self.var().reshape(1, 1)
        a = self.model.concentration
        m = a / a.sum()
        return (np.diag(m) - np.outer(m, m)) / (a.sum() + 1)

    def predictive(self) -> Any:
        """The posterior predictive distribution of one new observation (scipy-like)."""
        return self.model.predictive()

    def save(self, path: str) -> None:
        """Write the prior model's hyperparameters (JSON) and the data (an array); no pickle."""
        prior = self.prior
        if type(prior) not in _MODELS:  # a subclass would load as its base, or not at all
            raise TypeError(f"save: only lfi's own conjugate models, not {type(prior).__name__}")
        params = {k: np.asarray(getattr(prior, k)).tolist() for k in prior._params}
        config = {"class": "ConjugatePosterior", "model": {"kind": type(prior).__name__, **params}}
        write_archive(path, config, {"x": self.x})

    @classmethod
    def load(cls, path: str) -> ConjugatePosterior:
        """Rebuild a posterior written by :meth:`save` (the model's own checks rerun).

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "beta.lfi")
        >>> BetaBinomial(2.0, 3.0, trials=5).posterior([1, 4]).save(path)
        >>> ConjugatePosterior.load(path).model
        BetaBinomial(alpha=7.0, beta=8.0, trials=5)
        """
        config, arrays = read_archive(path, expect="ConjugatePosterior")
        if not isinstance(config.get("model"), dict):
            raise ValueError(f"path: {str(path)!r} holds no conjugate model")
        params = dict(config["model"])
        kind = params.pop("kind", None)
        models = {m.__name__: m for m in _MODELS}
        if kind not in models:
            raise ValueError(f"path: unknown conjugate model {kind!r}; known: {sorted(models)}")
        return models[kind](**params).posterior(arrays["x"])


_MODELS = (
    BetaBernoulli,
    BetaBinomial,
    BetaNegativeBinomial,
    GammaPoisson,
    DirichletCategorical,
    NormalNormal,
)
