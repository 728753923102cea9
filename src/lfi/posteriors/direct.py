"""A posterior given directly by a conditional flow q(θ | x) (NPE), normalised and exact to sample.

The flow lives in a standardised unconstrained space: u = T⁻¹(θ) through the prior's bijection,
z = (u − m)/s, and likewise x is z-scored. Samples map back through T, so they can never fall
outside a bounded prior, and densities carry the Jacobians:
log q(θ|x) = log q_z(z | x_z) − Σ log s − log |dθ/du|.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import paramax

from lfi._checks import integer
from lfi._rng import Seed, as_key
from lfi.nets.flows import build_flow
from lfi.nets.radial import RadialNormal, latent_base, with_base
from lfi.posteriors.base import ObservationMixin, check_theta
from lfi.posteriors.io import fill_module, module_arrays, read_archive, write_archive
from lfi.priors import prior_from_config
from lfi.train import History


class Standardizer(eqx.Module):
    """Affine z-scoring of θ (in unconstrained space) and x, fitted on training data."""

    theta_mean: jax.Array
    theta_std: jax.Array
    x_mean: jax.Array
    x_std: jax.Array

    @staticmethod
    def zeros(dim_theta: int, dim_x: int) -> Standardizer:
        """A skeleton of the right shapes, for :func:`lfi.posteriors.io.fill_module`."""
        t, x = jnp.zeros(dim_theta), jnp.zeros(dim_x)
        return Standardizer(t, t, x, x)

    @staticmethod
    def scale(mean: Any, std: Any) -> np.ndarray:
        """The z-scoring scale of columns with this mean and standard deviation: the standard
        deviation, or 1 for a constant column (a spread of at most 2e-7 of the mean, about two
        float32 rounding steps, is rounding, or a sum-of-squares' cancellation: not data).
        A small but real spread (x in SI units varying by 1e-9) keeps its own scale."""
        mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        return np.where((std <= 2e-7 * np.abs(mean)) | ~(std > 0), 1.0, std)

    @staticmethod
    def fit(u: Any, x: Any) -> Standardizer:
        def stats(a: np.ndarray) -> tuple[jax.Array, jax.Array]:
            mean, std = a.mean(0), a.std(0)
            return jnp.asarray(mean), jnp.asarray(Standardizer.scale(mean, std))

        return Standardizer(*stats(np.asarray(u, np.float64)), *stats(np.asarray(x, np.float64)))

    def z_theta(self, u: jax.Array) -> jax.Array:
        return (u - self.theta_mean) / self.theta_std

    def z_x(self, x: jax.Array) -> jax.Array:
        return (x - self.x_mean) / self.x_std


@eqx.filter_jit
def _log_prob(flow, stand, prior, theta, x):
    u = prior.to_unconstrained(theta)
    lp = flow.log_prob(stand.z_theta(u), stand.z_x(x))
    lp = lp - jnp.sum(jnp.log(stand.theta_std)) - prior.log_det_from_unconstrained(u)
    return jnp.where(prior.in_support(theta), lp, -jnp.inf)


@eqx.filter_jit
def _sample(flow, stand, prior, key, x, n):
    z = flow.sample(key, (n,), condition=stand.z_x(x))
    return prior.from_unconstrained(z * stand.theta_std + stand.theta_mean)


class DirectPosterior(ObservationMixin):
    """q(θ | x) from a trained conditional flow; see the module docstring."""

    def __init__(self, prior, flow, standardizer, flow_config, dim_x, history=None, method="npe"):
        self.prior, self.dim_x, self.method = prior, int(dim_x), method
        self.flow_config, self.history = dict(flow_config), history
        self._trained = flow  # with paramax wrappers, as saved
        self._flow = paramax.unwrap(flow)
        self._stand = standardizer
        self.default_x = None

    def __repr__(self) -> str:
        kind = self.flow_config["kind"]
        return f"DirectPosterior(method={self.method!r}, prior={self.prior!r}, flow={kind!r})"

    @property
    def dim_theta(self) -> int:
        return self.prior.dim

    def log_prob(self, theta: Any, x: Any = None) -> jax.Array:
        """Normalised log q(θ | x): -inf outside the prior's support."""
        theta = check_theta(theta, self.dim_theta)
        return _log_prob(self._flow, self._stand, self.prior, theta, jnp.asarray(self._one_x(x)))

    def sample(self, n: int, x: Any = None, seed: Seed = 0) -> jax.Array:
        """``n`` samples for one observation: shape (n, dθ), always inside the prior's support."""
        n = integer(n, "n", 0)
        x = jnp.asarray(self._one_x(x))
        return _sample(self._flow, self._stand, self.prior, as_key(seed), x, n)

    def sample_batched(self, n: int, x: Any, seed: Seed = 0) -> jax.Array:
        """``n`` samples for each of m observations at once: shape (m, n, dθ)."""
        n = integer(n, "n", 0)
        xs = jnp.asarray(self._many_x(x))
        keys = jax.random.split(as_key(seed), xs.shape[0])
        draw = lambda k, xi: _sample(self._flow, self._stand, self.prior, k, xi, n)
        return jax.vmap(draw)(keys, xs)

    def map(self, x: Any = None, seed: Seed = 0, num_init: int = 1000, steps: int = 300):
        """The posterior mode: best of ``num_init`` samples, refined by Adam (unconstrained)."""
        num_init, steps = integer(num_init, "num_init"), integer(steps, "steps", 0)
        x = jnp.asarray(self._one_x(x))
        key = as_key(seed)
        theta0 = self.sample(num_init, x, key)
        lp = self.log_prob(theta0, x)
        starts = self.prior.to_unconstrained(theta0[jnp.argsort(-lp)[:20]])
        u = _climb(self._flow, self._stand, self.prior, x, starts, steps)
        theta = self.prior.from_unconstrained(u)
        lp = self.log_prob(theta, x)
        return theta[jnp.argmax(lp)]

    def save(self, path: str) -> None:
        """Write config JSON + arrays (no pickle); read back with ``lfi.load``."""
        config = {
            "class": "DirectPosterior",
            "method": self.method,
            "prior": self.prior.to_config(),
            "flow": self.flow_config,
            "dim_x": self.dim_x,
            "default_x": None if self.default_x is None else self.default_x.tolist(),
            "history": None if self.history is None else self.history.to_dict(),
        }
        base = latent_base(self._trained)
        if isinstance(base, RadialNormal):  # latent-recalibrated (lfi.methods.recalibrate)
            config["latent_base"] = {"kind": "radial", "knots": int(base.radii.shape[0]) - 1}
        arrays = {**module_arrays(self._trained, "flow"), **module_arrays(self._stand, "stand")}
        write_archive(path, config, arrays)

    @classmethod
    def load(cls, path: str) -> DirectPosterior:
        config, arrays = read_archive(path, expect="DirectPosterior")
        prior = prior_from_config(config["prior"])
        skeleton = build_flow(config["flow"])
        if config.get("latent_base") is not None:
            if config["latent_base"].get("kind") != "radial":
                raise ValueError(f"file: unknown latent base {config['latent_base']!r}")
            knots = int(config["latent_base"]["knots"])
            zeros = jnp.zeros(knots + 1)
            skeleton = with_base(skeleton, RadialNormal(zeros, zeros, prior.dim))
        flow = fill_module(skeleton, arrays, "flow")
        stand = fill_module(Standardizer.zeros(prior.dim, config["dim_x"]), arrays, "stand")
        history = History.from_dict(config.get("history"))
        post = cls(prior, flow, stand, config["flow"], config["dim_x"], history, config["method"])
        if config.get("default_x") is not None:
            post.set_default_x(config["default_x"])
        return post


@eqx.filter_jit
def _climb(flow, stand, prior, x, u0, steps):
    def neg_log_prob(u):
        lp = flow.log_prob(stand.z_theta(u), stand.z_x(x))
        return -(lp - prior.log_det_from_unconstrained(u))

    opt = optax.adam(0.01)

    def step(carry, _):
        u, state = carry
        grads = jax.vmap(jax.grad(neg_log_prob))(u)
        updates, state = opt.update(grads, state)
        return (optax.apply_updates(u, updates), state), None

    (u, _), _ = jax.lax.scan(step, (u0, opt.init(u0)), None, length=steps)
    return u
