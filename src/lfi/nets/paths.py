"""Probability paths between N(0, I) and the (standardised) posterior, and their ODE velocity.

Two paths, each with its training loss and the velocity field whose ODE carries the base
N(0, I) to the posterior (what :class:`lfi.posteriors.ode.ODEPosterior` integrates):

* :class:`OTFlowPath` (FMPE; Lipman et al. 2022, arXiv:2210.02747; Wildberger, Dax et al. 2023,
  arXiv:2305.17161): z_t = (1 − (1 − σ_min) t) ε + t z_1, t = 0 noise, t = 1 data; the network
  *is* the velocity, regressed on the conditional target z_1 − (1 − σ_min) ε. Times are drawn
  as t = U^{1/(1+α)}, of density ∝ t^α (``time_power`` = α; 0 is uniform), as the FMPE
  authors' code (dingo) draws them, weighting times near the data end.
* :class:`VPScorePath` (NPSE; Song et al. 2021, arXiv:2011.13456; Sharrock et al. 2022,
  arXiv:2210.04872; Geffner et al. 2023, arXiv:2209.14249): the variance-preserving SDE with
  β(t) = β_min + t (β_max − β_min), t = 1 noise, t = ε data; z_t = α_t z_0 + σ_t ε. The
  network predicts ε (denoising score matching with weight σ_t²), the score is −ε̂ / σ_t and
  the probability-flow ODE velocity is −½ β(t) (z + score).

>>> import jax, jax.numpy as jnp
>>> path = VPScorePath()
>>> a, s = path.alpha_sigma(jnp.asarray(1.0))
>>> bool(abs(a**2 + s**2 - 1.0) < 1e-6), bool(a < 0.1)
(True, True)
>>> path_from_config(OTFlowPath(sigma_min=1e-3, time_power=1.0).to_config())
OTFlowPath(sigma_min=0.001, time_power=1.0)
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from lfi._cores import rowwise

__all__ = ["OTFlowPath", "VPScorePath", "path_from_config"]


class OTFlowPath(eqx.Module):
    """The optimal-transport conditional path of flow matching (see the module docstring)."""

    sigma_min: float = 1e-3
    time_power: float = 0.0

    def __check_init__(self):
        if not 0.0 <= self.sigma_min < 1.0:
            raise ValueError(f"sigma_min: expected a value in [0, 1), got {self.sigma_min}")
        if not self.time_power > -1.0:
            raise ValueError(f"time_power: expected a value > -1, got {self.time_power}")

    @property
    def t_base(self) -> float:
        return 0.0

    @property
    def t_data(self) -> float:
        return 1.0

    @rowwise
    def loss(self, net: Any, batch: tuple, key: Any) -> Array:
        """Conditional flow matching: mean ‖v(z_t, t, x) − (z_1 − (1 − σ_min) ε)‖²."""
        z1, zx = batch
        k_t, k_e = jax.random.split(key)
        t = jax.random.uniform(k_t, (z1.shape[0],)) ** (1.0 / (1.0 + self.time_power))
        eps = jax.random.normal(k_e, z1.shape)
        zt = (1.0 - (1.0 - self.sigma_min) * t[:, None]) * eps + t[:, None] * z1
        target = z1 - (1.0 - self.sigma_min) * eps
        return jnp.mean(jnp.sum((jax.vmap(net)(zt, t, zx) - target) ** 2, axis=-1))

    def velocity(self, net: Any, z: Array, t: Array, zx: Array) -> Array:
        return net(z, t, zx)

    def to_config(self) -> dict[str, Any]:
        return {"kind": "ot_flow", "sigma_min": self.sigma_min, "time_power": self.time_power}


class VPScorePath(eqx.Module):
    """The variance-preserving diffusion of score-based NPSE (see the module docstring)."""

    beta_min: float = 0.1
    # With 10, α_1 = exp(−½∫β) = 0.08: z_1 is not quite N(0, I), the ODE's start, and even exact
    # scores pulled a N(2.5, 0.1²) posterior (standardised space) 0.2 sd inwards; 20 (Song et al.
    # 2021, α_1 = 0.0066) removed that (tests/test_fmpe_npse.py). Not yet the default: a tiny
    # test network trained with 20 under-dispersed more, and C2ST has not compared the two.
    beta_max: float = 10.0
    # The ODE stops at t_min, where z is the posterior blurred by N(0, σ²), σ = √(1 − α²) ≈
    # √(β_min t_min) = 0.01 in standardised units: a posterior of sd s comes out with sd
    # √(α²s² + σ²) (+0.5% at s = 0.1, +41% at 0.01). Tweedie's E[z_0 | z_t] would remove the
    # blur from the mean but shrinks the spread (to s · αs / √(α²s² + σ²)): not a sample.
    # Lower t_min for posteriors that narrow (sample_iid warns when it sees one).
    t_min: float = 1e-3

    def __check_init__(self):
        if not 0.0 < self.beta_min < self.beta_max:
            raise ValueError(
                f"beta_min, beta_max: expected 0 < beta_min < beta_max, got "
                f"{self.beta_min}, {self.beta_max}"
            )
        if not 0.0 < self.t_min < 0.5:
            raise ValueError(f"t_min: expected a value in (0, 0.5), got {self.t_min}")

    @property
    def t_base(self) -> float:
        return 1.0

    @property
    def t_data(self) -> float:
        return self.t_min

    def beta(self, t: Array) -> Array:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def alpha_sigma(self, t: Array) -> tuple[Array, Array]:
        """Mean factor α_t = exp(−½∫β) and noise scale σ_t = √(1 − α_t²) of z_t | z_0."""
        log_alpha = -0.5 * (self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2)
        return jnp.exp(log_alpha), jnp.sqrt(-jnp.expm1(2.0 * log_alpha))

    @rowwise
    def loss(self, net: Any, batch: tuple, key: Any) -> Array:
        """Denoising score matching (ε-prediction): mean ‖ε̂(z_t, t, x) − ε‖², t ~ U(t_min, 1)."""
        z0, zx = batch
        k_t, k_e = jax.random.split(key)
        t = jax.random.uniform(k_t, (z0.shape[0],), minval=self.t_min, maxval=1.0)
        alpha, sigma = self.alpha_sigma(t)
        eps = jax.random.normal(k_e, z0.shape)
        zt = alpha[:, None] * z0 + sigma[:, None] * eps
        return jnp.mean(jnp.sum((jax.vmap(net)(zt, t, zx) - eps) ** 2, axis=-1))

    def score(self, net: Any, z: Array, t: Array, zx: Array) -> Array:
        """∇ log p_t(z | x) ≈ −ε̂ / σ_t."""
        return -net(z, t, zx) / self.alpha_sigma(t)[1]

    def velocity(self, net: Any, z: Array, t: Array, zx: Array) -> Array:
        """The probability-flow ODE: dz/dt = −½ β(t) (z + ∇ log p_t(z | x))."""
        return -0.5 * self.beta(t) * (z + self.score(net, z, t, zx))

    def to_config(self) -> dict[str, Any]:
        return {
            "kind": "vp_score",
            "beta_min": self.beta_min,
            "beta_max": self.beta_max,
            "t_min": self.t_min,
        }


def path_from_config(config: dict[str, Any]) -> OTFlowPath | VPScorePath:
    """The path a ``to_config()`` dict describes."""
    c = dict(config)
    kind = c.pop("kind", None)
    kinds = {"ot_flow": OTFlowPath, "vp_score": VPScorePath}
    if kind not in kinds:
        raise ValueError(f"path: unknown kind {kind!r}; expected one of {sorted(kinds)}")
    return kinds[kind](**{k: float(v) for k, v in c.items()})
