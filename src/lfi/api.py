"""The one-liner ``infer`` and ``load``: thin glue over simulate → method → posterior."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from lfi._rng import Seed, as_key
from lfi.campaign import run_campaign
from lfi.methods.abc import ABC_METHODS, abc
from lfi.methods.density import GridPosterior
from lfi.methods.gold import SALLY, GoldRatio
from lfi.methods.mining import GOLD_METHODS, mine
from lfi.methods.ratio import CARL, ClassifierRatio
from lfi.methods.registry import get_method
from lfi.methods.scandal import SCANDAL
from lfi.methods.sequential import SEQUENTIAL, sequential
from lfi.posteriors.direct import DirectPosterior
from lfi.posteriors.ensemble import Ensemble, EnsemblePosterior
from lfi.posteriors.io import read_archive
from lfi.posteriors.ode import ODEPosterior
from lfi.posteriors.samples import ParticlePosterior
from lfi.posteriors.unnormalized import UnnormalizedPosterior
from lfi.priors import Prior, prior_from_config
from lfi.simulate import simulate
from lfi.store import open_store


def _load_conjugate(path: str) -> Any:
    """ConjugatePosterior.load, its module imported on first use (scipy.stats, slow to import)."""
    from lfi.methods.conjugate import ConjugatePosterior

    return ConjugatePosterior.load(path)


_LOADERS = {
    "DirectPosterior": DirectPosterior.load,
    "UnnormalizedPosterior": UnnormalizedPosterior.load,
    "ClassifierRatio": ClassifierRatio.load,
    "CARL": CARL.load,
    "GoldRatio": GoldRatio.load,
    "SCANDAL": SCANDAL.load,
    "ParticlePosterior": ParticlePosterior.load,
    "ODEPosterior": ODEPosterior.load,
    "EnsemblePosterior": EnsemblePosterior.load,
    "GridPosterior": GridPosterior.load,
    "SALLY": SALLY.load,
    "ConjugatePosterior": _load_conjugate,
}


def infer(
    simulator: Callable,
    prior: Prior,
    method: str = "npe",
    num_simulations: int = 1000,
    seed: Seed = 0,
    *,
    num_rounds: int = 1,
    x_o: Any = None,
    progress: bool = True,
    store: Any = None,
    workers: int | None = None,
    cluster: Any = None,
    ensemble: int | None = None,
    **options: Any,
) -> Any:
    """Simulate ``num_simulations`` from the prior, train ``method``, return its posterior.

    ``options`` go to the method's constructor (network, training and sampler settings).
    Methods: see ``lfi.METHODS`` ("npe", "bnpe", "calnpe", "nle", "nre_a", "nre_b" = "nre",
    "nre_c", "bnre", "fmpe", "npse") and the sequential ones, "snpe", "snle", "snre", which
    need ``x_o`` and run ``num_rounds`` rounds (see :func:`lfi.methods.sequential.sequential`);
    ``num_rounds > 1`` with "npe", "nle" or "nre" runs their sequential form.
    "rejection_abc" and "smc_abc" (see :mod:`lfi.methods.abc`) also need ``x_o`` and return a
    posterior for it alone. The
    mining-gold methods ("carl", "rolr", "rascal", "cascal", "alice", "alices", "nde",
    "scandal", "sally", "sallino"; see :mod:`lfi.methods.mining`) return the trained ratio,
    likelihood or summary estimator; most need an augmented simulator and ``theta_ref``.

    With ``store`` (a directory), the simulations go to a durable, resumable
    :class:`lfi.store.SimulationStore` (run by :func:`lfi.run_campaign` on ``workers`` local
    processes or a Dask ``cluster``; an interrupted call resumes where it stopped) and the
    method trains on its DONE rows; ``simulator=None`` trains on a finished store
    (``prior=None`` takes the store's). NPE, NLE and NRE stream a store larger than 1 GB (or
    with ``stream=True``) a block of ``block_rows`` rows at a time, holding out whole chunks
    for validation. ``checkpoint=PATH`` makes the
    training itself resumable (see :func:`lfi.train.fit`).

    An amortised method's posterior takes ``x_o``, if given, as its default observation.

    ``ensemble=K`` trains K members of an amortised method ("npe", "nle", "nre_a"…; NRE-B
    members carry arbitrary offsets that weigh them unequally, see
    :mod:`lfi.posteriors.ensemble`) on the same
    simulations (seeds ``fold_in(seed, k)``) and returns their equal-weight mixture, an
    :class:`lfi.posteriors.ensemble.EnsemblePosterior` (arXiv:2110.06581).

    >>> import lfi, numpy as np
    >>> prior = lfi.BoxUniform([0.0, 0.0], [2.0, 2.0])
    >>> sim = lambda theta, rng: theta + 0.1 * rng.standard_normal(theta.shape)
    >>> post = lfi.infer(sim, prior, "npe", num_simulations=500, seed=0, max_epochs=3,
    ...                  progress=False)
    >>> post.sample(5, x=[1.0, 1.0]).shape
    (5, 2)
    """
    name = str(method).lower()
    if name in ("npe", "nle", "nre") and num_rounds > 1:
        name = "s" + name
    if ensemble is not None and (name in SEQUENTIAL or name in ABC_METHODS or name in GOLD_METHODS):
        raise ValueError(f"ensemble: method {name!r} has no ensemble form; use an amortised one")
    if name in SEQUENTIAL:
        if x_o is None:
            raise ValueError(f"x_o: method {name!r} runs rounds at one observation; give x_o")
        return sequential(
            simulator,
            prior,
            name,
            x_o,
            num_rounds=num_rounds,
            num_simulations=num_simulations,
            seed=seed,
            progress=progress,
            **options,
        )
    if num_rounds != 1:
        raise ValueError(f"num_rounds: method {name!r} has no sequential form; use 1")
    if name in ABC_METHODS:
        return abc(simulator, prior, name, x_o, num_simulations, seed, progress=progress, **options)
    if name in GOLD_METHODS:
        return mine(simulator, prior, name, num_simulations, seed, progress=progress, **options)
    estimator_cls = get_method(name)  # fail on a bad name before simulating
    if ensemble is not None:
        estimator_cls = _ensemble_of(estimator_cls, ensemble)
    if store is not None:
        posterior = _infer_store(
            simulator, prior, estimator_cls, num_simulations, seed, store, workers, cluster,
            progress, options,
        )  # fmt: skip
    else:
        estimator = estimator_cls(prior, progress=progress, **options)
        key_sim, key_fit = jax.random.split(as_key(seed))
        theta, x = simulate(simulator, prior, num_simulations, seed=key_sim, progress=progress)
        posterior = estimator.fit(theta, x, seed=key_fit)
    if x_o is not None and hasattr(posterior, "set_default_x"):  # amortised: x_o is the default
        posterior.set_default_x(x_o)
    return posterior


def _infer_store(simulator, prior, estimator_cls, n, seed, path, workers, cluster, progress, opts):
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed: with a store, expected an integer seed, got {seed!r}")
    if simulator is not None:
        st = run_campaign(
            simulator, prior, n, path, seed, workers=workers, cluster=cluster, progress=progress
        )
    else:
        st = open_store(path)
    if prior is None:
        prior = prior_from_config(st.provenance["prior"])
    stream = opts.pop("stream", None)
    if stream is None:  # stream what would take more than 1 GB in memory
        width = st.provenance["dim_theta"] + st.array_width("x")
        stream = st.num_rows * width * 4 > _STREAM_BYTES
    estimator = estimator_cls(prior, progress=progress, **opts)
    key = jax.random.fold_in(as_key(seed), 1)
    return estimator.fit(st, None, seed=key) if stream else estimator.fit(*st.arrays(), seed=key)


_STREAM_BYTES = 2**30


def _ensemble_of(estimator_cls: Callable, num_members: int) -> Callable:
    """A factory like ``estimator_cls`` whose estimator trains an ensemble of it."""
    return lambda prior, **opts: Ensemble(estimator_cls(prior, **opts), num_members)


def load(path: str) -> Any:
    """Load a posterior or ratio saved with ``.save(path)`` (JSON config + arrays; no pickle)."""
    config, _ = read_archive(path)
    kind = config.get("class")
    if kind not in _LOADERS:
        raise ValueError(f"path: unknown model class {kind!r}; known: {sorted(_LOADERS)}")
    try:
        return _LOADERS[kind](path)
    except (KeyError, TypeError, AttributeError, IndexError, OverflowError) as exc:  # damaged
        raise ValueError(
            f"path: {str(path)!r} is not a valid {kind} file ({type(exc).__name__}: {exc})"
        ) from exc
