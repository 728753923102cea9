"""What every posterior offers, and the shared checks of θ and x."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

from lfi._rng import Seed


@runtime_checkable
class Posterior(Protocol):
    """The posterior interface shared by every method.

    ``sample(n, x=x_o, seed=0)`` → (n, dθ); ``sample_batched(n, xs, seed=0)`` → (m, n, dθ);
    ``log_prob(theta, x=x_o)``; ``map(x=x_o)`` → (dθ,); ``save(path)`` (load with ``lfi.load``).
    """

    prior: Any

    def sample(self, n: int, x: Any = None, seed: Seed = 0) -> jax.Array: ...
    def log_prob(self, theta: Any, x: Any = None) -> jax.Array: ...
    def map(self, x: Any = None, seed: Seed = 0) -> jax.Array: ...
    def save(self, path: str) -> None: ...


class ArvizMixin:
    """``to_arviz``: draws as an ArviZ ``InferenceData`` (see :mod:`lfi.posteriors.arviz`)."""

    def to_arviz(
        self, num_samples: int = 1000, x: Any = None, seed: Seed = 0, **options: Any
    ) -> Any:
        """``num_samples`` draws at ``x`` as an ``arviz.InferenceData``: ``theta`` with dims
        (chain, draw, theta_dim), MCMC chains kept, ``sample_stats.lp``, ``observed_data.x``.
        Options: ``num_chains``, ``labels``, ``log_prob``, and ``sample``'s own. Needs arviz
        (``pip install 'lfi[arviz]'``); see :func:`lfi.posteriors.arviz.to_inference_data`."""
        from lfi.posteriors.arviz import to_inference_data

        return to_inference_data(self, num_samples, x, seed, **options)


class ObservationMixin(ArvizMixin):
    """Default observation handling: ``set_default_x`` and shape checks against ``dim_x``."""

    dim_x: int
    default_x: np.ndarray | None = None

    def set_default_x(self, x: Any) -> ObservationMixin:
        self.default_x = self._one_x(x)
        return self

    def _one_x(self, x: Any) -> np.ndarray:
        if x is None:
            if self.default_x is None:
                raise ValueError("x: no observation given and no default set (set_default_x)")
            return self.default_x
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 2 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.shape != (self.dim_x,):
            raise ValueError(
                f"x: expected one observation of shape ({self.dim_x},) or (1, {self.dim_x}), "
                f"got {arr.shape}; use sample_batched for several observations"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError("x: the observation contains NaN or inf")
        return arr

    def _many_x(self, x: Any) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != self.dim_x:
            raise ValueError(f"x: expected shape (m, {self.dim_x}), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("x: the observations contain NaN or inf")
        return arr


def check_theta(theta: Any, dim: int, name: str = "theta") -> jax.Array:
    """θ as a float32 array of shape (..., dim), or a clear error."""
    arr = jax.numpy.asarray(theta, dtype=jax.numpy.float32)
    if arr.ndim == 0 or arr.shape[-1] != dim:
        raise ValueError(f"{name}: expected shape (n, {dim}) or ({dim},), got {arr.shape}")
    return arr


def check_same_x(x: Any, x_o: np.ndarray) -> None:
    """For a posterior built for one observation ``x_o``: ``x`` must be None or that same
    observation (its shape, or with one leading axis of 1, and its values)."""
    if x is None:
        return
    arr = np.asarray(x, np.float32)
    if arr.ndim == x_o.ndim + 1 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape != x_o.shape:
        raise ValueError(f"x: expected shape {x_o.shape} (this posterior's x_o), got {arr.shape}")
    if not np.allclose(arr, x_o, equal_nan=True):
        raise ValueError("x: this posterior was built for one observation (x_o); got another")
