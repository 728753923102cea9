"""Calibration of an amortised posterior on many test simulations (θ*, x*), θ* ~ prior.

None of these retrain anything: they draw from the posterior at each x* and ask where θ* falls.

- :func:`sbc`: simulation-based calibration (Talts et al. 2018, arXiv:1804.06788): the rank of
  θ*_d among the draws is uniform for a calibrated posterior; :func:`ecdf_band` gives the
  simultaneous confidence band of the ranks' ECDF (Säilynoja, Bürkner & Vehtari 2022,
  arXiv:2103.10522), drawn by :func:`lfi.plot.sbc_ecdf`.
- :func:`expected_coverage` of highest-posterior-density regions (Hermans et al. 2022,
  arXiv:2110.06581): the α-HPD region holds θ* a fraction α of the time.
- :func:`tarp`: the expected coverage of balls around random reference points (Lemos et al.
  2023, "Sampling-Based Accuracy Testing of Posterior Estimators for General Inference",
  arXiv:2302.03026): needs only samples, no density, and checks the joint posterior, not only
  its marginals.

An over-confident posterior puts θ* in the tails: extreme SBC ranks, coverage below α, a TARP
curve below the diagonal above α = 1/2 (negative ATC).

``posterior`` is one amortised posterior (``sample(n, x=x_i, seed=...)``), or a sequence of
posteriors, one per test pair (e.g. ABC runs, each built for its own x_i); :func:`tarp` also
takes the draws themselves, an array (num_pairs, num_samples, dθ).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CoverageResult",
    "SBCResult",
    "TARPResult",
    "ecdf_band",
    "expected_coverage",
    "sbc",
    "tarp",
]


@dataclass
class SBCResult:
    """Ranks of θ* among the posterior draws, per test simulation and dimension (0..L), and a
    chi-square test of their uniformity per dimension (``pvalues``)."""

    ranks: np.ndarray
    num_samples: int
    pvalues: np.ndarray

    def passed(self, alpha: float = 0.01) -> bool:
        """All dimensions uniform at family-wise level ``alpha`` (Bonferroni)."""
        return bool(np.all(self.pvalues > alpha / len(self.pvalues)))


@dataclass
class CoverageResult:
    """``alphas``: per test simulation, the smallest HPD level whose region holds θ*;
    ``coverage[j]``: the fraction of θ* inside the ``levels[j]`` HPD region."""

    levels: np.ndarray
    coverage: np.ndarray
    alphas: np.ndarray

    def stderr(self) -> np.ndarray:
        """Binomial standard error of each coverage at its nominal level."""
        return np.sqrt(self.levels * (1 - self.levels) / len(self.alphas))


def _one(posterior: Any, i: int) -> Any:
    return posterior[i] if isinstance(posterior, Sequence) else posterior


def _test_set(posterior: Any, theta: Any, x: Any, with_mask: bool = False) -> tuple:
    """Finite (θ*, x*) rows, and ``posterior`` (a per-pair sequence cut to the same rows);
    ``with_mask``: also the boolean mask of the rows kept."""
    theta, x = np.asarray(theta, np.float32), np.asarray(x, np.float32)
    theta = theta[:, None] if theta.ndim == 1 else theta
    x = x.reshape(len(x), -1) if x.ndim != 2 else x
    if theta.ndim != 2 or len(x) != len(theta) or len(theta) < 2:
        raise ValueError(
            f"theta, x: expected (n, dθ) and (n, dx) with n >= 2, got "
            f"{np.shape(theta)}, {np.shape(x)}"
        )
    if isinstance(posterior, Sequence) and len(posterior) != len(theta):
        raise ValueError(
            f"posterior: expected one per test pair ({len(theta)}), got {len(posterior)}"
        )
    dim = getattr(_one(posterior, 0), "dim_theta", theta.shape[1])
    if theta.shape[1] != dim:
        raise ValueError(f"theta: expected {dim} columns, got {theta.shape[1]}")
    ok = np.all(np.isfinite(theta), 1) & np.all(np.isfinite(x), 1)
    if not ok.all():
        warnings.warn(
            f"excluded {int((~ok).sum())} of {ok.size} test simulations with NaN/inf", stacklevel=3
        )
        if isinstance(posterior, Sequence):
            posterior = [p for p, keep in zip(posterior, ok) if keep]
    return (theta[ok], x[ok], posterior) + ((ok,) if with_mask else ())


def _level(count: Any, ties: Any, u: Any, n: int) -> Any:
    """(count + u·(1 + ties)) / (n + 1): where θ* falls among n draws, ties and the finite n
    randomised away by u ~ U(0, 1), so that it is exactly U(0, 1) when calibrated."""
    return (count + u * (1 + ties)) / (n + 1)


def _finite(draws: np.ndarray, what: str) -> np.ndarray:
    """NaN draws would compare as False and bias every rank and coverage: an error instead."""
    if not np.all(np.isfinite(draws)):
        raise ValueError(f"posterior: {what} contain NaN or inf")
    return draws


def _draws(posterior: Any, n: int, x: np.ndarray, seed: int) -> np.ndarray:
    draws = np.asarray(posterior.sample(int(n), x=x, seed=seed), np.float64)
    return _finite(draws, f"the draws at test observation {np.ravel(x)[:4].tolist()}...")


def _all_draws(posterior: Any, n: int, x: np.ndarray, seed: int) -> np.ndarray:
    """(num_pairs, n, dθ): one batched call where the posterior offers ``sample_batched``."""
    if not isinstance(posterior, Sequence) and hasattr(posterior, "sample_batched"):
        draws = np.asarray(posterior.sample_batched(int(n), x, seed=seed), np.float64)
        return _finite(draws, "the batched draws")
    return np.stack([_draws(_one(posterior, i), n, x[i], seed + i) for i in range(len(x))])


def sbc(
    posterior: Any, theta: Any, x: Any, num_samples: int = 100, seed: int = 0, bins: int = 20
) -> SBCResult:
    """Simulation-based calibration of ``posterior`` on test pairs θ* ~ prior, x* ~ p(x | θ*)
    (e.g. ``lfi.simulate(simulator, prior, 200, seed=...)``): the rank of θ*_d among
    ``num_samples`` draws at x*, and a chi-square test of uniformity over ``bins`` bins.

    >>> import numpy as np
    >>> class Exact:  # θ ~ N(0, 1), x ~ N(θ, 1): posterior N(x/2, 1/2)
    ...     def sample(self, n, x, seed):
    ...         rng = np.random.default_rng(seed)
    ...         return x / 2 + np.sqrt(0.5) * rng.standard_normal((n, 1))
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.standard_normal((300, 1)); x = theta + rng.standard_normal((300, 1))
    >>> sbc(Exact(), theta, x).passed()
    True
    """
    from scipy.stats import chisquare

    theta, x, posterior = _test_set(posterior, theta, x)
    num_samples = int(num_samples)
    if num_samples < 2 or bins < 2:
        raise ValueError(f"num_samples, bins: expected >= 2, got {num_samples}, {bins}")
    rng = np.random.default_rng(seed)
    ranks = []
    for i in range(len(theta)):
        draws = _draws(_one(posterior, i), num_samples, x[i], seed + i)
        below, ties = np.sum(draws < theta[i], 0), np.sum(draws == theta[i], 0)
        ranks.append(below + rng.integers(0, ties + 1))  # ties at a random place (discrete θ)
    ranks = np.stack(ranks)
    bins = min(int(bins), num_samples + 1)
    which = np.arange(num_samples + 1) * bins // (num_samples + 1)  # rank value -> bin
    expected = np.bincount(which, minlength=bins) * len(theta) / (num_samples + 1)
    pvalues = np.array(
        [
            chisquare(np.bincount(which[ranks[:, d]], minlength=bins), expected).pvalue
            for d in range(ranks.shape[1])
        ]
    )
    return SBCResult(ranks, num_samples, pvalues)


def ecdf_band(
    num_ranks: int,
    num_samples: int,
    level: float = 0.95,
    num_points: int = 100,
    num_sims: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simultaneous ``level`` band of the ECDF of ``num_ranks`` SBC ranks, uniform on 0..L
    (L = ``num_samples``), by the simulation method of Säilynoja et al. (arXiv:2103.10522, §2.2).

    Returns ``(z, lower, upper)``: at z_k = j_k / (L + 1) the ECDF F̂(z_k) = mean(rank < j_k)
    has expectation z_k, and with probability ``level`` it stays in [lower, upper] at every z_k
    at once. The pointwise binomial band at level 1 − γ is widened until ``level`` of
    ``num_sims`` simulated uniform rank sets stay inside it everywhere.

    >>> z, lo, hi = ecdf_band(200, 99)
    >>> bool(np.all(lo <= z) and np.all(z <= hi)), bool(hi[50] - lo[50] > 2 * 1.96 * 0.035)
    (True, True)
    """
    from scipy.stats import binom

    n, num = int(num_ranks), int(num_samples)
    if n < 1 or num < 1 or not 0 < level < 1:
        raise ValueError(f"num_ranks, num_samples, level: got {num_ranks}, {num_samples}, {level}")
    j = np.unique(np.round(np.linspace(1, num, min(num, int(num_points)))).astype(int))
    z = j / (num + 1)
    ranks = np.random.default_rng(seed).integers(0, num + 1, (int(num_sims), n))
    cdf = np.cumsum(np.apply_along_axis(np.bincount, 1, ranks, minlength=num + 1), 1)
    counts = cdf[:, j - 1]  # #(rank < j) per simulation and point
    tail = np.minimum(binom.cdf(counts, n, z), binom.sf(counts - 1, n, z))
    # the largest γ with at least `level` of the simulations inside everywhere (min tail >= γ/2)
    gamma = float(np.sort(np.min(2 * tail, 1))[int(np.floor((1 - level) * len(tail) + 1e-9))])
    c = np.arange(n + 1)[:, None]
    ok = (binom.cdf(c, n, z) >= gamma / 2) & (binom.sf(c - 1, n, z) >= gamma / 2)
    lower = np.argmax(ok, 0) / n
    upper = (n - np.argmax(ok[::-1], 0)) / n
    return z, lower, upper


def expected_coverage(
    posterior: Any,
    theta: Any,
    x: Any,
    levels: Any = (0.5, 0.8, 0.95),
    num_samples: int = 200,
    seed: int = 0,
) -> CoverageResult:
    """Expected coverage of the posterior's highest-density regions on test pairs (θ*, x*):
    θ* lies in the α-HPD region when its level a = (#{higher} + U·(1 + #{equal})) / (n + 1) is at
    most α, with #{higher} the number of the n = ``num_samples`` draws whose ``log_prob``
    (unnormalised is fine) is higher than θ*'s, #{equal} as high, U ~ U(0, 1): a is exactly
    U(0, 1) for a calibrated posterior, which therefore covers α of the θ* (without U, n draws
    would add up to 1/n of coverage, and flat densities, all ties, would cover every θ*)."""
    theta, x, posterior = _test_set(posterior, theta, x)
    levels = np.atleast_1d(np.asarray(levels, np.float64))
    if np.any((levels <= 0) | (levels >= 1)):
        raise ValueError(f"levels: expected values in (0, 1), got {levels.tolist()}")
    alphas = np.empty(len(theta))
    u = np.random.default_rng(seed).uniform(size=len(theta))
    for i in range(len(theta)):
        post = _one(posterior, i)
        draws = _draws(post, num_samples, x[i], seed + i)
        lp = np.asarray(post.log_prob(np.concatenate([theta[i : i + 1], draws]), x=x[i]))
        if np.isnan(lp).any() or lp[0] == np.inf:  # NaN at θ* would count it covered
            raise ValueError(f"posterior: log_prob is NaN (or +inf at θ*) at test pair {i}")
        alphas[i] = _level(np.sum(lp[1:] > lp[0]), np.sum(lp[1:] == lp[0]), u[i], num_samples)
    coverage = np.array([np.mean(alphas <= lv) for lv in levels])
    return CoverageResult(levels, coverage, alphas)


ATC_VARIANCE = 5.0 / 192.0  # Var[1 - max(f, 1/2)] for f ~ U(0, 1)


@dataclass
class TARPResult:
    """TARP (arXiv:2302.03026) on N test pairs.

    ``f``: per pair, the posterior mass of the ball around its reference point that reaches θ*
    (uniform on (0, 1) for a calibrated posterior); ``levels``, ``ecp``: the expected coverage
    probability ECP(α) = mean(f < α); ``atc`` = ∫_{1/2}^{1} (ECP(α) − α) dα (> 0 under-, < 0
    over-confident; 0 ± ``atc_stderr`` when calibrated); ``ks_statistic`` = sup |ECP(α) − α| and
    its one-sample Kolmogorov–Smirnov ``ks_pvalue`` against U(0, 1).
    """

    levels: np.ndarray
    ecp: np.ndarray
    f: np.ndarray
    atc: float
    ks_statistic: float
    ks_pvalue: float

    @property
    def atc_stderr(self) -> float:
        """The ATC's standard error if calibrated: sqrt(5 / 192 / N)."""
        return float(np.sqrt(ATC_VARIANCE / len(self.f)))

    @property
    def atc_pvalue(self) -> float:
        """Two-sided normal p-value of the ATC against 0."""
        from scipy.stats import norm

        return float(2 * norm.sf(abs(self.atc) / self.atc_stderr))

    def passed(self, alpha: float = 0.01) -> bool:
        """Neither the KS test nor the ATC rejects calibration at family-wise level ``alpha``."""
        return bool(min(self.ks_pvalue, self.atc_pvalue) > alpha / 2)


def tarp(
    posterior: Any,
    theta: Any,
    x: Any = None,
    num_samples: int = 200,
    *,
    references: Any = None,
    norm: bool = True,
    num_levels: int = 101,
    seed: int = 0,
) -> TARPResult:
    """TARP coverage test (Lemos et al. 2023, arXiv:2302.03026) on test pairs (θ*_i, x*_i).

    For each pair, ``num_samples`` draws θ_ij at x*_i and a reference point θ_r,i; f_i is the
    fraction of draws nearer θ_r,i than θ*_i (ties and the finite number of draws randomised
    away: f_i = (#{nearer} + U·(1 + #{as near})) / (n + 1), exactly U(0, 1) when calibrated).
    ``posterior`` may also be the draws, shape (N, n, dθ) (then ``x`` is not needed).

    ``references``: (N, dθ) or (dθ,) points; by default uniform in the bounding box of θ*.
    ``norm``: measure distances after scaling each dimension by θ*'s standard deviation.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.standard_normal((400, 2)); x = theta + rng.standard_normal((400, 2))
    >>> exact = x[:, None] / 2 + np.sqrt(0.5) * rng.standard_normal((400, 300, 2))
    >>> tarp(exact, theta).passed()
    True
    >>> shrunk = x[:, None] / 2 + 0.5 * np.sqrt(0.5) * rng.standard_normal((400, 300, 2))
    >>> result = tarp(shrunk, theta); result.passed(), result.atc < 0
    (False, True)
    """
    from scipy.stats import kstest

    rng = np.random.default_rng(seed)
    if isinstance(posterior, np.ndarray) or hasattr(posterior, "__array__"):
        draws = np.asarray(posterior, np.float64)
        theta = np.asarray(theta, np.float64)
        theta = theta[:, None] if theta.ndim == 1 else theta
        if theta.ndim != 2 or len(theta) != len(draws):
            raise ValueError(
                f"theta: expected ({len(draws)}, dθ), one row per set of draws, got {theta.shape}"
            )
        if draws.ndim != 3 or draws.shape[2] != theta.shape[1] or draws.shape[1] < 1:
            raise ValueError(
                f"posterior: draws of shape (N, n, dθ) matching theta {theta.shape}, "
                f"got {draws.shape}"
            )
        ok = np.all(np.isfinite(theta), 1) & np.all(np.isfinite(draws), (1, 2))
        if not ok.all():
            warnings.warn(
                f"tarp: left out {int((~ok).sum())} of {len(ok)} test pairs with NaN/inf in "
                "theta or their draws",
                stacklevel=2,
            )
        theta, draws = theta[ok], draws[ok]
    else:
        if x is None:
            raise ValueError("x: give the test observations (or the draws as `posterior`)")
        theta, x, posterior, ok = _test_set(posterior, theta, x, with_mask=True)
        draws = _all_draws(posterior, int(num_samples), x, seed)
        theta = theta.astype(np.float64)
    n_pairs, n, dim = draws.shape
    if n_pairs < 2:
        raise ValueError(f"theta: need at least 2 finite test pairs, got {n_pairs}")
    low, high = theta.min(0), theta.max(0)
    if references is None:
        refs = rng.uniform(low, high, (n_pairs, dim))
    else:
        refs = np.asarray(references, np.float64)
        if refs.shape not in ((dim,), (len(ok), dim)) or not np.all(np.isfinite(refs)):
            raise ValueError(
                f"references: expected finite values of shape ({dim},) or ({len(ok)}, {dim}), "
                f"got {refs.shape}" + ("" if np.all(np.isfinite(refs)) else " with NaN/inf")
            )
        refs = np.broadcast_to(refs if refs.ndim == 1 else refs[ok], (n_pairs, dim))
    scale = np.where(theta.std(0) > 0, theta.std(0), 1.0) if norm else np.ones(dim)
    d_true = np.linalg.norm((theta - refs) / scale, axis=-1)
    d_draw = np.linalg.norm((draws - refs[:, None]) / scale, axis=-1)
    nearer = np.sum(d_draw < d_true[:, None], 1)
    ties = np.sum(d_draw == d_true[:, None], 1)
    f = _level(nearer, ties, rng.uniform(size=n_pairs), n)
    levels = np.linspace(0.0, 1.0, int(num_levels))
    ecp = np.mean(f[:, None] < levels[None], 0)
    atc = float(np.mean(1.0 - np.maximum(f, 0.5)) - 0.375)
    ks = kstest(f, "uniform")
    return TARPResult(levels, ecp, f, atc, float(ks.statistic), float(ks.pvalue))
