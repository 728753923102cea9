"""A posterior given by weighted particles (ABC), smoothed by a kernel density estimate.

``sample`` resamples the particles by weight and, by default, adds Gaussian kernel noise in the
prior's *unconstrained* space (bandwidth: Scott's rule with the weights' effective sample size,
times the particles' weighted covariance), so draws never leave the prior's support and do not
repeat the particles. ``log_prob`` is that kernel density estimate mapped back to θ. The
posterior belongs to the one observation it was built for (``x_o``).

>>> import numpy as np, lfi
>>> prior = lfi.BoxUniform([0.0], [1.0])
>>> post = ParticlePosterior(prior, np.full((50, 1), 0.5), x_o=[0.0], info={"method": "demo"})
>>> draws = np.asarray(post.sample(1000, seed=0))
>>> bool(np.all((draws > 0) & (draws < 1))), post.num_particles
(True, 50)
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from lfi._rng import Seed, as_key
from lfi.posteriors.base import ArvizMixin, check_same_x, check_theta
from lfi.posteriors.io import read_archive, write_archive
from lfi.priors import Prior, prior_from_config

__all__ = ["ParticlePosterior"]


def weighted_cov(u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The covariance of rows ``u`` (n, d) under normalised weights ``w`` (n,)."""
    mean = w @ u
    return (w[:, None] * (u - mean)).T @ (u - mean)


def _cv_bandwidth(u: np.ndarray, w: np.ndarray, chol: np.ndarray, max_points: int = 2000):
    """The bandwidth (in units of the particles' covariance) maximising the weighted
    leave-one-out log-likelihood of the kernel density estimate, over a log grid 0.02–2."""
    z = np.linalg.solve(chol, (u - w @ u).T).T
    if len(z) > max_points:
        pick = np.random.default_rng(0).choice(len(z), max_points, replace=False)
        z, w = z[pick], w[pick] / w[pick].sum()
    d2 = np.sum(z**2, 1)[:, None] + np.sum(z**2, 1)[None] - 2 * z @ z.T
    other = d2 > 1e-12  # leave out the point itself (and exact duplicates of it)
    d = z.shape[1]
    best, best_h = -np.inf, 1.0
    for h in np.geomspace(0.02, 2.0, 30):
        k = np.where(other, np.exp(-0.5 * np.maximum(d2, 0) / h**2), 0.0) * w[None]
        norm = (other * w[None]).sum(1)
        ok = (norm > 0) & (k.sum(1) > 0)
        if not ok.any():
            continue
        f = np.log(k.sum(1)[ok] / norm[ok]) - d * np.log(h)
        score = float(np.sum(w[ok] * f) / w[ok].sum()) if ok.all() else -np.inf
        if score > best:
            best, best_h = score, float(h)
    return best_h


class ParticlePosterior(ArvizMixin):
    """Weighted particles θ_i (n, dθ) for one observation ``x_o``; see the module docstring.

    ``info`` records how they were obtained (method, simulations spent, ε…), JSON-able.
    ``kde``: False for plain weighted resampling of the particles; True or "scott" for Scott's
    bandwidth; "cv" for the bandwidth of best leave-one-out likelihood; or a number (the
    bandwidth in units of the particles' covariance). ``.bandwidth`` holds the one used.
    """

    normalized = True

    def __init__(
        self,
        prior: Prior,
        particles: Any,
        weights: Any = None,
        *,
        x_o: Any,
        info: dict | None = None,
        kde: bool | str | float = True,
    ):
        theta = np.asarray(particles, np.float32)
        if theta.ndim != 2 or theta.shape[1] != prior.dim or theta.shape[0] == 0:
            raise ValueError(f"particles: expected shape (n >= 1, {prior.dim}), got {theta.shape}")
        w = np.ones(len(theta)) if weights is None else np.asarray(weights, np.float64)
        if w.shape != (len(theta),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights: expected {len(theta)} finite non-negative weights")
        self.prior, self.particles, self.weights = prior, theta, w / w.sum()
        self.x_o = np.asarray(x_o, np.float32)
        if not (isinstance(kde, bool) or kde in ("scott", "cv") or float(kde) > 0):
            raise ValueError(f"kde: expected a bool, 'scott', 'cv' or a bandwidth > 0, got {kde!r}")
        self.info, self.kde = dict(info or {}), kde
        u = np.asarray(prior.to_unconstrained(theta), np.float64)
        self._u = u
        self.ess = float(1.0 / np.sum(self.weights**2))
        cov = weighted_cov(u, self.weights)
        d = prior.dim
        cov = cov + 1e-8 * np.eye(d) * max(1.0, float(np.trace(cov)) / d)
        if kde == "cv":
            h = _cv_bandwidth(u, self.weights, np.linalg.cholesky(cov))
        elif isinstance(kde, bool) or kde == "scott":
            h = self.ess ** (-1.0 / (d + 4))  # Scott's rule
        else:
            h = float(kde)
        self.bandwidth = float(h)
        self._chol = np.linalg.cholesky(h**2 * cov).astype(np.float32)

    def __repr__(self) -> str:
        return (
            f"ParticlePosterior({self.info.get('method', '?')}, {self.num_particles} particles, "
            f"ESS {self.ess:.0f})"
        )

    @property
    def num_particles(self) -> int:
        return len(self.particles)

    @property
    def dim_theta(self) -> int:
        return self.prior.dim

    def _check_x(self, x: Any) -> None:
        check_same_x(x, self.x_o)

    def sample(self, n: int, x: Any = None, seed: Seed = 0) -> jax.Array:
        """``n`` draws (n, dθ): weighted resampling, then kernel noise (``kde=True``)."""
        self._check_x(x)
        k_pick, k_noise = jax.random.split(as_key(seed))
        idx = jax.random.choice(k_pick, self.num_particles, (int(n),), p=jnp.asarray(self.weights))
        u = jnp.asarray(self._u, jnp.float32)[idx]
        if self.kde is not False:
            z = jax.random.normal(k_noise, u.shape)
            u = u + z @ jnp.asarray(self._chol).T
            return self.prior.from_unconstrained(u)
        return jnp.asarray(self.particles)[idx]

    def log_prob(self, theta: Any, x: Any = None) -> jax.Array:
        """The kernel density estimate at θ (normalised; −inf outside the prior's support).
        With ``kde=False`` the draws are the particles themselves, and this smoothed density is
        not their law (a density of the particles alone does not exist)."""
        self._check_x(x)
        theta = check_theta(theta, self.dim_theta)
        flat = theta.reshape(-1, self.dim_theta)
        u = self.prior.to_unconstrained(flat)
        inv = jnp.asarray(np.linalg.inv(self._chol.astype(np.float64)), jnp.float32)
        z = (u[:, None, :] - jnp.asarray(self._u, jnp.float32)[None]) @ inv.T  # (m, n, d)
        d = self.dim_theta
        log_norm = -0.5 * d * math.log(2 * math.pi) - float(np.sum(np.log(np.diag(self._chol))))
        log_k = -0.5 * jnp.sum(z**2, axis=-1) + log_norm
        log_u = logsumexp(log_k + jnp.log(jnp.asarray(self.weights, jnp.float32)), axis=1)
        lp = log_u - self.prior.log_det_from_unconstrained(u)
        return jnp.where(self.prior.in_support(flat), lp, -jnp.inf).reshape(theta.shape[:-1])

    def map(self, x: Any = None, seed: Seed = 0) -> jax.Array:
        """The particle of highest estimated density."""
        return jnp.asarray(self.particles[int(jnp.argmax(self.log_prob(self.particles, x)))])

    def save(self, path: str) -> None:
        config = {
            "class": "ParticlePosterior",
            "prior": self.prior.to_config(),
            "x_o": self.x_o.tolist(),
            "info": self.info,
            "kde": self.kde,
        }
        write_archive(path, config, {"particles": self.particles, "weights": self.weights})

    @classmethod
    def load(cls, path: str) -> ParticlePosterior:
        config, arrays = read_archive(path, expect="ParticlePosterior")
        prior = prior_from_config(config["prior"])
        return cls(
            prior,
            arrays["particles"],
            arrays["weights"],
            x_o=config["x_o"],
            info=config["info"],
            kde=config["kde"],
        )
