"""Run a method on a benchmark task and score it: the engine behind ``lfi run``, ``lfi demo`` and
the scripts in ``benchmarks/``.

>>> from lfi.bench import run_task
>>> result = run_task("gaussian_2d", "npe", num_simulations=300, observations=[1], seed=0,
...                   num_samples=200, progress=False, max_epochs=2)
>>> result.samples[1].shape, 0.4 <= result.metrics["c2st"]["1"] <= 1.0
((200, 2), True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from lfi import tasks as task_registry
from lfi._rng import Seed, as_key
from lfi.diagnostics import c2st
from lfi.methods.abc import ABC_METHODS, abc
from lfi.methods.mining import GOLD_METHODS, mine
from lfi.methods.registry import get_method
from lfi.methods.sequential import SEQUENTIAL, sequential
from lfi.posteriors.ensemble import Ensemble
from lfi.simulate import simulate


@dataclass
class RunResult:
    """A trained posterior, its samples per observation, and metrics (JSON-able)."""

    posterior: Any
    samples: dict[int, np.ndarray] = field(default_factory=dict)
    references: dict[int, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    c2st: dict[int, float] = field(default_factory=dict)
    diagnostics: dict[int, dict] = field(default_factory=dict)
    estimator: Any = None  # the trained ratio/likelihood estimator behind the posterior, if any


def run_task(
    task: str,
    method: str = "npe",
    *,
    num_simulations: int = 10_000,
    observations: list[int] | tuple[int, ...] = (1,),
    seed: Seed = 0,
    num_samples: int = 10_000,
    score: bool = True,
    progress: bool = True,
    ensemble: int | None = None,
    on_observation: Callable[[int, dict], None] | None = None,
    **options: Any,
) -> RunResult:
    """Simulate, train ``method``, sample at each observation and score C2ST vs the reference.

    Each observation k gets its own sampling seed; the reference posterior of k is drawn with
    lfi's own exact/MCMC reference sampler of the task. ``ensemble=K`` trains K members of an
    amortised method and scores their mixture (:class:`lfi.posteriors.ensemble.Ensemble`).
    ``on_observation(k, row)``: called as soon as observation k is scored, with its C2ST and
    seconds (``lfi bench`` writes each row then, so an interrupted cell keeps its finished
    observations).
    """
    method = str(method).lower()
    task_obj = task_registry.get(task)
    x_obs = {k: task_obj.observation(k) for k in observations}  # bad numbers fail before training
    key_sim, key_fit, key_sample = jax.random.split(as_key(seed), 3)
    if method in ("npe", "nle", "nre") and options.get("num_rounds", 1) > 1:
        method = "s" + method
    if ensemble is not None and (
        method in SEQUENTIAL or method in ABC_METHODS or method in GOLD_METHODS
    ):
        raise ValueError(f"ensemble: method {method!r} has no ensemble form; use an amortised one")
    if method in SEQUENTIAL or method in ABC_METHODS:  # anew at each observation
        return _run_sequential(
            task_obj,
            method,
            num_simulations,
            x_obs,
            key_sim,
            key_sample,
            num_samples,
            score,
            progress,
            seed,
            options,
            on_observation,
        )
    options.pop("num_rounds", None)  # one round: the amortised method itself
    if method in GOLD_METHODS:
        posterior, estimator, t_sim, t_train = _run_gold(
            task_obj, method, num_simulations, key_sim, progress, options
        )
    else:
        estimator = get_method(method)(task_obj.prior, progress=progress, **options)
        if ensemble is not None:
            estimator = Ensemble(estimator, ensemble)
        t0 = time.perf_counter()
        theta, x = simulate(
            task_obj.simulator, task_obj.prior, num_simulations, seed=key_sim, progress=progress
        )
        t_sim = time.perf_counter() - t0
        t0 = time.perf_counter()
        posterior = estimator.fit(theta, x, seed=key_fit)
        t_train = time.perf_counter() - t0
    result = RunResult(posterior, estimator=estimator if method in GOLD_METHODS else None)
    history = getattr(estimator, "history", None)
    epochs = len(history.val_loss) if history else None
    report = _reporter(on_observation, result, seconds_simulate=t_sim, seconds_train=t_train,
                       epochs=epochs)  # fmt: skip
    t_samples, t_scores = _sample_and_score(
        result,
        task_obj,
        {k: posterior for k in x_obs},
        x_obs,
        key_sample,
        num_samples,
        score,
        report,
    )
    result.metrics = _metrics(task_obj, method, num_simulations, seed, observations, result)
    result.metrics.update(
        seconds_simulate=t_sim,
        seconds_train=t_train,
        seconds_sample=t_samples,
        seconds_score=t_scores,
        epochs=epochs,
        seconds_per_epoch=history.seconds_per_epoch if history else None,
        first_epoch_seconds=history.epoch_seconds[0] if history else None,
        best_val_loss=min(history.val_loss) if history else None,
        options=options,
        ensemble=ensemble,
    )
    return result


def _run_gold(task_obj, method, num_simulations, key, progress, options):
    """A mining-gold method on a task: its posterior (prior × the learned ratio/likelihood).
    θ_ref defaults to the task's ``extras["theta1"]`` or the prior mean; discrete tasks pass
    their ``extras["bins"]`` to NDE/SCANDAL."""
    if method in ("sally", "sallino"):
        raise ValueError(
            f"method: {method!r} learns a summary statistic, not a posterior; use "
            "lfi.infer(..., method=...) and the summary with ABC or histograms"
        )
    options = dict(options)
    if method in ("nde", "scandal"):
        if "bins" in task_obj.extras:
            options.setdefault("bins", task_obj.extras["bins"])
    else:
        ref = task_obj.extras.get("theta1")
        if ref is None:
            ref = np.asarray(task_obj.prior.sample(10_000, seed=0)).mean(0)
        options.setdefault("theta_ref", np.atleast_1d(np.asarray(ref, np.float32)))
    t0 = time.perf_counter()
    estimator = mine(
        task_obj.simulator,
        task_obj.prior,
        method,
        num_simulations,
        key,
        progress=progress,
        **options,
    )
    t_train = time.perf_counter() - t0  # simulation included: one call does both
    return estimator.posterior(), estimator, 0.0, t_train


def _reporter(on_observation, result, **fixed) -> Callable | None:
    """The per-observation callback of :func:`_sample_and_score`: ``on_observation(k, row)``
    with the observation's C2ST and seconds and the cell's ``fixed`` values."""
    if on_observation is None:
        return None

    def report(k: int, t_sample: float, t_score: float) -> None:
        row = {**fixed, "c2st": result.c2st.get(k), "seconds_sample": t_sample,
               "seconds_score": t_score}  # fmt: skip
        on_observation(k, row)

    return report


def _sample_and_score(result, task_obj, posteriors, x_obs, key, num_samples, score, report=None):
    t_samples = t_scores = 0.0
    for k, x_o in x_obs.items():
        t_score = 0.0
        t0 = time.perf_counter()
        samples = posteriors[k].sample(num_samples, x=x_o, seed=jax.random.fold_in(key, k))
        result.samples[k] = np.asarray(samples)
        diagnostics = getattr(posteriors[k], "diagnostics", None)
        if diagnostics is not None and hasattr(diagnostics, "rhat"):
            result.diagnostics[k] = {
                "rhat_max": float(np.max(diagnostics.rhat)),
                "ess_min": float(np.min(diagnostics.ess)),
            }
        t_sample = time.perf_counter() - t0
        if score:
            t0 = time.perf_counter()
            result.references[k] = task_obj.reference_posterior(k, num_samples, seed=k)
            result.c2st[k] = float(c2st(result.references[k], result.samples[k]))
            t_score = time.perf_counter() - t0
        t_samples, t_scores = t_samples + t_sample, t_scores + t_score
        if report is not None:
            report(k, t_sample, t_score)
    return t_samples, t_scores


def _metrics(task_obj, method, num_simulations, seed, observations, result) -> dict[str, Any]:
    c2sts = result.c2st
    return {
        "task": task_obj.name,
        "method": method,
        "num_simulations": int(num_simulations),
        "seed": seed if isinstance(seed, int) else None,
        "dim_theta": task_obj.dim_theta,
        "observations": list(observations),
        "c2st": {str(k): v for k, v in c2sts.items()},
        "c2st_mean": float(np.mean(list(c2sts.values()))) if c2sts else None,
        "mcmc": {str(k): v for k, v in result.diagnostics.items()} or None,
    }


def _run_sequential(
    task_obj,
    method,
    num_simulations,
    x_obs,
    key_sim,
    key_sample,
    num_samples,
    score,
    progress,
    seed,
    options,
    on_observation=None,
):
    options = dict(options)
    num_rounds = int(options.pop("num_rounds", 10))
    posteriors, t_train, rounds = {}, 0.0, {}
    result = RunResult(None)
    t_samples = t_scores = 0.0
    for k, x_o in x_obs.items():
        t0 = time.perf_counter()
        if method in ABC_METHODS:
            posteriors[k] = abc(
                task_obj.simulator,
                task_obj.prior,
                method,
                x_o,
                num_simulations,
                seed=jax.random.fold_in(key_sim, k),
                progress=progress,
                **options,
            )
            rounds[str(k)] = posteriors[k].info
        else:
            posteriors[k] = sequential(
                task_obj.simulator,
                task_obj.prior,
                method,
                x_o,
                num_rounds=num_rounds,
                num_simulations=num_simulations,
                seed=jax.random.fold_in(key_sim, k),
                progress=progress,
                **options,
            )
            rounds[str(k)] = posteriors[k].rounds
        t_k = time.perf_counter() - t0
        t_train += t_k
        report = _reporter(on_observation, result, seconds_simulate=0.0, seconds_train=t_k,
                           epochs=None)  # fmt: skip
        s_k, c_k = _sample_and_score(
            result, task_obj, posteriors, {k: x_o}, key_sample, num_samples, score, report
        )  # trained and scored one observation at a time: each row is written as it ends
        t_samples, t_scores = t_samples + s_k, t_scores + c_k
    if method in ABC_METHODS:  # the rounds actually run (1 for rejection ABC), at most
        num_rounds = max(int(info.get("num_rounds", 1)) for info in rounds.values())
    result.posterior = posteriors[next(iter(x_obs))]
    result.metrics = _metrics(task_obj, method, num_simulations, seed, list(x_obs), result)
    result.metrics.update(
        seconds_train=t_train,
        seconds_sample=t_samples,
        seconds_score=t_scores,
        num_rounds=num_rounds,
        rounds=rounds,
        options=options,
    )
    return result
