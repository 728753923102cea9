"""Prior distributions over θ, with their support and a bijection to unconstrained space.

Every prior has the same small surface:

- ``dim``: the number of parameters;
- ``sample(n, seed=0)`` → array ``(n, dim)``;
- ``log_prob(theta)`` → array ``theta.shape[:-1]``; ``-inf`` outside the support, never NaN;
- ``in_support(theta)`` → boolean array ``theta.shape[:-1]``;
- ``to_unconstrained(theta)`` / ``from_unconstrained(u)`` and
  ``log_det_from_unconstrained(u)`` = log |dθ/du|, the bijection that estimators and samplers
  work through so that no mass can leak outside a bounded prior;
- ``to_config()`` → a JSON-able dict; :func:`prior_from_config` rebuilds it (no pickle).

>>> import lfi
>>> prior = lfi.BoxUniform(low=[0.0, 0.0], high=[2.0, 2.0])
>>> prior.sample(3, seed=0).shape
(3, 2)
>>> float(prior.log_prob([1.0, 1.0]))  # log(1/4)
-1.386...
>>> float(prior.log_prob([3.0, 1.0]))
-inf
"""

from __future__ import annotations

import json
import math
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from lfi._rng import Seed, as_key

__all__ = [
    "BoxUniform",
    "Independent",
    "LogNormal",
    "MultivariateNormal",
    "Normal",
    "Prior",
    "prior_from_config",
]


@runtime_checkable
class Prior(Protocol):
    """What lfi needs of a prior."""

    dim: int

    def sample(self, n: int, seed: Seed = 0) -> jax.Array: ...
    def log_prob(self, theta: Any) -> jax.Array: ...
    def in_support(self, theta: Any) -> jax.Array: ...
    def to_unconstrained(self, theta: Any) -> jax.Array: ...
    def from_unconstrained(self, u: Any) -> jax.Array: ...
    def log_det_from_unconstrained(self, u: Any) -> jax.Array: ...
    def to_config(self) -> dict: ...


def _vector(name: str, value: Any, dim: int | None = None) -> jax.Array:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 0:
        arr = arr.reshape(1) if dim is None else np.full((dim,), float(arr), np.float32)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a scalar or a 1-d array, got shape {arr.shape}")
    if dim is not None and arr.shape[0] != dim:
        raise ValueError(f"{name}: expected {dim} values, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, got {arr.tolist()}")
    return jnp.asarray(arr)


def _theta(prior: Any, theta: Any) -> jax.Array:
    theta = jnp.asarray(theta, dtype=jnp.float32)
    if theta.ndim == 0 or theta.shape[-1] != prior.dim:
        raise ValueError(
            f"theta: expected shape (..., {prior.dim}) for {type(prior).__name__}, "
            f"got {theta.shape}"
        )
    return theta


class _Base:
    """Shared helpers; subclasses define ``_log_prob_inside`` and the bijection."""

    dim: int

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.to_config().items() if k != "type")
        return f"{type(self).__name__}({args})"

    # Equal configs are equal priors. Priors are static arguments of jitted functions, so a
    # loaded or rebuilt prior reuses what was compiled for an equal one instead of recompiling.
    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_config() == other.to_config()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_config(), sort_keys=True))

    def log_prob(self, theta: Any) -> jax.Array:
        theta = _theta(self, theta)
        inside = self.in_support(theta)
        safe = jnp.where(inside[..., None], theta, self._inside_point())
        return jnp.where(inside, self._log_prob_inside(safe), -jnp.inf)

    def in_support(self, theta: Any) -> jax.Array:
        theta = _theta(self, theta)
        return jnp.all(jnp.isfinite(theta), axis=-1)

    def _inside_point(self) -> jax.Array:
        return self.from_unconstrained(jnp.zeros(self.dim))

    def to_unconstrained(self, theta: Any) -> jax.Array:
        return _theta(self, theta)

    def from_unconstrained(self, u: Any) -> jax.Array:
        return jnp.asarray(u, dtype=jnp.float32)

    def log_det_from_unconstrained(self, u: Any) -> jax.Array:
        return jnp.zeros(jnp.shape(u)[:-1])

    def numpy_sample(self, rng: np.random.Generator, n: int) -> np.ndarray | None:
        """``n`` draws (n, dim) from a numpy generator, or None where a prior has no such path.
        Samplers use it where a draw of JAX's threefry would cost seconds of compilation."""
        return None


class BoxUniform(_Base):
    """Uniform on the box [low, high]; unconstrained through a scaled logistic map.

    >>> BoxUniform(low=-1.0, high=1.0, dim=3).dim
    3
    """

    def __init__(self, low: Any, high: Any, dim: int | None = None):
        low_np, high_np = np.asarray(low, np.float32), np.asarray(high, np.float32)
        if dim is None:
            dim = max(low_np.size, high_np.size)
        self.low = _vector("low", low, dim)
        self.high = _vector("high", high, dim)
        if not bool(jnp.all(self.high > self.low)):
            raise ValueError(f"high: expected high > low elementwise, got low={low}, high={high}")
        self.dim = int(dim)

    def sample(self, n: int, seed: Seed = 0) -> jax.Array:
        u = jax.random.uniform(as_key(seed), (int(n), self.dim))
        return self.low + (self.high - self.low) * u

    def numpy_sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        low, high = np.asarray(self.low), np.asarray(self.high)
        return (low + (high - low) * rng.random((int(n), self.dim))).astype(np.float32)

    def in_support(self, theta: Any) -> jax.Array:
        theta = _theta(self, theta)
        return jnp.all((theta >= self.low) & (theta <= self.high), axis=-1)

    def _log_prob_inside(self, theta: jax.Array) -> jax.Array:
        value = -jnp.sum(jnp.log(self.high - self.low))
        return jnp.broadcast_to(value, theta.shape[:-1])

    def to_unconstrained(self, theta: Any) -> jax.Array:
        theta = _theta(self, theta)
        p = (theta - self.low) / (self.high - self.low)
        p = jnp.clip(p, 1e-7, 1 - 1e-7)
        return jnp.log(p) - jnp.log1p(-p)

    def from_unconstrained(self, u: Any) -> jax.Array:
        u = jnp.asarray(u, dtype=jnp.float32)
        theta = self.low + (self.high - self.low) * jax.nn.sigmoid(u)
        return jnp.clip(theta, self.low, self.high)

    def log_det_from_unconstrained(self, u: Any) -> jax.Array:
        u = jnp.asarray(u, dtype=jnp.float32)
        terms = jnp.log(self.high - self.low) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u)
        return jnp.sum(terms, axis=-1)

    def to_config(self) -> dict:
        return {"type": "BoxUniform", "low": _list(self.low), "high": _list(self.high)}


class Normal(_Base):
    """Independent normals N(loc_i, scale_i²); already unconstrained.

    >>> float(Normal(0.0, 1.0).log_prob([0.0]))  # -log(2π)/2
    -0.918...
    """

    def __init__(self, loc: Any, scale: Any, dim: int | None = None):
        loc_np, scale_np = np.asarray(loc), np.asarray(scale)
        if dim is None:
            dim = max(loc_np.size, scale_np.size)
        self.loc = _vector("loc", loc, dim)
        self.scale = _vector("scale", scale, dim)
        if not bool(jnp.all(self.scale > 0)):
            raise ValueError(f"scale: expected positive values, got {scale}")
        self.dim = int(dim)

    def sample(self, n: int, seed: Seed = 0) -> jax.Array:
        return self.loc + self.scale * jax.random.normal(as_key(seed), (int(n), self.dim))

    def numpy_sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        z = rng.standard_normal((int(n), self.dim))
        return (np.asarray(self.loc) + np.asarray(self.scale) * z).astype(np.float32)

    def _log_prob_inside(self, theta: jax.Array) -> jax.Array:
        z = (theta - self.loc) / self.scale
        return jnp.sum(-0.5 * z**2 - jnp.log(self.scale) - 0.5 * math.log(2 * math.pi), axis=-1)

    def to_config(self) -> dict:
        return {"type": "Normal", "loc": _list(self.loc), "scale": _list(self.scale)}


class MultivariateNormal(_Base):
    """N(loc, covariance_matrix); already unconstrained.

    >>> MultivariateNormal([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]]).sample(4).shape
    (4, 2)
    """

    def __init__(self, loc: Any, covariance_matrix: Any):
        self.loc = _vector("loc", loc)
        self.dim = int(self.loc.shape[0])
        cov = np.asarray(covariance_matrix, dtype=np.float64)
        if cov.shape != (self.dim, self.dim):
            raise ValueError(
                f"covariance_matrix: expected shape ({self.dim}, {self.dim}), got {cov.shape}"
            )
        if not np.all(np.isfinite(cov)) or not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-12):
            raise ValueError(  # cholesky would read the lower triangle only, silently
                "covariance_matrix: expected a symmetric positive-definite matrix, got a "
                "non-symmetric or non-finite one"
            )
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError(
                "covariance_matrix: expected a symmetric positive-definite matrix"
            ) from None
        self._cov64 = cov  # saved as given: float32 rounding can make it singular
        self.covariance_matrix = jnp.asarray(cov, jnp.float32)
        self._chol = jnp.asarray(chol, jnp.float32)
        self._half_logdet = float(np.sum(np.log(np.diag(chol))))

    def sample(self, n: int, seed: Seed = 0) -> jax.Array:
        eps = jax.random.normal(as_key(seed), (int(n), self.dim))
        return self.loc + eps @ self._chol.T

    def numpy_sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        eps = rng.standard_normal((int(n), self.dim))
        return (np.asarray(self.loc) + eps @ np.asarray(self._chol).T).astype(np.float32)

    def _log_prob_inside(self, theta: jax.Array) -> jax.Array:
        diff = (theta - self.loc).reshape(-1, self.dim)
        z = jax.scipy.linalg.solve_triangular(self._chol, diff.T, lower=True).T
        lp = -0.5 * jnp.sum(z**2, -1) - self._half_logdet - 0.5 * self.dim * math.log(2 * math.pi)
        return lp.reshape(theta.shape[:-1])

    def to_config(self) -> dict:
        return {
            "type": "MultivariateNormal",
            "loc": _list(self.loc),
            "covariance_matrix": self._cov64.tolist(),
        }


class LogNormal(_Base):
    """Independent log-normals: log θ_i ~ N(loc_i, scale_i²); unconstrained through log.

    >>> bool(LogNormal(0.0, 1.0).in_support([-1.0]))
    False
    """

    def __init__(self, loc: Any, scale: Any, dim: int | None = None):
        self._normal = Normal(loc, scale, dim)
        self.loc, self.scale, self.dim = self._normal.loc, self._normal.scale, self._normal.dim

    def sample(self, n: int, seed: Seed = 0) -> jax.Array:
        return jnp.exp(self._normal.sample(n, seed))

    def numpy_sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.exp(self._normal.numpy_sample(rng, n))

    def in_support(self, theta: Any) -> jax.Array:
        theta = _theta(self, theta)
        return jnp.all((theta > 0) & jnp.isfinite(theta), axis=-1)

    def _log_prob_inside(self, theta: jax.Array) -> jax.Array:
        log_theta = jnp.log(theta)
        return self._normal._log_prob_inside(log_theta) - jnp.sum(log_theta, axis=-1)

    def to_unconstrained(self, theta: Any) -> jax.Array:
        # the range of from_unconstrained's clip: log of θ <= 0 (outside the support) is 0
        theta = _theta(self, theta)
        return jnp.clip(jnp.log(jnp.where(theta > 0, theta, 1.0)), -87.0, 88.0)

    def from_unconstrained(self, u: Any) -> jax.Array:
        # clipped so that even far-out u maps to a finite, positive θ in float32
        return jnp.exp(jnp.clip(jnp.asarray(u, dtype=jnp.float32), -87.0, 88.0))

    def log_det_from_unconstrained(self, u: Any) -> jax.Array:
        # -inf beyond the clip of from_unconstrained: there θ no longer moves with u, and a
        # log-det growing with u would give the u-space target infinite mass (chains run off)
        u = jnp.asarray(u, dtype=jnp.float32)
        return jnp.sum(jnp.where((u >= -87.0) & (u <= 88.0), u, -jnp.inf), axis=-1)

    def to_config(self) -> dict:
        return {"type": "LogNormal", "loc": _list(self.loc), "scale": _list(self.scale)}


class Independent(_Base):
    """Independent joint of priors, θ = concat(θ_1, θ_2, ...).

    >>> joint = Independent([BoxUniform(0.0, 1.0), LogNormal(0.0, 1.0)])
    >>> joint.dim, joint.sample(5).shape
    (2, (5, 2))
    """

    def __init__(self, priors: list[Any]):
        if not priors:
            raise ValueError("priors: expected at least one prior")
        for i, p in enumerate(priors):
            if not isinstance(p, Prior):
                raise TypeError(f"priors[{i}]: expected a prior, got {type(p).__name__}")
        self.priors = list(priors)
        self.dim = sum(p.dim for p in self.priors)
        self._splits = np.cumsum([p.dim for p in self.priors])[:-1].tolist()

    def _parts(self, a: jax.Array) -> list[jax.Array]:
        return jnp.split(a, self._splits, axis=-1)

    def sample(self, n: int, seed: Seed = 0) -> jax.Array:
        keys = jax.random.split(as_key(seed), len(self.priors))
        return jnp.concatenate([p.sample(n, k) for p, k in zip(self.priors, keys)], axis=-1)

    def numpy_sample(self, rng: np.random.Generator, n: int) -> np.ndarray | None:
        parts = []
        for p in self.priors:  # a part without a numpy path (a user's prior): none for all
            draw = getattr(p, "numpy_sample", None)
            part = None if draw is None else draw(rng, n)
            if part is None:
                return None
            parts.append(np.asarray(part, np.float32).reshape(int(n), p.dim))
        return np.concatenate(parts, axis=-1)

    def log_prob(self, theta: Any) -> jax.Array:
        parts = self._parts(_theta(self, theta))
        return sum(p.log_prob(t) for p, t in zip(self.priors, parts))

    def in_support(self, theta: Any) -> jax.Array:
        parts = self._parts(_theta(self, theta))
        inside = [p.in_support(t) for p, t in zip(self.priors, parts)]
        return jnp.all(jnp.stack(inside, axis=-1), axis=-1)

    def to_unconstrained(self, theta: Any) -> jax.Array:
        parts = self._parts(_theta(self, theta))
        return jnp.concatenate([p.to_unconstrained(t) for p, t in zip(self.priors, parts)], -1)

    def from_unconstrained(self, u: Any) -> jax.Array:
        parts = self._parts(jnp.asarray(u, dtype=jnp.float32))
        return jnp.concatenate([p.from_unconstrained(v) for p, v in zip(self.priors, parts)], -1)

    def log_det_from_unconstrained(self, u: Any) -> jax.Array:
        parts = self._parts(jnp.asarray(u, dtype=jnp.float32))
        return sum(p.log_det_from_unconstrained(v) for p, v in zip(self.priors, parts))

    def to_config(self) -> dict:
        return {"type": "Independent", "priors": [p.to_config() for p in self.priors]}


_TYPES = {
    cls.__name__: cls for cls in (BoxUniform, Normal, MultivariateNormal, LogNormal, Independent)
}


def check_config(config: Any) -> None:
    """Refuse (naming ``prior``) a prior config that :func:`prior_from_config` cannot rebuild:
    a saved model with a prior of the user's own class would be written, then fail to load."""
    kind = config.get("type") if isinstance(config, dict) else None
    if kind not in _TYPES:
        raise ValueError(
            f"prior: a model with a prior of type {kind!r} cannot be saved: lfi.load rebuilds "
            f"only {sorted(_TYPES)} (their configs as to_config writes them)"
        )
    for part in config.get("priors", []) if kind == "Independent" else []:
        check_config(part)


def prior_from_config(config: dict) -> Prior:
    """Rebuild a prior from :meth:`to_config`'s dict.

    >>> p = prior_from_config(BoxUniform(0.0, 1.0).to_config())
    >>> type(p).__name__, p.dim
    ('BoxUniform', 1)
    """
    kind = config.get("type")
    if kind not in _TYPES:
        raise ValueError(f"config['type']: expected one of {sorted(_TYPES)}, got {kind!r}")
    args = {k: v for k, v in config.items() if k != "type"}
    if kind == "Independent":
        return Independent([prior_from_config(c) for c in args["priors"]])
    return _TYPES[kind](**args)


def _list(a: jax.Array) -> list[float]:
    return [float(v) for v in np.asarray(a)]
