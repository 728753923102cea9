"""The likelihood-ratio trick: a classifier's logit estimates a log likelihood ratio.

Binary cross-entropy between n1 draws x ~ p(x | θ1) (label 1) and n0 draws x ~ p(x | θ0) (label 0)
is minimised by the logit f(x) = log n1 p(x | θ1) − log n0 p(x | θ0), so
log p(x | θ1) / p(x | θ0) = f(x) − log(n1 / n0) (Cranmer, Pavez & Louppe 2015, arXiv:1506.02169).

- :class:`ClassifierRatio`: one ratio between two fixed hypotheses.
- :class:`CARL`: the parametrised classifier A(x, θ) ≈ log p(x | θ) / p(x | θ_ref) for every θ of
  the prior at once: pairs (θ, x ~ p(x | θ)) against (θ, x ~ p(x | θ_ref)) with the same θ's, so
  only x carries the label (Cranmer et al. 2015; parametrised networks, Baldi et al. 2016,
  arXiv:1601.07913; the CARL loss of Brehmer, Louppe, Pavez & Cranmer 2018, arXiv:1805.12244).
  p(x | θ_ref) does not depend on θ, so Σ_trials A is the log likelihood up to a constant:
  :meth:`CARL.mle` maximises it, :meth:`CARL.posterior` adds the log prior for MCMC.

x is z-scored on the pooled training data; θ is mapped to the prior's unconstrained space and
z-scored. Training rows with NaN/inf are dropped with a warning giving their count, as for every
lfi estimator; an observation with NaN/inf raises ValueError. ``fit`` returns a fitted copy (the
estimator stays reusable and keeps the last ``history``), which saves to one file (JSON config +
arrays, never pickle) read back by the class's ``load``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x0, x1 = rng.normal(0, 1, (1000, 1)), rng.normal(1, 1, (1000, 1))  # exact: x − 1/2
>>> ratio = ClassifierRatio(classifier="mlp", width=16, batch_size=100, learning_rate=3e-3,
...                         max_epochs=10, progress=False).fit(x0, x1, seed=0)
>>> log_r = np.asarray(ratio.log_ratio([-1.0, 0.5, 2.0]))
>>> bool(np.all(np.abs(log_r - [-1.5, 0.0, 1.5]) < 0.5)), log_r.shape
(True, (3,))
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import paramax

from lfi._cores import rowwise
from lfi._rng import Seed, as_key
from lfi.augment import check_theta_ref
from lfi.methods.npe import TRAIN_DEFAULTS, check_training_data
from lfi.nets.classifiers import build_classifier, classifier_config
from lfi.posteriors.base import check_theta
from lfi.posteriors.direct import Standardizer
from lfi.posteriors.io import fill_module, module_arrays, read_archive, write_archive
from lfi.posteriors.unnormalized import UnnormalizedPosterior
from lfi.priors import Prior, prior_from_config
from lfi.simulate import run_simulator, simulate
from lfi.train import History, fit

__all__ = ["CARL", "ClassifierRatio", "bce_loss", "simulate_carl_data"]
NET_OPTIONS = ("width", "depth", "activation")


@rowwise
def bce_loss(classifier: Any, batch: tuple, key: Any) -> Any:
    """Binary cross-entropy on the logits of standardised ``(a, b, label)`` rows."""
    a, b, y = batch
    logits = jax.vmap(paramax.unwrap(classifier))(a, b)
    return jnp.mean(y * jax.nn.softplus(-logits) + (1 - y) * jax.nn.softplus(logits))


def _rows(name: str, value: Any, dim: int | None = None) -> np.ndarray:
    """Training rows (n, d) as float32; rows with NaN/inf are dropped with a counted warning."""
    arr = np.asarray(value, np.float32)
    arr = arr[:, None] if arr.ndim == 1 else arr
    if arr.ndim != 2 or arr.shape[0] == 0 or (dim is not None and arr.shape[1] != dim):
        raise ValueError(f"{name}: expected shape (n, {dim or 'dim_x'}), got {np.shape(value)}")
    ok = np.all(np.isfinite(arr), axis=1)
    if not ok.all():
        msg = f"excluded {int((~ok).sum())} of {ok.size} rows with NaN/inf values from training"
        warnings.warn(f"{name}: {msg}", stacklevel=3)
    if ok.sum() < 5:
        raise ValueError(f"{name}: need at least 5 finite rows, got {int(ok.sum())}")
    return arr[ok]


class _Estimator:
    """Options, training and the file round trip shared by both estimators."""

    net = stand = config = history = None
    offset = 0.0  # log(n1 / n0): subtracted from the logit

    def _set_options(self, options: dict) -> None:
        self.options = {"classifier": "resnet", **options}
        self.progress = bool(self.options.pop("progress", True))
        unknown = set(self.options) - {*TRAIN_DEFAULTS, *NET_OPTIONS, "classifier"}
        if unknown:
            valid = sorted([*TRAIN_DEFAULTS, *NET_OPTIONS, "classifier", "progress"])
            raise ValueError(f"options: unknown {sorted(unknown)}; valid are {valid}")
        net = {k: v for k, v in self.options.items() if k in NET_OPTIONS}
        self.classifier_options = {"kind": self.options["classifier"], **net}
        classifier_config(1, 1, **self.classifier_options)  # validate the kind now
        train = {k: v for k, v in self.options.items() if k in TRAIN_DEFAULTS}
        self.train_options = {**TRAIN_DEFAULTS, **train}

    def _train(self, config, stand, data, key, offset, loss=bce_loss):  # -> a fitted copy
        out = copy.copy(self)
        out.config, out.stand, out.offset = config, stand, offset
        net, opts = build_classifier(config, key), self.train_options
        out.net, out.history = fit(net, loss, data, seed=key, progress=self.progress, **opts)
        self.history = out.history  # as the other estimators keep the last fit's history
        if out.history.best_epoch < 0:
            name = type(self).__name__
            warnings.warn(f"{name}: validation loss never improved; untrained", stacklevel=3)
        return out

    def _check_fitted(self) -> None:
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}: not fitted yet; call .fit first")

    def _file_config(self) -> dict:
        return {}

    def save(self, path: str) -> None:
        """Write config JSON + arrays (no pickle); read back with the class's ``load``."""
        self._check_fitted()
        config = {
            "class": type(self).__name__,
            "options": {**self.options, "progress": False},
            "net": self.config,
            "offset": self.offset,
            "history": None if self.history is None else self.history.to_dict(),
            **self._file_config(),
        }
        arrays = {**module_arrays(self.net, "net"), **module_arrays(self.stand, "stand")}
        if getattr(self, "theta_box", None) is not None:
            arrays["box_low"], arrays["box_high"] = (np.asarray(b) for b in self.theta_box)
        write_archive(path, config, arrays)

    @classmethod
    def load(cls, path: str) -> Any:
        """The fitted estimator saved at ``path`` (never unpickles)."""
        config, arrays = read_archive(path, expect=cls.__name__)
        out = cls._unfitted(config)
        out.config, out.offset = config["net"], float(config["offset"])
        out.net = fill_module(build_classifier(out.config), arrays, "net")
        stats = [jnp.zeros(np.shape(arrays.get(f"stand_{i:04d}"))) for i in range(4)]
        dims = sorted(int(np.size(a)) for a in stats[::2])
        if (
            stats[0].shape != stats[1].shape
            or stats[2].shape != stats[3].shape
            or dims != sorted((out.config["dim_a"], out.config["dim_b"]))
        ):
            raise ValueError(
                f"file: z-scoring arrays of shapes {[a.shape for a in stats]} do not fit the "
                f"classifier's inputs ({out.config['dim_a']}, {out.config['dim_b']})"
            )
        out.stand = fill_module(Standardizer(*stats), arrays, "stand")
        out.history = History.from_dict(config["history"]) if config.get("history") else None
        if "box_low" in arrays:
            out.theta_box = (arrays["box_low"], arrays["box_high"])
        return out


@eqx.filter_jit
def _x_logits(net, stand, x):
    return jax.vmap(paramax.unwrap(net))(stand.z_x(x), jnp.zeros((x.shape[0], 0)))


class ClassifierRatio(_Estimator):
    """r̂(x) = p(x | θ1) / p(x | θ0) from a classifier of x0 ~ p(x | θ0) vs x1 ~ p(x | θ1).

    Options: ``classifier`` ("resnet" or "mlp"), ``width``, ``depth``, the training options of
    :data:`lfi.methods.npe.TRAIN_DEFAULTS`, ``progress``. See the module docstring.
    """

    def __init__(self, **options: Any):
        self._set_options(options)

    @classmethod
    def _unfitted(cls, config: dict) -> ClassifierRatio:
        return cls(**config["options"])

    @property
    def dim_x(self) -> int:
        self._check_fitted()
        return self.config["dim_a"]

    def fit(self, x0: Any, x1: Any, seed: Seed = 0) -> ClassifierRatio:
        """Train on x0 (n0, dx) labelled 0 and x1 (n1, dx) labelled 1; returns a fitted copy."""
        x0 = _rows("x0", x0)
        x1 = _rows("x1", x1, x0.shape[1])
        x = np.concatenate([x0, x1])
        stand = Standardizer.fit(np.zeros((len(x), 0)), x)
        config = classifier_config(x.shape[1], 0, **self.classifier_options)
        y = np.concatenate([np.zeros(len(x0)), np.ones(len(x1))])
        data = (stand.z_x(jnp.asarray(x)), jnp.zeros((len(x), 0)), jnp.asarray(y, jnp.float32))
        return self._train(config, stand, data, as_key(seed), math.log(len(x1) / len(x0)))

    def log_ratio(self, x: Any) -> jax.Array:
        """log p(x | θ1) / p(x | θ0): shape (...) for x of shape (..., dx); for dx = 1 a flat
        array of n values is n points."""
        dim = self.dim_x
        arr = np.asarray(x, np.float32)
        arr = arr[:, None] if arr.ndim == 1 and dim == 1 else arr
        if arr.ndim == 0 or arr.shape[-1] != dim:
            raise ValueError(f"x: expected shape (n, {dim}) or ({dim},), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("x: contains NaN or inf")
        out = _x_logits(self.net, self.stand, jnp.asarray(arr.reshape(-1, dim))) - self.offset
        return out.reshape(arr.shape[:-1])


def _sum_logits(net: Any, stand: Any, trials: Any, z_theta: Any) -> Any:
    return jnp.sum(jax.vmap(lambda xi: net(z_theta, stand.z_x(xi)))(trials))


@eqx.filter_jit
def _carl_logits(net, stand, prior, trials, theta):
    net, u = paramax.unwrap(net), prior.to_unconstrained(theta)
    out = jax.vmap(lambda ui: _sum_logits(net, stand, trials, stand.z_theta(ui)))(u)
    return jnp.where(prior.in_support(theta), out, -jnp.inf)


@eqx.filter_jit
def _climb(net, stand, trials, z0, steps, learning_rate, z_low, z_high):
    """Adam on −Σ_trials logit in standardised unconstrained space, all starts at once, each
    step projected back into [z_low, z_high] (the training θ's box: beyond it the network
    extrapolates, and a ReLU logit grows without bound)."""
    net = paramax.unwrap(net)
    opt = optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=0.01))
    grad = jax.vmap(jax.grad(lambda z: -_sum_logits(net, stand, trials, z)))

    def step(carry, _):
        z, state = carry
        updates, state = opt.update(grad(z), state)
        z = jnp.clip(optax.apply_updates(z, updates), z_low, z_high)
        return (z, state), None

    (z, _), _ = jax.lax.scan(step, (z0, opt.init(z0)), None, length=steps)
    return z, jax.vmap(lambda zi: _sum_logits(net, stand, trials, zi))(z)


class CARL(_Estimator):
    """A(x, θ) ≈ log p(x | θ) / p(x | θ_ref), a classifier parametrised by θ (see module doc).

    ``CARL(prior, theta_ref).fit(theta, x, x_ref, seed=0)``: θ ~ prior with x ~ p(x | θ), and
    x_ref ~ p(x | θ_ref) (:func:`simulate_carl_data` runs both). Options as
    :class:`ClassifierRatio`.

    >>> import lfi
    >>> prior = lfi.Normal([0.0], [1.0])
    >>> sim = lambda theta, rng: theta + 0.3 * rng.standard_normal(theta.shape)
    >>> data = simulate_carl_data(sim, prior, [0.0], 500, seed=0, progress=False)
    >>> carl = CARL(prior, [0.0], classifier="mlp", width=16, max_epochs=3, progress=False)
    >>> carl = carl.fit(*data, seed=0)
    >>> carl.log_ratio([0.5], [[0.0], [0.5]]).shape, carl.mle([0.5], steps=50).shape
    ((2,), (1,))
    """

    method = "carl"

    def __init__(self, prior: Prior, theta_ref: Any, **options: Any):
        if not isinstance(prior, Prior):
            raise TypeError(f"prior: expected an lfi prior, got {type(prior).__name__}")
        self.prior, self.theta_ref = prior, check_theta_ref(prior, theta_ref)
        self._set_options(options)

    @classmethod
    def _unfitted(cls, config: dict) -> CARL:
        return cls(prior_from_config(config["prior"]), config["theta_ref"], **config["options"])

    def _file_config(self) -> dict:
        return {"prior": self.prior.to_config(), "theta_ref": self.theta_ref.tolist()}

    @property
    def dim_x(self) -> int:
        self._check_fitted()
        return self.config["dim_b"]

    def fit(self, theta: Any, x: Any, x_ref: Any, seed: Seed = 0) -> CARL:
        """Train on (θ_i, x_i) labelled 1 and (θ_j, x_ref_j) labelled 0; returns a fitted copy.

        The θ_j are the training θ's shuffled (each reused ⌈m/n⌉ times at most when there are
        more reference rows m than pairs n), so θ alone cannot tell the classes apart.
        """
        theta, x = check_training_data(self.prior, theta, x)
        x_ref = _rows("x_ref", x_ref, x.shape[1])
        n, m = len(x), len(x_ref)
        key_pair, key_net = jax.random.split(as_key(seed))
        reuse = np.resize(np.arange(n), max(n, m))
        idx = np.asarray(jax.random.permutation(key_pair, reuse))[:m]
        u = np.asarray(self.prior.to_unconstrained(theta))
        stand = Standardizer.fit(u, np.concatenate([x, x_ref]))
        a = stand.z_theta(jnp.asarray(np.concatenate([u, u[idx]])))
        b = stand.z_x(jnp.asarray(np.concatenate([x, x_ref])))
        config = classifier_config(self.prior.dim, x.shape[1], **self.classifier_options)
        y = jnp.asarray(np.concatenate([np.ones(n), np.zeros(m)]), jnp.float32)
        fitted = self._train(config, stand, (a, b, y), key_net, math.log(n / m))
        fitted.theta_box = (u.min(0), u.max(0))  # where posterior() stops extrapolating
        return fitted

    def _trials(self, x: Any) -> jax.Array:
        arr, dim = np.asarray(x, np.float32), self.dim_x
        arr = arr[None] if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.shape[1] != dim or arr.shape[0] == 0:
            msg = f"one observation ({dim},) or k i.i.d. trials (k, {dim}), got {np.shape(x)}"
            raise ValueError(f"x: expected {msg}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("x: the observation contains NaN or inf")
        return jnp.asarray(arr)

    def log_ratio(self, x: Any, theta: Any) -> jax.Array:
        """Σ_trials log r̂(x_i | θ, θ_ref) for one observation x (dx,) or k trials (k, dx), at θ
        of shape (..., dθ): shape (...); -inf where θ lies outside the prior's support."""
        trials = self._trials(x)
        theta = check_theta(theta, self.prior.dim)
        flat = theta.reshape(-1, self.prior.dim)
        out = _carl_logits(self.net, self.stand, self.prior, trials, flat)
        return (out - trials.shape[0] * self.offset).reshape(theta.shape[:-1])

    def mle(
        self,
        x: Any,
        seed: Seed = 0,
        num_starts: int = 10,
        steps: int = 300,
        num_init: int = 1000,
        learning_rate: float = 0.05,
    ) -> jax.Array:
        """θ̂ = argmax_θ Σ_trials log r̂(x_i | θ): Adam (cosine-decayed ``learning_rate``) for
        ``steps`` from the best ``num_starts`` of ``num_init`` prior draws, in the prior's
        standardised unconstrained space (the MLE does not depend on the parametrisation),
        within the training θ's box (``theta_box``), where r̂ was fitted."""
        trials = self._trials(x)
        if not 1 <= int(num_starts) <= int(num_init):
            raise ValueError(f"num_starts: expected 1..num_init ({num_init}), got {num_starts}")
        theta0 = self.prior.sample(int(num_init), seed=as_key(seed))
        best = jnp.argsort(-self.log_ratio(trials, theta0))[: int(num_starts)]
        box = getattr(self, "theta_box", None)
        z_low, z_high = (
            (jnp.full(self.prior.dim, -jnp.inf), jnp.full(self.prior.dim, jnp.inf))
            if box is None
            else (self.stand.z_theta(jnp.asarray(b, jnp.float32)) for b in box)
        )
        z0 = jnp.clip(self.stand.z_theta(self.prior.to_unconstrained(theta0[best])), z_low, z_high)
        z, value = _climb(
            self.net, self.stand, trials, z0, int(steps), float(learning_rate), z_low, z_high
        )
        u = z[jnp.argmax(value)] * self.stand.theta_std + self.stand.theta_mean
        return self.prior.from_unconstrained(u)

    def posterior(self, sampler: str = "imh", **sampler_options: Any) -> UnnormalizedPosterior:
        """prior × r̂ ∝ the posterior, sampled by MCMC (``kind="ratio"``, ``method="carl"``); r̂
        is not extrapolated beyond the training θ (``theta_box``; see
        :mod:`lfi.posteriors.unnormalized`)."""
        self._check_fitted()
        args = (self.prior, self.net, self.stand, self.config, self.dim_x)
        options = dict(sampler=sampler, sampler_options=sampler_options, history=self.history)
        options["theta_box"] = getattr(self, "theta_box", None)
        return UnnormalizedPosterior(*args, kind="ratio", method=self.method, **options)


def simulate_carl_data(
    simulator: Any, prior: Prior, theta_ref: Any, n: int, seed: Seed = 0, *, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(theta, x, x_ref)`` for :meth:`CARL.fit`: n prior draws with their simulations, and n
    simulations at ``theta_ref`` (simulator forms as :func:`lfi.simulate`)."""
    ref = check_theta_ref(prior, theta_ref)
    key_sim, key_ref = jax.random.split(as_key(seed))
    theta, x = simulate(simulator, prior, n, seed=key_sim, progress=progress)
    x_ref, _ = run_simulator(simulator, np.tile(ref, (int(n), 1)), key_ref, progress=progress)
    return theta, x, x_ref
