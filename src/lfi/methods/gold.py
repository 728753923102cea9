"""The mining-gold ratio and score methods: CARL, ROLR, RASCAL, CASCAL, ALICE, ALICES, SALLY.

Brehmer, Louppe, Pavez & Cranmer, "Mining gold from implicit models to improve likelihood-free
inference" (PNAS 2020, arXiv:1805.12244); Brehmer, Cranmer, Louppe & Pavez, "Constraining
effective field theories with machine learning" (arXiv:1805.00020, 1805.00013); ALICE(S):
Stoye, Brehmer, Louppe, Pavez & Cranmer (arXiv:1808.00973).

Every ratio method trains the same network A(x, θ) ≈ log r(x | θ, θ_ref) = log p(x | θ) /
p(x | θ_ref), parametrised by θ, on :class:`lfi.augment.GoldData` rows: y = 0 where x was drawn
at θ, y = 1 where it was drawn at θ_ref, each with the joint log-ratio log r(x, z | θ, θ_ref)
and the joint score t(x, z | θ) of its own latent path. Only the loss differs:

========= ============================================================== ============
method    loss (means over the batch; r̂ = exp A, σ the logistic)        needs
========= ============================================================== ============
carl      cross-entropy of y against σ(A)                                 y
rolr      y (r̂ − r)² + (1 − y)(1/r̂ − 1/r)²                              log r
rascal    rolr + α (1 − y) ‖t − ∇θ A‖²                                    log r, t
cascal    carl + α (1 − y) ‖t − ∇θ A‖²                                    t
alice     cross-entropy against the soft label σ(log r(x, z))            log r
alices    alice + α (1 − y) ‖t − ∇θ A‖²                                   log r, t
========= ============================================================== ============

The joint quantities are unbiased targets: the minimisers are the true log r(x | θ, θ_ref) and
score. The score term is on rows drawn at θ (y = 0), where E[t(x, z | θ) | x] = t(x | θ), and is
taken in θ itself (not the network's standardised inputs) and summed over θ's components (the
papers' ‖·‖², α = 0.5 on the Galton board); MadMiner's loss averages over the components instead,
so its α (default 1) is lfi's α times dθ. In ROLR/RASCAL, exp is taken of values
clipped to ±30 so that one heavy-tailed joint ratio cannot overflow float32.

The fitted estimator is a :class:`lfi.CARL`: ``log_ratio(x, θ)`` summed over i.i.d. trials,
``mle``, ``posterior`` for MCMC, save/load without pickle; the frequentist tools of
:mod:`lfi.frequentist` take it as it is. The networks default to tanh activations: the score term
differentiates A in θ, and ReLU nets have piecewise-constant gradients.

:class:`SALLY` regresses t(x, z | θ_ref) on x drawn at θ_ref: t̂(x) is the locally sufficient
summary statistic (score) at θ_ref. :meth:`SALLY.grid_posterior` does the inference step of
both methods on a grid of simulations: SALLY estimates the density of t̂(x) at each θ, SALLINO
the density ratio of the one-dimensional h_θ(x) = (θ − θ_ref)·t̂(x) at θ and at θ_ref.

>>> import lfi
>>> from lfi.tasks import get
>>> task = get("madminer_toy")
>>> data = lfi.simulate_gold(task.simulator, task.prior, 2000, theta_ref=[0.0], seed=0,
...                          progress=False)
>>> rascal = GoldRatio(task.prior, [0.0], method="rascal", max_epochs=5, progress=False)
>>> rascal = rascal.fit(data, seed=0)
>>> rascal.log_ratio([[0.5], [1.0]], [[0.0], [1.0]]).shape
(2,)
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import paramax

from lfi._cores import rowwise
from lfi._rng import Seed, as_key
from lfi.augment import GoldData, check_theta_ref
from lfi.methods.density import GridPosterior
from lfi.methods.npe import TRAIN_DEFAULTS
from lfi.methods.ratio import CARL
from lfi.nets.classifiers import classifier_config
from lfi.nets.resnet import activation
from lfi.posteriors.direct import Standardizer
from lfi.posteriors.io import fill_module, module_arrays, read_archive, write_archive
from lfi.priors import Prior, prior_from_config
from lfi.train import fit

__all__ = ["GOLD_RATIO_METHODS", "GoldRatio", "SALLY", "check_gold", "gold_loss", "theta_jacobian"]

GOLD_RATIO_METHODS = ("carl", "rolr", "rascal", "cascal", "alice", "alices")
_BASE = {"carl": "carl", "cascal": "carl", "rolr": "rolr", "rascal": "rolr"}
_BASE.update(alice="alice", alices="alice")
_SCORE = ("rascal", "cascal", "alices")
_CLIP = 30.0
# the mining-gold methods are meant for small training sets: patience of at least 1000 optimizer
# steps (with 200 rows an epoch is 3 steps; 20 epochs of patience stopped RASCAL at 200 Galton
# samples far from converged: error 0.031 vs 0.008 with longer patience)
GOLD_TRAIN_DEFAULTS = {"patience_steps": 1000}


def check_gold(
    data: Any, prior: Prior, method: str, *, log_r: bool, score: bool, y: bool
) -> GoldData:
    """Validate :class:`GoldData` for ``method``; drop invalid rows with a counted warning.

    Invalid: NaN or ±inf in θ, x or y, a NaN joint log-ratio (±inf is kept: r = 0 or 1/r = 0
    are exact targets, clipped to ±30 in the losses). A non-finite joint score does not drop
    its row (dropping by a rule that depends on y, or on x through the score, would bias the
    ratio or likelihood term): the score becomes NaN and :func:`score_term` leaves it out,
    with a counted warning where the score term would have used it. Only SALLY, which
    regresses the score itself, drops such rows."""
    if not isinstance(data, GoldData):
        raise TypeError(
            f"data: expected lfi.GoldData (from lfi.simulate_gold / lfi.simulate(..., "
            f"augmented=True), or built from your own arrays), got {type(data).__name__}"
        )
    need = {"log_r": log_r, "score": score, "y": y}
    hint = {
        "log_r": "the joint log-ratio log r(x, z | θ, θ_ref)",
        "score": "the joint score t(x, z | θ)",
        "y": "labels y (0: x drawn at θ, 1: drawn at θ_ref)",
    }
    for name, needed in need.items():
        if needed and getattr(data, name) is None:
            raise ValueError(
                f"data.{name}: method {method!r} needs {hint[name]}, and these simulations have "
                "none; simulate them with lfi.simulate_gold (an augmented simulator) or compute "
                "them in your simulator"
            )
    n, d = len(data.theta), prior.dim
    theta = np.asarray(data.theta, np.float32).reshape(n, -1)
    x = np.asarray(data.x, np.float32).reshape(n, -1)
    cols = {"theta": theta, "x": x}
    if theta.shape[1] != d:
        raise ValueError(f"data.theta: expected shape (n, {d}), got {np.shape(data.theta)}")
    if score:
        cols["score"] = np.asarray(data.score, np.float32).reshape(n, -1)
        if cols["score"].shape[1] != d:
            raise ValueError(f"data.score: expected shape (n, {d}), got {np.shape(data.score)}")
    for name in ("log_r", "y"):
        if need[name] or (name == "y" and data.y is not None):
            cols[name] = np.asarray(getattr(data, name), np.float32).reshape(-1)
            if cols[name].shape != (n,):
                raise ValueError(f"data.{name}: expected shape ({n},), got {cols[name].shape}")
    if "y" in cols and not np.all((cols["y"] == 0) | (cols["y"] == 1)):
        raise ValueError("data.y: expected labels 0 (x drawn at θ) or 1 (drawn at θ_ref)")
    ok = np.ones(n, bool)
    for name, a in cols.items():
        if name == "log_r":  # ±inf is a valid joint ratio (r = 0 or 1/r = 0), clipped in losses
            ok &= ~np.isnan(a)
        elif name == "score" and method != "sally":
            # the row stays for the ratio / likelihood term (dropping it by a rule that depends
            # on y, or on x through the score, would bias that term); a non-finite score is NaN
            # and score_term leaves it out. Rows drawn at θ_ref (y = 1) never use theirs.
            usable = np.all(np.isfinite(a), axis=1)
            if "y" in cols:
                usable |= cols["y"] == 1
            if not usable.all():
                warnings.warn(
                    f"data.score: {int((~usable).sum())} of {n} rows have a non-finite joint "
                    "score; they stay in the ratio/likelihood term and are left out of the "
                    "score term",
                    stacklevel=3,
                )
            cols["score"] = np.where(np.isfinite(a), a, np.nan).astype(np.float32)
        else:
            ok &= np.all(np.isfinite(a.reshape(n, -1)), axis=1)
    if not ok.all():
        warnings.warn(
            f"data: excluded {int((~ok).sum())} of {n} rows with NaN/inf in "
            f"{'/'.join(cols)} from training",
            stacklevel=3,
        )
    outside = ~np.asarray(prior.in_support(theta)) & ok
    if outside.any():
        raise ValueError(f"data.theta: {int(outside.sum())} rows lie outside the prior's support")
    if ok.sum() < 10:
        raise ValueError(f"data: need at least 10 valid rows, got {int(ok.sum())}")
    get = lambda k: cols[k][ok] if k in cols else None  # noqa: E731
    return GoldData(get("theta"), get("x"), get("score"), get("log_r"), get("y"), data.theta_ref)


def theta_jacobian(prior: Prior, stand: Standardizer, a: jax.Array) -> jax.Array:
    """(J⁻¹)ᵀ per row, J = ∂θ/∂a for the network input a = z-scored unconstrained θ, so that
    ∇θ f = (J⁻¹)ᵀ ∇a f."""

    def theta_of(ai):
        return prior.from_unconstrained(ai * stand.theta_std + stand.theta_mean)

    jac = jax.vmap(jax.jacfwd(theta_of))(a)
    return jnp.swapaxes(jnp.linalg.inv(jac), -1, -2)


def score_term(g: jax.Array, t: jax.Array, jinv_t: jax.Array, mask: jax.Array) -> jax.Array:
    """mean mask · ‖t − ∇θ f‖², with ∇θ f = (J⁻¹)ᵀ ∇a f from the gradient ``g`` in the network's
    input a (see :func:`theta_jacobian`). Rows whose t is not finite (a joint score the
    simulator could not give, kept for the other terms) count as masked."""
    usable = jnp.all(jnp.isfinite(t), axis=-1)
    t = jnp.where(usable[:, None], t, 0.0)
    t_hat = jnp.einsum("nij,nj->ni", jinv_t, g)
    return jnp.mean(mask * usable * jnp.sum((t - t_hat) ** 2, -1))


@functools.cache
def gold_loss(method: str, alpha: float):
    """The loss ``loss(net, batch, key)`` of a ratio method on standardised batches
    ``(a, b, y, log_r, score, jinv_t, offset)`` (one function per (method, α), so compiled
    epochs are reused)."""
    base, with_score = _BASE[method], method in _SCORE

    @rowwise
    def loss(net, batch, key):
        a, b, y, log_r, t, jinv_t, c = batch
        net = paramax.unwrap(net)
        if with_score:
            f, g = jax.vmap(jax.value_and_grad(net))(a, b)
        else:
            f = jax.vmap(net)(a, b)
        logit = f + c  # of "x drawn at θ", with the prior odds log(n0 / n1) of the classes
        if base == "carl":
            main = jnp.mean((1 - y) * jax.nn.softplus(-logit) + y * jax.nn.softplus(logit))
        elif base == "alice":
            s = jax.nn.sigmoid(log_r + c)
            main = jnp.mean(s * jax.nn.softplus(-logit) + (1 - s) * jax.nn.softplus(logit))
        else:
            lr_hat, lr = jnp.clip(f, -_CLIP, _CLIP), jnp.clip(log_r, -_CLIP, _CLIP)
            main = jnp.mean(
                y * (jnp.exp(lr_hat) - jnp.exp(lr)) ** 2
                + (1 - y) * (jnp.exp(-lr_hat) - jnp.exp(-lr)) ** 2
            )
        if with_score:
            main = main + alpha * score_term(g, t, jinv_t, 1 - y)
        return main

    return loss


class GoldRatio(CARL):
    """A(x, θ) ≈ log p(x | θ)/p(x | θ_ref) trained with a mining-gold loss (see module doc).

    ``GoldRatio(prior, theta_ref, method="rascal", alpha=1.0, **options).fit(data, seed=0)``
    with ``data`` a :class:`lfi.GoldData` (``lfi.simulate_gold``). ``method`` is one of
    :data:`GOLD_RATIO_METHODS`; ``alpha`` weighs the score term of rascal/cascal/alices.
    Options as :class:`lfi.CARL` (``classifier``, ``width``, ``depth``, ``activation`` (tanh
    here), training options, ``progress``). ``anchored=True`` (default) builds the identity
    r(x | θ_ref, θ_ref) = 1 into the network: A(x, θ) = g(x, θ) − g(x, θ_ref), so the loss
    only has to learn how the ratio moves away from θ_ref (the score terms supervise exactly
    that; without the anchor their gain on the Galton board was lost to errors of A(x, θ_ref)).
    """

    def __init__(
        self,
        prior: Prior,
        theta_ref: Any,
        method: str = "rascal",
        alpha: float = 1.0,
        **options: Any,
    ):
        if method not in GOLD_RATIO_METHODS:
            raise ValueError(f"method: expected one of {GOLD_RATIO_METHODS}, got {method!r}")
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha: expected a finite number >= 0, got {alpha!r}")
        options.setdefault("activation", "tanh")
        options = {**GOLD_TRAIN_DEFAULTS, **options}
        self.anchored = bool(options.pop("anchored", True))
        super().__init__(prior, theta_ref, **options)
        self.method, self.alpha = method, float(alpha)

    @classmethod
    def _unfitted(cls, config: dict) -> GoldRatio:
        from lfi.priors import prior_from_config

        prior = prior_from_config(config["prior"])
        options = {**config["options"], "anchored": config.get("anchored", True)}
        return cls(prior, config["theta_ref"], config["method"], config["alpha"], **options)

    def _file_config(self) -> dict:
        extra = {"method": self.method, "alpha": self.alpha, "anchored": self.anchored}
        return {**super()._file_config(), **extra}

    def fit(self, data: GoldData, seed: Seed = 0) -> GoldRatio:  # type: ignore[override]
        """Train on ``data`` (rows drawn at θ, y = 0, and at θ_ref, y = 1); a fitted copy."""
        batch, stand = self.training_batch(data)
        anchor = None
        if self.anchored:
            u_ref = self.prior.to_unconstrained(jnp.asarray(self.theta_ref))
            anchor = np.asarray(stand.z_theta(u_ref)).tolist()
        options = {**self.classifier_options, "anchor": anchor}
        config = classifier_config(self.prior.dim, batch[1].shape[1], **options)
        loss = gold_loss(self.method, self.alpha)
        fitted = self._train(config, stand, batch, as_key(seed), 0.0, loss)
        u = stand.theta_mean + stand.theta_std * np.asarray(batch[0])
        fitted.theta_box = (np.min(u, 0), np.max(u, 0))  # as CARL: posterior() stops extrapolating
        return fitted

    def training_batch(self, data: GoldData) -> tuple[tuple, Standardizer]:
        """The validated rows as the loss of :func:`gold_loss` takes them, and the standardiser:
        ``(a, b, y, log_r, score, jinv_t, offset)``, a and b the z-scored unconstrained θ and x."""
        needs_r = _BASE[self.method] in ("rolr", "alice")
        data = check_gold(
            data, self.prior, self.method, log_r=needs_r, score=self.method in _SCORE, y=True
        )
        if data.theta_ref is not None and not np.allclose(data.theta_ref, self.theta_ref):
            raise ValueError(
                f"data.theta_ref: {np.asarray(data.theta_ref).tolist()} differs from this "
                f"estimator's theta_ref {self.theta_ref.tolist()}"
            )
        n0, n1 = int((data.y == 0).sum()), int((data.y == 1).sum())
        if n0 == 0 or n1 == 0:
            raise ValueError(f"data.y: need rows of both classes, got {n0} at θ and {n1} at θ_ref")
        offset = 0.0 if _BASE[self.method] == "rolr" else math.log(n0 / n1)
        u = np.asarray(self.prior.to_unconstrained(data.theta))
        stand = Standardizer.fit(u, data.x)
        a, b = stand.z_theta(jnp.asarray(u)), stand.z_x(jnp.asarray(data.x))
        n, d = len(a), self.prior.dim
        zeros = jnp.zeros
        batch = (
            a,
            b,
            jnp.asarray(data.y),
            zeros(n) if data.log_r is None else jnp.asarray(data.log_r),
            zeros((n, d)) if data.score is None else jnp.asarray(data.score),
            theta_jacobian(self.prior, stand, a),
            jnp.full(n, offset, jnp.float32),
        )
        return batch, stand


class _Regressor(eqx.Module):
    net: eqx.nn.MLP

    def __call__(self, b: jax.Array) -> jax.Array:
        return self.net(b)


@rowwise
def _sally_loss(model, batch, key):
    b, t = batch
    return jnp.mean(jnp.sum((jax.vmap(paramax.unwrap(model))(b) - t) ** 2, -1))


class SALLY:
    """t̂(x) ≈ E[t(x, z | θ_ref) | x], the score at θ_ref: a locally sufficient statistic.

    ``SALLY(prior, theta_ref).fit(data, seed=0)`` with ``data`` from
    ``lfi.simulate_augmented`` at θ_ref (``data.score`` = t(x, z | θ_ref)); then
    :meth:`summary` (dθ numbers per x, for ABC, histograms or any density estimator),
    :meth:`sallino` ((θ − θ_ref)·t̂(x), one number per x and θ) and :meth:`grid_posterior` (the
    density step of SALLY or SALLINO on a grid of simulations). Options: ``width``, ``depth``,
    ``activation`` and the training options of :data:`lfi.methods.npe.TRAIN_DEFAULTS`.
    """

    method = "sally"

    def __init__(self, prior: Prior, theta_ref: Any, **options: Any):
        self.prior, self.theta_ref = prior, check_theta_ref(prior, theta_ref)
        self.progress = bool(options.pop("progress", True))
        net = {k: options.pop(k) for k in ("width", "depth", "activation") if k in options}
        unknown = set(options) - set(TRAIN_DEFAULTS)
        if unknown:
            raise ValueError(f"options: unknown {sorted(unknown)}")
        self.net_options = {"width": 100, "depth": 2, "activation": "tanh", **net}
        self.train_options = {**TRAIN_DEFAULTS, **GOLD_TRAIN_DEFAULTS, **options}
        self.model = self.stand = self.history = None

    def fit(self, data: GoldData, seed: Seed = 0) -> SALLY:
        """Regress the joint score on x; ``data`` drawn at θ_ref. Returns a fitted copy."""
        data = check_gold(data, self.prior, "sally", log_r=False, score=True, y=False)
        if not np.allclose(data.theta, self.theta_ref, atol=1e-6):
            raise ValueError(
                "data.theta: SALLY needs x drawn at theta_ref with the score at theta_ref "
                "(lfi.simulate_augmented with a prior fixed at theta_ref, or run_augmented)"
            )
        out = copy.copy(self)
        x = data.x
        out.stand = Standardizer.fit(np.zeros((len(x), 0)), x)
        key = as_key(seed)
        batch = (out.stand.z_x(jnp.asarray(x)), jnp.asarray(data.score))
        out.model, out.history = fit(
            self._network(x.shape[1], key),
            _sally_loss,
            batch,
            seed=key,
            progress=self.progress,
            **self.train_options,
        )
        self.history = out.history
        return out

    def _network(self, dim_x: int, key: Any) -> _Regressor:
        opts = self.net_options
        return _Regressor(
            eqx.nn.MLP(dim_x, self.prior.dim, opts["width"], opts["depth"],
                       activation(opts["activation"]), key=key)
        )  # fmt: skip

    def save(self, path: str) -> None:
        """JSON config and arrays (the network and its x z-scoring); no pickle."""
        if self.model is None:
            raise RuntimeError("SALLY: not fitted yet; call .fit first")
        config = {"class": "SALLY", "prior": self.prior.to_config(),
                  "theta_ref": np.asarray(self.theta_ref).tolist(),
                  "net_options": self.net_options,
                  "dim_x": int(self.stand.x_mean.shape[0])}  # fmt: skip
        arrays = {**module_arrays(self.model, "net"), **module_arrays(self.stand, "stand")}
        write_archive(path, config, arrays)

    @classmethod
    def load(cls, path: str) -> SALLY:
        config, arrays = read_archive(path, expect="SALLY")
        out = cls(prior_from_config(config["prior"]), config["theta_ref"], progress=False,
                  **config["net_options"])  # fmt: skip
        dx = int(config["dim_x"])
        out.model = fill_module(out._network(dx, as_key(0)), arrays, "net")
        out.stand = fill_module(Standardizer.zeros(0, dx), arrays, "stand")
        return out

    def summary(self, x: Any) -> jax.Array:
        """t̂(x): shape (n, dθ) for x of shape (n, dx) (one observation (dx,) gives (1, dθ))."""
        if self.model is None:
            raise RuntimeError("SALLY: not fitted yet; call .fit first")
        dx = int(self.stand.x_mean.shape[0])
        arr = np.asarray(x, np.float32)
        if arr.ndim <= 1 and (dx == 1 or arr.size == dx):  # n scalars, or one observation
            arr = arr.reshape(-1, dx)
        if arr.ndim != 2 or arr.shape[1] != dx:
            raise ValueError(f"x: expected shape (n, {dx}) or ({dx},), got {np.shape(x)}")
        arr = jnp.asarray(arr)
        return jax.vmap(paramax.unwrap(self.model))(self.stand.z_x(arr))

    def sallino(self, x: Any, theta: Any) -> jax.Array:
        """(θ − θ_ref)·t̂(x): shape (n,) for x (n, dx) and θ (dθ,) or (n, dθ)."""
        delta = jnp.asarray(theta, jnp.float32) - jnp.asarray(self.theta_ref)
        return jnp.sum(self.summary(x) * delta, -1)

    def grid_posterior(
        self,
        simulator: Any,
        x_o: Any,
        *,
        projected: bool = False,
        grid_size: int = 25,
        per_point: int = 200,
        seed: Seed = 0,
        progress: bool = True,
    ) -> GridPosterior:
        """Inference with the learned summary: simulate ``per_point`` times at each cell centre
        of a grid over the prior (dθ ≤ 3) and estimate densities by Gaussian kernels
        (:mod:`lfi.methods.density`). ``x_o``: one observation (dx,) or i.i.d. events (k, dx),
        whose log-likelihoods add up.

        - SALLY (``projected=False``): log p̂(t̂(x_o) | θ), a dθ-dimensional density per cell.
        - SALLINO (``projected=True``): the one-dimensional h_θ(x) = (θ − θ_ref)·t̂(x) and
          log r̂(x_o | θ, θ_ref) = log p̂(h_θ(x_o) | θ) − log p̂(h_θ(x_o) | θ_ref), both densities
          of the same variable (another ``per_point`` simulations at θ_ref); comparing
          p̂(h_θ | θ) across θ alone would compare densities of different variables.

        Returns a :class:`lfi.methods.density.GridPosterior` (``mle()``, ``sample``,
        ``log_prob``; ``info`` counts the simulations and the invalid ones).
        """
        from lfi.methods.density import _cells, _kde_log_density
        from lfi.simulate import run_simulator

        if self.model is None:
            raise RuntimeError("SALLY: not fitted yet; call .fit first")
        if int(grid_size) < 2 or int(per_point) < 3:
            raise ValueError(f"grid_size >= 2 and per_point >= 3: got {grid_size}, {per_point}")
        dx = int(self.stand.x_mean.shape[0])
        events = np.asarray(x_o, np.float32).reshape(-1, dx) if np.size(x_o) % dx == 0 else None
        if events is None or events.size == 0 or not np.all(np.isfinite(events)):
            raise ValueError(f"x_o: expected finite (dx,) or (k, dx) with dx = {dx}")
        key_grid, key_sim, key_ref = jax.random.split(as_key(seed), 3)
        edges, centres = _cells(self.prior, int(grid_size), key_grid)
        g, m = len(centres), int(per_point)
        theta = np.repeat(centres, m, axis=0).astype(np.float32)
        x, _ = run_simulator(simulator, theta, seed=key_sim, progress=progress)
        t = np.asarray(self.summary(np.asarray(x)), np.float64).reshape(g, m, -1)
        t_o = np.asarray(self.summary(events), np.float64)  # (k, dθ)
        invalid = int((~np.all(np.isfinite(t), axis=2)).sum())
        num = len(theta)
        if not projected:
            log_lik = sum(_kde_log_density(t, t_k) for t_k in t_o)
        else:
            at_ref = np.broadcast_to(self.theta_ref, (m, self.prior.dim)).astype(np.float32)
            x_ref, _ = run_simulator(simulator, at_ref, seed=key_ref, progress=progress)
            t_ref = np.asarray(self.summary(np.asarray(x_ref)), np.float64)  # (m, dθ)
            invalid += int((~np.all(np.isfinite(t_ref), axis=1)).sum())
            num += m
            delta = centres - np.asarray(self.theta_ref, np.float64)  # (G, dθ)
            h = np.einsum("gmd,gd->gm", t, delta)[..., None]
            h_ref = np.einsum("md,gd->gm", t_ref, delta)[..., None]
            h_o = np.einsum("kd,gd->kg", t_o, delta)[..., None]
            log_lik = sum(_kde_log_density(h, h_k) - _kde_log_density(h_ref, h_k) for h_k in h_o)
        if invalid:
            warnings.warn(f"grid_posterior: {invalid} of {num} simulations invalid", stacklevel=2)
        info = {
            "method": "sallino" if projected else "sally",
            "num_simulations": num,
            "num_invalid": invalid,
            "grid_size": int(grid_size),
            "per_point": m,
            "num_events": len(events),
        }
        return GridPosterior(self.prior, edges, log_lik, x_o=events, info=info)
