"""NDE and SCANDAL: a conditional density p̂(x | θ), with the joint score as extra supervision.

SCANDAL (Brehmer, Louppe, Pavez & Cranmer, PNAS 2020, arXiv:1805.12244) adds to the maximum-
likelihood loss of a neural density estimator the squared error between the joint score
t(x, z | θ) and the model's score ∇θ log p̂(x | θ):

    L = −mean log p̂(x | θ) + α mean ‖t(x, z | θ) − ∇θ log p̂(x | θ)‖²,

on pairs θ ~ prior, x ~ p(x | θ) (``lfi.simulate(..., augmented=True)``). α = 0 is plain NDE
(= NLE's estimator). The gradient is taken in θ itself, as in the paper. The density is

- a conditional normalising flow (``lfi.nets.flows``; NSF by default) for continuous x, or
- ``bins=K``: a categorical distribution over the integers 0..K−1 (softmax of an MLP of θ), for
  discrete x such as the Galton board's nail.

The fitted estimator gives ``log_likelihood(x, θ)`` (summed over i.i.d. trials), ``log_ratio``
(the same: a log-likelihood is a log-ratio against a θ-independent reference), a posterior
(``posterior()``, MCMC on prior × p̂), and saves to one file without pickle.

>>> import lfi
>>> from lfi.tasks import get
>>> task = get("galton")
>>> data = lfi.simulate(task.simulator, task.prior, 1000, seed=0, augmented=True,
...                     progress=False)
>>> est = SCANDAL(task.prior, alpha=0.5, bins=31, max_epochs=5, progress=False).fit(data)
>>> est.log_likelihood([[14.0], [15.0]], [[-0.8], [-0.6]]).shape
(2,)
"""

from __future__ import annotations

import copy
import functools
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import paramax

from lfi._cores import rowwise
from lfi._rng import Seed, as_key
from lfi.augment import GoldData
from lfi.methods.gold import GOLD_TRAIN_DEFAULTS, check_gold, score_term, theta_jacobian
from lfi.methods.npe import TRAIN_DEFAULTS
from lfi.nets.flows import build_flow, flow_config
from lfi.nets.resnet import activation
from lfi.posteriors.base import check_theta
from lfi.posteriors.direct import Standardizer
from lfi.posteriors.io import fill_module, module_arrays, read_archive, write_archive
from lfi.priors import Prior, prior_from_config
from lfi.train import History, fit

__all__ = ["SCANDAL", "scandal_loss"]


class Categorical(eqx.Module):
    """log p(k | a) = log_softmax(MLP(a))[k] over ``bins`` classes; ``b`` holds k as a float."""

    net: eqx.nn.MLP

    def log_prob(self, b: jax.Array, a: jax.Array) -> jax.Array:
        k = jnp.round(b[0]).astype(jnp.int32)
        return jax.nn.log_softmax(self.net(a))[k]


def _build(config: dict, key: Any) -> Any:
    if config["kind"] == "categorical":
        act = activation(config["activation"])
        mlp = eqx.nn.MLP(
            config["cond_dim"], config["bins"], config["width"], config["depth"], act, key=key
        )
        return Categorical(mlp)
    return build_flow(config["flow"], key)


@functools.cache
def scandal_loss(alpha: float):
    """``loss(model, (a, b, score, jinv_t, mask), key)``; one function per α, so compiled
    epochs are reused."""

    @rowwise
    def loss(model, batch, key):
        a, b, t, jinv_t, mask = batch
        model = paramax.unwrap(model)

        def log_p(ai, bi):
            return model.log_prob(bi, ai)

        if alpha > 0:
            lp, g = jax.vmap(jax.value_and_grad(log_p))(a, b)
            return -jnp.mean(lp) + alpha * score_term(g, t, jinv_t, mask)
        return -jnp.mean(jax.vmap(log_p)(a, b))

    return loss


@eqx.filter_jit
def _loglik(model, stand, prior, trials, theta, log_jac):
    model = paramax.unwrap(model)
    zx = stand.z_x(trials)

    def one(th):
        a = stand.z_theta(prior.to_unconstrained(th))
        return jnp.sum(jax.vmap(lambda b: model.log_prob(b, a))(zx)) - log_jac

    out = jax.vmap(one)(theta)
    return jnp.where(prior.in_support(theta), out, -jnp.inf)


class SCANDAL:
    """``SCANDAL(prior, alpha=1.0, bins=None, flow="nsf", **options).fit(data, seed=0)``.

    ``alpha = 0`` is NDE. ``bins=K`` models integer x in 0..K−1 with a categorical output (MLP
    options ``width`` (100), ``depth`` (2), ``activation`` (tanh)); otherwise flow options as
    :class:`lfi.NPE`, with tanh conditioners by default (``activation``). Training options as
    NPE. See the module docstring.
    """

    def __init__(
        self,
        prior: Prior,
        alpha: float = 1.0,
        *,
        bins: int | None = None,
        flow: str = "nsf",
        progress: bool = True,
        **options: Any,
    ):
        if not isinstance(prior, Prior):
            raise TypeError(f"prior: expected an lfi prior, got {type(prior).__name__}")
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha: expected a finite number >= 0, got {alpha!r}")
        if bins is not None and (not isinstance(bins, (int, np.integer)) or bins < 2):
            raise ValueError(f"bins: expected an integer >= 2 or None, got {bins!r}")
        self.prior, self.alpha, self.bins, self.progress = prior, float(alpha), bins, progress
        self.method = "scandal" if alpha > 0 else "nde"
        train = {k: options.pop(k) for k in list(options) if k in TRAIN_DEFAULTS}
        self.train_options = {**TRAIN_DEFAULTS, **GOLD_TRAIN_DEFAULTS, **train}
        if bins is not None:
            mlp = {"width": 100, "depth": 2, "activation": "tanh"}
            unknown = set(options) - set(mlp)
            if unknown:
                raise ValueError(
                    f"options: unknown {sorted(unknown)} for bins=K; valid {sorted(mlp)}"
                )
            self.net_options = {"kind": "categorical", "bins": int(bins), **mlp, **options}
        else:  # smooth conditioners: the score term differentiates the density in θ
            options = {"activation": "tanh", **options}
            flow_config(1, 1, kind=flow, **options)  # validate now
            self.net_options = {"kind": "flow", "flow_options": {"kind": flow, **options}}
        self.model = self.stand = self.config = self.history = None

    def fit(self, data: GoldData, seed: Seed = 0) -> SCANDAL:
        """Train on θ ~ prior, x ~ p(x | θ) with the joint score (``data.score``). Rows with
        ``data.y == 1`` (ratio data: x drawn at ``data.theta_ref``) enter the likelihood term as
        pairs (θ_ref, x) and not the score term, whose t is at another θ than x was drawn at."""
        data = check_gold(data, self.prior, self.method, log_r=False, score=self.alpha > 0, y=False)
        if data.y is not None and (data.y == 1).any():
            if data.theta_ref is None:
                raise ValueError("data.theta_ref: rows with y = 1 were drawn at theta_ref; give it")
            theta = np.array(data.theta)
            theta[data.y == 1] = np.asarray(data.theta_ref, np.float32)
            data = GoldData(theta, data.x, data.score, data.log_r, data.y, data.theta_ref)
        n, d = len(data.theta), self.prior.dim
        if self.bins is not None:
            k = data.x
            if k.shape[1] != 1 or not np.all((k == np.round(k)) & (k >= 0) & (k < self.bins)):
                raise ValueError(f"data.x: bins={self.bins} needs integers in 0..{self.bins - 1}")
        u = np.asarray(self.prior.to_unconstrained(data.theta))
        x_stats = data.x if self.bins is None else np.zeros((n, 0))
        stand = Standardizer.fit(u, x_stats)
        if self.bins is not None:  # categorical: x stays the integer itself
            stand = Standardizer(stand.theta_mean, stand.theta_std, jnp.zeros(1), jnp.ones(1))
        a, b = stand.z_theta(jnp.asarray(u)), stand.z_x(jnp.asarray(data.x))
        if self.bins is not None:
            config = {**self.net_options, "cond_dim": d}
        else:
            config = {
                "kind": "flow",
                "flow": flow_config(data.x.shape[1], d, **self.net_options["flow_options"]),
            }
        y = np.zeros(n, np.float32) if data.y is None else np.asarray(data.y, np.float32)
        score = np.zeros((n, d), np.float32) if data.score is None else data.score
        batch = (a, b, jnp.asarray(score), theta_jacobian(self.prior, stand, a), jnp.asarray(1 - y))
        key = as_key(seed)
        out = copy.copy(self)
        out.config, out.stand = config, stand
        out.model, out.history = fit(
            _build(config, key),
            scandal_loss(float(self.alpha)),
            batch,
            seed=key,
            progress=self.progress,
            **self.train_options,
        )
        self.history = out.history
        return out

    def _check_fitted(self) -> None:
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__}: not fitted yet; call .fit first")

    @property
    def dim_x(self) -> int:
        self._check_fitted()
        return 1 if self.config["kind"] == "categorical" else self.config["flow"]["dim"]

    def _trials(self, x: Any) -> jax.Array:
        arr, dim = np.asarray(x, np.float32), self.dim_x
        arr = arr[None] if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.shape[1] != dim or arr.shape[0] == 0:
            raise ValueError(
                f"x: expected one observation ({dim},) or k trials (k, {dim}), got {np.shape(x)}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError("x: the observation contains NaN or inf")
        if self.bins is not None and not np.all(
            (arr == np.round(arr)) & (arr >= 0) & (arr < self.bins)
        ):
            raise ValueError(f"x: bins={self.bins} needs integers in 0..{self.bins - 1}")
        return jnp.asarray(arr)

    def log_likelihood(self, x: Any, theta: Any) -> jax.Array:
        """Σ_trials log p̂(x_i | θ) for one observation (dx,) or k i.i.d. trials (k, dx), at θ
        of shape (..., dθ): shape (...); −inf outside the prior's support."""
        self._check_fitted()
        trials = self._trials(x)
        theta = check_theta(theta, self.prior.dim)
        flat = theta.reshape(-1, self.prior.dim)
        log_jac = trials.shape[0] * jnp.sum(jnp.log(self.stand.x_std))
        out = _loglik(self.model, self.stand, self.prior, trials, flat, log_jac)
        return out.reshape(theta.shape[:-1])

    log_ratio = log_likelihood

    def posterior(self, sampler: str = "imh", **sampler_options: Any) -> Any:
        """prior × p̂ as an :class:`lfi.LikelihoodPosterior` (MCMC; not saved to a file)."""
        from lfi.posteriors.tractable import LikelihoodPosterior

        self._check_fitted()
        model, stand, prior = self.model, self.stand, self.prior

        def log_likelihood(theta, x):
            zx = stand.z_x(jnp.atleast_2d(x))
            a = stand.z_theta(prior.to_unconstrained(theta))
            m = paramax.unwrap(model)
            return jnp.sum(jax.vmap(lambda b: m.log_prob(b, a))(zx))

        return LikelihoodPosterior(
            self.prior, log_likelihood, dim_x=self.dim_x, sampler=sampler, **sampler_options
        )

    def save(self, path: str) -> None:
        """Config JSON + arrays (no pickle); read back with :meth:`SCANDAL.load`."""
        self._check_fitted()
        config = {
            "class": "SCANDAL",
            "prior": self.prior.to_config(),
            "alpha": self.alpha,
            "bins": self.bins,
            "net": self.config,
            "train_options": self.train_options,
            "history": None if self.history is None else self.history.to_dict(),
        }
        arrays = {**module_arrays(self.model, "net"), **module_arrays(self.stand, "stand")}
        write_archive(path, config, arrays)

    @classmethod
    def load(cls, path: str) -> SCANDAL:
        """The fitted estimator saved at ``path`` (never unpickles)."""
        config, arrays = read_archive(path, expect="SCANDAL")
        net = config["net"]
        if net["kind"] == "categorical":
            flow, options = "nsf", {k: net[k] for k in ("width", "depth", "activation")}
        else:
            flow = net["flow"]["kind"]
            options = {k: v for k, v in net["flow"].items() if k not in ("kind", "dim", "cond_dim")}
        out = cls(
            prior_from_config(config["prior"]),
            config["alpha"],
            bins=config["bins"],
            flow=flow,
            progress=False,
            **config["train_options"],
            **options,
        )
        out.config = net
        out.model = fill_module(_build(net, as_key(0)), arrays, "net")
        stats = [jnp.zeros(np.shape(arrays.get(f"stand_{i:04d}"))) for i in range(4)]
        theta_dim = (out.prior.dim,)
        if (
            stats[0].shape != theta_dim
            or stats[1].shape != theta_dim
            or (stats[2].shape != stats[3].shape)
        ):
            raise ValueError(
                f"file: z-scoring arrays of shapes {[a.shape for a in stats]} do not fit a "
                f"{out.prior.dim}-d θ"
            )
        out.stand = fill_module(Standardizer(*stats), arrays, "stand")
        out.history = History.from_dict(config["history"]) if config.get("history") else None
        return out
