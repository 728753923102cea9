"""A posterior given by an ODE from N(0, I): flow matching (FMPE) and score-based (NPSE) posteriors.

A trained time-conditioned network and a probability path (:mod:`lfi.nets.paths`) define a
velocity field v(z, t, x). Sampling solves dz/dt = v from the base N(0, I) at ``t_base`` to the
data end ``t_data`` with diffrax (vmapped over samples, jitted). The density is the continuous
change of variables (Chen et al. 2018, arXiv:1806.07366) with the exact divergence (a
``jax.jacfwd`` trace; cheap for the small dθ of simulation-based inference), integrated back
from θ to the base:

    log q_z(z | x) = log N(z(t_base); 0, I) + ∫_{t_data}^{t_base} ∇·v(z(t), t, x) dt,

then as in :class:`lfi.posteriors.direct.DirectPosterior` z = (u − m)/s with u = T⁻¹(θ) the
prior's unconstrained θ: log q(θ|x) = log q_z − Σ log s − log |dθ/du|, and −inf outside the
prior's support. The ODE is solved adaptively (``ode_steps=None``: ``rtol``/``atol``) or with
``ode_steps`` fixed steps; the density is exact for the ODE flow, up to the solver's error.
Built by :class:`lfi.methods.fmpe.FMPE` and :class:`lfi.methods.npse.NPSE`; by hand (an
untrained network here):

>>> import jax, jax.numpy as jnp, lfi
>>> from lfi.nets.paths import OTFlowPath
>>> from lfi.nets.vector_field import build_vector_field, vector_field_config
>>> prior = lfi.Normal(0.0, 1.0, dim=2)
>>> net_config = vector_field_config(2, 1, width=8, blocks=1)
>>> stand = Standardizer(jnp.zeros(2), jnp.ones(2), jnp.zeros(1), jnp.ones(1))
>>> config = {"net": net_config, "ode": ode_config(steps=4)}
>>> post = ODEPosterior(prior, build_vector_field(net_config), OTFlowPath(), stand, config, 1)
>>> post.sample(3, x=[0.0]).shape, post.log_prob(jnp.zeros((5, 2)), x=[0.0]).shape
((3, 2), (5,))
"""

from __future__ import annotations

import math
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from lfi._rng import Seed, as_key
from lfi.nets.paths import path_from_config
from lfi.nets.vector_field import build_vector_field
from lfi.posteriors.base import ObservationMixin, check_theta
from lfi.posteriors.direct import Standardizer
from lfi.posteriors.io import fill_module, module_arrays, read_archive, write_archive
from lfi.priors import prior_from_config
from lfi.train import History

SOLVERS = {
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "heun": diffrax.Heun,
    "euler": diffrax.Euler,
}


def ode_config(
    solver: str = "tsit5",
    steps: int | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 4096,
) -> dict[str, Any]:
    """Validated ODE-solver settings: adaptive (``steps=None``) or ``steps`` fixed steps."""
    if solver not in SOLVERS:
        raise ValueError(f"ode_solver: expected one of {sorted(SOLVERS)}, got {solver!r}")
    if steps is not None and (int(steps) != steps or steps < 1):
        raise ValueError(f"ode_steps: expected None or an integer >= 1, got {steps!r}")
    if steps is None and solver == "euler":
        raise ValueError("ode_solver: 'euler' has no error estimate; give ode_steps")
    if not (rtol > 0 and atol > 0):
        raise ValueError(f"rtol, atol: expected positive values, got {rtol}, {atol}")
    steps = None if steps is None else int(steps)
    return {"solver": solver, "steps": steps, "rtol": float(rtol), "atol": float(atol),
            "max_steps": int(max_steps)}  # fmt: skip


def solve(field: Any, y0: Any, t0: float, t1: float, ode: dict[str, Any]) -> Any:
    """y(t1) for dy/dt = field(t, y, None), y(t0) = y0 (either time direction)."""
    if ode["steps"]:
        controller, dt0 = diffrax.ConstantStepSize(), (t1 - t0) / ode["steps"]
    else:
        controller, dt0 = diffrax.PIDController(rtol=ode["rtol"], atol=ode["atol"]), None
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field), SOLVERS[ode["solver"]](), t0, t1, dt0, y0,
        stepsize_controller=controller, max_steps=ode["max_steps"], throw=False,
    )  # fmt: skip
    ok = sol.result == diffrax.RESULTS.successful  # else NaN: never a silent partial solve
    return jax.tree_util.tree_map(lambda a: jnp.where(ok, a[-1], jnp.nan), sol.ys)


@eqx.filter_jit
def _sample_z(net, path, ode, key, zx, n, dim):
    field = lambda t, z, args: path.velocity(net, z, t, zx)
    z0 = jax.random.normal(key, (n, dim))
    return jax.vmap(lambda z: solve(field, z, path.t_base, path.t_data, ode))(z0)


@eqx.filter_jit
def _sample(net, path, stand, prior, ode, key, x, n):
    z = _sample_z(net, path, ode, key, stand.z_x(x), n, prior.dim)
    return prior.from_unconstrained(z * stand.theta_std + stand.theta_mean)


def log_prob_z(net: Any, path: Any, ode: dict, z: jax.Array, zx: jax.Array) -> jax.Array:
    """log q_z(z | x) for a batch z (n, d) by the ODE with the exact divergence."""

    def field(t, y, args):
        v_fn = lambda zz: path.velocity(net, zz, t, zx)
        jac, v = jax.jacfwd(lambda zz: (v_fn(zz), v_fn(zz)), has_aux=True)(y[0])
        return v, jnp.trace(jac)

    def one(z1):
        z0, div = solve(field, (z1, jnp.zeros(())), path.t_data, path.t_base, ode)
        return -0.5 * jnp.sum(z0**2) - 0.5 * z1.shape[-1] * math.log(2 * math.pi) + div

    return jax.vmap(one)(z)


@eqx.filter_jit
def _log_prob(net, path, stand, prior, ode, theta, x):
    inside = prior.in_support(theta)
    u = prior.to_unconstrained(theta)
    z = stand.z_theta(u)
    ok = inside & jnp.all(jnp.isfinite(z), axis=-1)
    lp = log_prob_z(net, path, ode, jnp.where(ok[:, None], z, 0.0), stand.z_x(x))
    lp = lp - jnp.sum(jnp.log(stand.theta_std)) - prior.log_det_from_unconstrained(u)
    return jnp.where(ok, lp, -jnp.inf)


class ODEPosterior(ObservationMixin):
    """q(θ | x) from a trained vector field and a probability path; see the module docstring."""

    normalized = True

    def __init__(self, prior, net, path, standardizer, config, dim_x, history=None, method="fmpe"):
        self.prior, self.dim_x, self.method = prior, int(dim_x), method
        self.config, self.history = dict(config), history  # {"net": ..., "ode": ...}
        self._net, self._path, self._stand = net, path, standardizer
        self._ode = dict(config["ode"])
        self.default_x = None

    def __repr__(self) -> str:
        return f"ODEPosterior(method={self.method!r}, prior={self.prior!r}, path={self._path!r})"

    @property
    def dim_theta(self) -> int:
        return self.prior.dim

    def _args(self) -> tuple:
        return self._net, self._path, self._stand, self.prior, self._ode

    def log_prob(self, theta: Any, x: Any = None) -> jax.Array:
        """log q(θ | x) through the ODE (normalised up to solver error); -inf outside the prior."""
        theta = check_theta(theta, self.dim_theta)
        flat = theta.reshape(-1, self.dim_theta)
        lp = _log_prob(*self._args(), flat, jnp.asarray(self._one_x(x)))
        failed = int(np.isnan(np.asarray(lp)).sum())  # -inf (outside the prior) is not NaN
        if failed:
            raise RuntimeError(
                f"ode: the solver did not reach t = {self._path.t_base} within max_steps="
                f"{self._ode['max_steps']} for {failed} of {len(flat)} log_prob values; use "
                "posterior.with_ode(max_steps=...) or fixed steps (with_ode(steps=...))"
            )
        return lp.reshape(theta.shape[:-1])

    def sample(self, n: int, x: Any = None, seed: Seed = 0) -> jax.Array:
        """``n`` samples for one observation: shape (n, dθ), always inside the prior's support."""
        x = jnp.asarray(self._one_x(x))
        return self._solved(_sample(*self._args(), as_key(seed), x, int(n)))

    def sample_batched(self, n: int, x: Any, seed: Seed = 0) -> jax.Array:
        """``n`` samples for each of m observations at once: shape (m, n, dθ)."""
        xs = jnp.asarray(self._many_x(x))
        keys = jax.random.split(as_key(seed), xs.shape[0])
        draws = jax.vmap(lambda k, xi: _sample(*self._args(), k, xi, int(n)))(keys, xs)
        return self._solved(draws)

    def _solved(self, draws: jax.Array) -> jax.Array:
        failed = int(np.isnan(np.asarray(draws)).any(-1).sum())
        if failed:
            raise RuntimeError(
                f"ode: the solver did not reach t = {self._path.t_data} within max_steps="
                f"{self._ode['max_steps']} for {failed} draws; use posterior.with_ode("
                "max_steps=...) or fixed steps (with_ode(steps=...))"
            )
        return draws

    def map(self, x: Any = None, seed: Seed = 0, num_init: int = 256) -> jax.Array:
        """The posterior mode, approximately: the best of ``num_init`` samples by ``log_prob``
        (no gradient refinement: each gradient would cost an ODE solve)."""
        theta = self.sample(num_init, x, seed)
        return theta[jnp.argmax(self.log_prob(theta, x))]

    def with_ode(self, **options: Any) -> ODEPosterior:
        """A copy that solves its ODE with other settings (``solver``, ``steps``, ``rtol``,
        ``atol``, ``max_steps``; see :func:`ode_config`); the network is shared."""
        config = {**self.config, "ode": ode_config(**{**self._ode, **options})}
        post = type(self)(
            self.prior, self._net, self._path, self._stand, config, self.dim_x, self.history,
            self.method,
        )  # fmt: skip
        post.default_x = self.default_x
        return post

    def save(self, path: str) -> None:
        """Write config JSON + arrays (no pickle); read back with ``lfi.load``."""
        config = {
            "class": "ODEPosterior",
            "method": self.method,
            "prior": self.prior.to_config(),
            "net": self.config["net"],
            "path": self._path.to_config(),
            "ode": self._ode,
            "dim_x": self.dim_x,
            "default_x": None if self.default_x is None else self.default_x.tolist(),
            "history": None if self.history is None else self.history.to_dict(),
        }
        arrays = {**module_arrays(self._net, "net"), **module_arrays(self._stand, "stand")}
        write_archive(path, config, arrays)

    @classmethod
    def load(cls, path: str) -> ODEPosterior:
        config, arrays = read_archive(path, expect="ODEPosterior")
        prior = prior_from_config(config["prior"])
        net = fill_module(build_vector_field(config["net"]), arrays, "net")
        stand = fill_module(Standardizer.zeros(prior.dim, config["dim_x"]), arrays, "stand")
        post = cls(
            prior, net, path_from_config(config["path"]), stand,
            {"net": config["net"], "ode": config["ode"]}, config["dim_x"],
            History.from_dict(config.get("history")), config["method"],
        )  # fmt: skip
        if config.get("default_x") is not None:
            post.set_default_x(config["default_x"])
        return post
