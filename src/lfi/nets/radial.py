"""A spherically symmetric latent base for flows whose radius is recalibrated.

:class:`RadialNormal` is the base distribution of a latent-recalibrated flow posterior
(:func:`lfi.methods.recalibrate.recalibrate`, after Dheur & Ben Taieb 2025, arXiv:2505.16636).
Its radius ρ has the CDF F_χd(h(ρ)), with h piecewise linear, so that its density stays
explicit:

    log q(z) = −d/2 log 2π − h(ρ)²/2 + (d − 1) log(h(ρ)/ρ) + log h'(ρ),   ρ = ‖z‖,

the standard normal when h is the identity.

>>> import numpy as np
>>> base = RadialNormal([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], 3)  # h = identity: N(0, I)
>>> z = np.array([[0.3, -1.2, 0.5]])
>>> bool(np.allclose(base.log_prob(z), -1.5 * np.log(2 * np.pi) - 0.5 * (z**2).sum()))
True
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from flowjax.distributions import AbstractDistribution
from scipy.special import gammaincinv

from lfi.nets.flows import EmbeddedFlow


class RadialNormal(AbstractDistribution):
    """A spherically symmetric base in d dimensions whose radius ρ has the CDF F_χd(h(ρ)),
    h piecewise linear through (0, 0) and the knots (``radii[k]``, ``chi[k]``), then the ray
    through the last knot."""

    radii: jax.Array  # (K + 1,) increasing, radii[0] = 0
    chi: jax.Array  # (K + 1,) increasing, chi[0] = 0
    shape: tuple[int, ...] = eqx.field(static=True)
    cond_shape: None = eqx.field(static=True, default=None)

    def __init__(self, radii: Any, chi: Any, dim: int):
        self.radii = jnp.asarray(radii, jnp.float32)
        self.chi = jnp.asarray(chi, jnp.float32)
        self.shape = (int(dim),)
        self.cond_shape = None

    def _h(self, rho: jax.Array) -> tuple[jax.Array, jax.Array]:
        """h(ρ) and h'(ρ)."""
        r, c = self.radii, self.chi
        i = jnp.clip(jnp.searchsorted(r, rho, side="right") - 1, 0, r.shape[0] - 2)
        slope = (c[i + 1] - c[i]) / (r[i + 1] - r[i])
        inside = c[i] + slope * (rho - r[i])
        tail = c[-1] / r[-1]  # the ray through the origin and the last knot
        beyond = rho > r[-1]
        return jnp.where(beyond, rho * tail, inside), jnp.where(beyond, tail, slope)

    def _h_inverse(self, rho0: jax.Array) -> jax.Array:
        r, c = self.radii, self.chi
        return jnp.where(rho0 > c[-1], rho0 * r[-1] / c[-1], jnp.interp(rho0, c, r))

    def _log_prob(self, x: jax.Array, condition: Any = None) -> jax.Array:
        d = self.shape[0]
        rho = jnp.sqrt(jnp.sum(x**2))
        h, dh = self._h(rho)
        first = self.chi[1] / self.radii[1]  # h(ρ)/ρ as ρ -> 0
        ratio = jnp.where(rho > 0, h / jnp.where(rho > 0, rho, 1.0), first)
        return -0.5 * d * jnp.log(2 * jnp.pi) - 0.5 * h**2 + (d - 1) * jnp.log(ratio) + jnp.log(dh)

    def _sample(self, key: jax.Array, condition: Any = None) -> jax.Array:
        z = jax.random.normal(key, self.shape)
        rho0 = jnp.sqrt(jnp.sum(z**2))
        return z * self._h_inverse(rho0) / jnp.where(rho0 > 0, rho0, 1.0)


def chi_quantile(p: Any, dim: int) -> np.ndarray:
    """Quantiles of the χ distribution with ``dim`` degrees of freedom."""
    return np.sqrt(2.0 * gammaincinv(dim / 2.0, np.asarray(p, np.float64)))


def radial_base(radii: Any, dim: int, knots: int = 20) -> RadialNormal:
    """The :class:`RadialNormal` whose radius has the distribution of ``radii`` (latent radii
    of held-out pairs), matched at ``knots`` quantile levels k / (knots + 1)."""
    radii = np.asarray(radii, np.float64)
    radii = radii[np.isfinite(radii)]
    if radii.size < 2 * knots:
        raise ValueError(f"theta, x: need at least {2 * knots} valid pairs, got {radii.size}")
    levels = np.arange(1, knots + 1) / (knots + 1)
    r = np.quantile(radii, levels)
    r = np.maximum.accumulate(np.maximum(r, 1e-6))
    r = r + 1e-6 * np.arange(knots)  # strictly increasing
    return RadialNormal(np.r_[0.0, r], np.r_[0.0, chi_quantile(levels, dim)], dim)


def with_base(flow: Any, base: Any) -> Any:
    """``flow`` with its base distribution replaced (through an embedding wrapper too)."""
    if isinstance(flow, EmbeddedFlow):
        return eqx.tree_at(lambda f: f.flow.base_dist, flow, base)
    return eqx.tree_at(lambda f: f.base_dist, flow, base)


def latent_base(flow: Any) -> Any:
    """The base distribution of ``flow`` (through an embedding wrapper too)."""
    return flow.flow.base_dist if isinstance(flow, EmbeddedFlow) else flow.base_dist
