"""Ensembles: an equal-weight mixture of K independently trained posteriors of any method.

Deep ensembles (Lakshminarayanan et al. 2017, arXiv:1612.01474) average the predictions of
networks trained from different initialisations and data orders; for simulation-based inference
Hermans et al. 2022 (arXiv:2110.06581) found ensembles of NPE/NRE posteriors less over-confident
than a single one. Every member is trained on the same simulations with seed
``fold_in(seed, k)``, one after another (a plain loop: each member already uses the machine's
cores through XLA, so a process pool would only contend for them).

What the ensemble is, for K members with log densities log q_k(θ | x):

    log q(θ | x) = logsumexp_k log q_k(θ | x) − log K

- normalised members (NPE): the mixture (1/K) Σ_k q_k, normalised. ``sample`` draws exactly
  from it: each of the n draws takes member c_i ~ Uniform{1..K} (the same law as multinomial
  counts per member, concatenated and shuffled), read off K equal-size member draws, so no
  member is recompiled for a new sample size.
- unnormalised members (NLE, NRE: log q_k = log p(θ) + Σ_trials f_k(θ, x_i)): the prior times
  the *average* likelihood (NLE) or ratio (NRE) of the members, p(θ) (1/K) Σ_k exp Σ_i f_k.
  It is unnormalised too, and ``sample`` draws from exactly this density by the members'
  MCMC machinery (:class:`lfi.posteriors.unnormalized.UnnormalizedPosterior`'s samplers, "imh"
  by default). NRE-B's logit is log r only up to a function of x, different per member, so its
  average weighs members by that offset; prefer NRE-A/C/BNRE (exact log r) or NLE members.

>>> import lfi, numpy as np
>>> prior = lfi.BoxUniform([0.0, 0.0], [2.0, 2.0])
>>> theta = np.asarray(prior.sample(500, seed=0))
>>> x = theta + 0.1 * np.random.default_rng(0).standard_normal(theta.shape)
>>> npe = lfi.NPE(prior, max_epochs=3, progress=False)
>>> post = lfi.Ensemble(npe, 3).fit(theta, x, seed=0)
>>> post.sample(10, x=[1.0, 1.0], seed=1).shape, len(post.members)
((10, 2), 3)
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from lfi._rng import Seed, as_key
from lfi.posteriors.base import ArvizMixin
from lfi.posteriors.io import read_archive, write_archive
from lfi.posteriors.unnormalized import UnnormalizedPosterior, _box


class Ensemble:
    """K copies of one estimator, trained on the same data with seeds ``fold_in(seed, k)``.

    ``Ensemble(lfi.NPE(prior), 5).fit(theta, x, seed=0)`` → :class:`EnsemblePosterior`;
    ``lfi.infer(..., ensemble=5)`` does the same. ``histories`` holds each member's
    training history (members are trained in turn; see the module docstring).
    """

    def __init__(self, estimator: Any, num_members: int = 5):
        if not hasattr(estimator, "fit"):
            raise TypeError(f"estimator: expected an lfi estimator, got {type(estimator).__name__}")
        if int(num_members) < 1:
            raise ValueError(f"num_members: expected at least 1, got {num_members}")
        self.estimator, self.num_members = estimator, int(num_members)
        self.prior = getattr(estimator, "prior", None)
        self.histories: list = []

    @property
    def history(self) -> Any:
        """The first member's training history (all of them: ``histories``)."""
        return self.histories[0] if self.histories else None

    def fit(self, theta: Any, x: Any, seed: Seed = 0) -> EnsemblePosterior:
        key, members, self.histories = as_key(seed), [], []
        options = getattr(self.estimator, "train_options", None)
        checkpoint = None if options is None else options.get("checkpoint")
        try:
            for k in range(self.num_members):
                if checkpoint is not None:  # each member resumes from its own file
                    path = Path(checkpoint)
                    options["checkpoint"] = str(path.with_name(f"{path.stem}.m{k}{path.suffix}"))
                members.append(self.estimator.fit(theta, x, seed=jax.random.fold_in(key, k)))
                self.histories.append(getattr(self.estimator, "history", None))
        finally:
            if checkpoint is not None:
                options["checkpoint"] = checkpoint
        return EnsemblePosterior(members)


class _MeanTerm(eqx.Module):
    """log (1/K) Σ_k exp Σ_i f_k(θ, x_i): all trials at once (``x`` is (k, dim_x))."""

    terms: tuple
    stands: tuple
    boxes: tuple  # each member's training box: (low, high)

    def __call__(self, u: jax.Array, trials: jax.Array) -> jax.Array:
        sums = []
        for term, stand, (low, high) in zip(self.terms, self.stands, self.boxes):
            z_theta = stand.z_theta(jnp.clip(u, low, high))
            sums.append(jnp.sum(jax.vmap(lambda xi: term(z_theta, stand.z_x(xi)))(trials)))  # noqa: B023
        return jax.nn.logsumexp(jnp.stack(sums)) - math.log(len(sums))


class _Identity(eqx.Module):
    def z_theta(self, u: jax.Array) -> jax.Array:
        return u

    def z_x(self, x: jax.Array) -> jax.Array:
        return x


class _MeanPosterior(UnnormalizedPosterior):
    """prior × the members' average likelihood/ratio, sampled by UnnormalizedPosterior's MCMC:
    its single "trial" is the whole (k, dim_x) observation, fed to :class:`_MeanTerm`."""

    def __init__(self, members: list[UnnormalizedPosterior]):  # noqa: D107 (no super: no net)
        first = members[0]
        self.prior, self.dim_x, self.kind, self.method = first.prior, first.dim_x, first.kind, None
        self.net_config, self.history, self._trained = {}, None, None
        parts = [(m._term, m._stand, m.theta_box) for m in members]
        self._term = _MeanTerm(*(tuple(p) for p in zip(*parts)))
        self._stand = _Identity()
        self.theta_box = _box(None, self.prior.dim)  # each member clamps to its own box
        self.sampler, self.sampler_options = first.sampler, dict(first.sampler_options)
        self.default_x, self.diagnostics = None, None

    def _params(self, x: Any) -> tuple:
        trials = jnp.asarray(self._trials(x))[None]
        return (self._term, self._stand, self.prior, trials, self.theta_box)


class EnsemblePosterior(ArvizMixin):
    """The equal-weight mixture of K posteriors (see the module docstring for what ``log_prob``
    and ``sample`` mean for normalised and unnormalised members)."""

    def __init__(self, members: list[Any]):
        members = list(members)
        if not members:
            raise ValueError("members: expected at least one posterior")
        classes = {type(m) for m in members}
        if len(classes) != 1:
            raise ValueError(f"members: expected posteriors of one class, got {classes}")
        self.members, self.prior = members, members[0].prior
        self.dim_x, self.method = members[0].dim_x, getattr(members[0], "method", None)
        self.normalized = bool(getattr(members[0], "normalized", True))
        self._mean = None if self.normalized else _MeanPosterior(members)
        self.history = getattr(members[0], "history", None)
        self.default_x = None

    def __repr__(self) -> str:
        return f"EnsemblePosterior(K={len(self.members)}, method={self.method!r})"

    @property
    def dim_theta(self) -> int:
        return self.prior.dim

    @property
    def diagnostics(self) -> Any:
        return None if self._mean is None else self._mean.diagnostics

    def set_default_x(self, x: Any) -> EnsemblePosterior:
        for m in self.members:
            m.set_default_x(x)
        if self._mean is not None:
            self._mean.set_default_x(x)
        self.default_x = self.members[0].default_x
        return self

    def log_prob(self, theta: Any, x: Any = None) -> jax.Array:
        """logsumexp_k log q_k(θ | x) − log K: normalised iff the members are (NPE)."""
        if self._mean is not None:
            return self._mean.log_prob(theta, x)
        lps = jnp.stack([m.log_prob(theta, x) for m in self.members])
        return jax.nn.logsumexp(lps, axis=0) - math.log(len(self.members))

    def sample(self, n: int, x: Any = None, seed: Seed = 0, **options: Any) -> jax.Array:
        """``n`` draws from the mixture: shape (n, dθ). Unnormalised members: MCMC on the
        average (``options`` as :meth:`UnnormalizedPosterior.sample`)."""
        if self._mean is not None:
            return self._mean.sample(n, x, seed, **options)
        key = as_key(seed)
        k_pick, k_draw = jax.random.split(key)
        draws = jnp.stack(
            [
                m.sample(n, x, jax.random.fold_in(k_draw, k), **options)
                for k, m in enumerate(self.members)
            ]
        )  # (K, n, dθ)
        which = jax.random.randint(k_pick, (int(n),), 0, len(self.members))
        return draws[which, jnp.arange(int(n))]

    def sample_batched(self, n: int, x: Any, seed: Seed = 0, **options: Any) -> jax.Array:
        """``n`` draws for each of m observations: shape (m, n, dθ)."""
        if self._mean is not None:
            return self._mean.sample_batched(n, x, seed, **options)
        key = as_key(seed)
        k_pick, k_draw = jax.random.split(key)
        draws = jnp.stack(
            [
                m.sample_batched(n, x, jax.random.fold_in(k_draw, k), **options)
                for k, m in enumerate(self.members)
            ]
        )  # (K, m, n, dθ)
        which = jax.random.randint(k_pick, draws.shape[1:3], 0, len(self.members))
        rows = jnp.arange(draws.shape[1])[:, None]
        return draws[which, rows, jnp.arange(draws.shape[2])[None, :]]

    def map(self, x: Any = None, seed: Seed = 0, **options: Any) -> jax.Array:
        """The mixture's mode: each member's MAP, then the best of those under ``log_prob``
        (and for unnormalised members the average density's own climb)."""
        if self._mean is not None:
            return self._mean.map(x, seed, **options)
        cands = jnp.stack([m.map(x, seed, **options) for m in self.members])
        return cands[jnp.argmax(self.log_prob(cands, x))]

    def save(self, path: str) -> None:
        """One archive: each member's config under ``members`` and its arrays as ``m{k}/…``
        (JSON + npz, no pickle); read back with ``lfi.load``."""
        configs, arrays = [], {}
        with tempfile.TemporaryDirectory() as tmp:
            for k, m in enumerate(self.members):
                m.save(str(Path(tmp) / f"m{k}.lfi"))
                config, arr = read_archive(Path(tmp) / f"m{k}.lfi")
                configs.append(config)
                arrays.update({f"m{k}/{name}": v for name, v in arr.items()})
        default = None if self.default_x is None else np.asarray(self.default_x).tolist()
        write_archive(
            path, {"class": "EnsemblePosterior", "members": configs, "default_x": default}, arrays
        )

    @classmethod
    def load(cls, path: str) -> EnsemblePosterior:
        from lfi.api import load as load_any

        config, arrays = read_archive(path, expect="EnsemblePosterior")
        members = []
        with tempfile.TemporaryDirectory() as tmp:
            for k, member in enumerate(config["members"]):
                prefix = f"m{k}/"
                arr = {n[len(prefix) :]: v for n, v in arrays.items() if n.startswith(prefix)}
                member = {key: v for key, v in member.items() if key not in ("format", "version")}
                write_archive(Path(tmp) / f"m{k}.lfi", member, arr)
                members.append(load_any(str(Path(tmp) / f"m{k}.lfi")))
        post = cls(members)
        if config.get("default_x") is not None:
            post.set_default_x(config["default_x"])
        return post
