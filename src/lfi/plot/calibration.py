"""Plots of the calibration checks of :mod:`lfi.calibration`.

- :func:`sbc_ranks`: SBC rank histograms with the 99% pointwise binomial band per bin;
- :func:`sbc_ecdf`: the ECDF of the SBC ranks minus the uniform CDF, with the simultaneous band
  of Säilynoja, Bürkner & Vehtari (2022, arXiv:2103.10522);
- :func:`coverage_curve`: expected coverage of HPD regions against the credibility level;
- :func:`tarp_curve`: TARP's expected coverage probability against the credibility level with
  the Kolmogorov–Smirnov band (Lemos et al. 2023, arXiv:2302.03026).

An over-confident posterior shows as a ∪-shaped rank histogram, an ECDF difference that is
positive at low ranks and negative at high ones, and coverage curves below the diagonal.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from lfi.plot._common import BAND_COLOR, FAIL_COLOR, SAMPLES_COLOR, TRUTH_COLOR, grid_shape, save

__all__ = ["coverage_curve", "sbc_ecdf", "sbc_ranks", "tarp_curve"]

PathLike = str | os.PathLike[str] | None


def sbc_ranks(result: Any, bins: int = 20, path: PathLike = None) -> Figure:
    """One rank histogram per dimension of an :class:`lfi.diagnostics.SBCResult`, with the
    0.5%–99.5% binomial band of a uniform histogram (grey).

    >>> import numpy as np
    >>> from lfi.diagnostics import SBCResult
    >>> ranks = np.random.default_rng(0).integers(0, 101, (300, 2))
    >>> len(sbc_ranks(SBCResult(ranks, 100, np.ones(2))).axes)
    2
    """
    from scipy.stats import binom

    ranks, num = np.asarray(result.ranks), int(result.num_samples)
    n, dim = ranks.shape
    bins = min(int(bins), num + 1)
    which = np.arange(num + 1) * bins // (num + 1)
    width = np.bincount(which, minlength=bins) / (num + 1)
    rows, cols = grid_shape(dim)
    fig = Figure(figsize=(2.6 * cols, 2.2 * rows))
    for d in range(dim):
        ax = fig.add_subplot(rows, cols, d + 1)
        counts = np.bincount(which[ranks[:, d]], minlength=bins)
        lo, hi = binom.ppf(0.005, n, width), binom.ppf(0.995, n, width)
        ax.fill_between(np.arange(bins), lo, hi, step="mid", color=BAND_COLOR)
        ax.bar(np.arange(bins), counts, width=1.0, color=SAMPLES_COLOR, alpha=0.8)
        ax.set_title(f"θ{d + 1}  p = {result.pvalues[d]:.2g}", fontsize=9)
        ax.set_yticks([])
        ax.set_xticks([])
    fig.suptitle("SBC ranks (grey: 99% band of a uniform histogram)", fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def sbc_ecdf(result: Any, level: float = 0.95, path: PathLike = None) -> Figure:
    """The ECDF of each dimension's SBC ranks minus the uniform CDF (Säilynoja et al. 2022,
    arXiv:2103.10522), with the grey band a uniform rank set stays inside at every point at
    once with probability ``level`` (:func:`lfi.calibration.ecdf_band`); a curve leaving it is
    drawn red. Positive at low ranks and negative at high ones: ranks piled at both ends, an
    over-confident posterior; the reverse: under-confident; one sign throughout: biased.

    >>> import numpy as np
    >>> from lfi.diagnostics import SBCResult
    >>> ranks = np.random.default_rng(0).integers(0, 101, (300, 2))
    >>> fig = sbc_ecdf(SBCResult(ranks, 100, np.ones(2)))
    >>> len(fig.axes), fig.axes[0].get_lines()[-1].get_color()
    (2, 'C0')
    """
    from lfi.calibration import ecdf_band

    ranks, num = np.asarray(result.ranks), int(result.num_samples)
    n, dim = ranks.shape
    z, lo, hi = ecdf_band(n, num, level)
    j = np.round(z * (num + 1)).astype(int)
    rows, cols = grid_shape(dim)
    fig = Figure(figsize=(2.6 * cols, 2.2 * rows))
    for d in range(dim):
        ax = fig.add_subplot(rows, cols, d + 1)
        diff = np.mean(ranks[:, d][:, None] < j[None], 0) - z
        inside = bool(np.all((diff >= lo - z - 1e-12) & (diff <= hi - z + 1e-12)))
        ax.fill_between(z, lo - z, hi - z, color=BAND_COLOR, step="mid")
        ax.axhline(0.0, color=TRUTH_COLOR, lw=0.6)
        ax.plot(z, diff, color=SAMPLES_COLOR if inside else FAIL_COLOR, drawstyle="steps-mid")
        ax.set_title(f"θ{d + 1}" + ("" if inside else "  outside"), fontsize=9)
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"SBC rank ECDF − uniform CDF (grey: {level:.0%} simultaneous band)", fontsize=10)
    fig.supxlabel("fractional rank", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def coverage_curve(result: Any, path: PathLike = None) -> Figure:
    """Expected coverage of HPD regions at every level (from an
    :class:`lfi.diagnostics.CoverageResult`) against the diagonal, with a ±2 standard-error band:
    below the diagonal is over-confident, above conservative.

    >>> import numpy as np
    >>> from lfi.diagnostics import CoverageResult
    >>> alphas = np.random.default_rng(0).random(300)
    >>> len(coverage_curve(CoverageResult(np.array([0.5]), np.array([0.5]), alphas)).axes)
    1
    """
    alphas = np.sort(np.asarray(result.alphas))
    n = len(alphas)
    levels = np.linspace(0, 1, 201)
    covered = np.searchsorted(alphas, levels, side="right") / n
    se = np.sqrt(levels * (1 - levels) / n)
    fig = Figure(figsize=(4, 4))
    ax = fig.add_subplot(1, 1, 1)
    ax.fill_between(levels, levels - 2 * se, levels + 2 * se, color=BAND_COLOR, label="±2 s.e.")
    ax.plot([0, 1], [0, 1], color=TRUTH_COLOR, lw=0.8)
    ax.plot(levels, covered, color=SAMPLES_COLOR, label="posterior")
    ax.set_xlabel("credibility level of the HPD region")
    ax.set_ylabel("fraction of true θ inside")
    ax.set_title(f"Expected coverage ({n} test simulations)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def tarp_curve(result: Any, level: float = 0.95, path: PathLike = None) -> Figure:
    """TARP's expected coverage probability against the credibility level (from an
    :class:`lfi.diagnostics.TARPResult`), with the diagonal and the grey band in which the
    curve of a calibrated posterior stays everywhere with probability ``level`` (the exact
    Kolmogorov–Smirnov distribution for N test pairs). Title: ATC ± its standard error, the KS
    p-value and the verdict of ``result.passed()``.

    >>> import numpy as np
    >>> from lfi.calibration import tarp
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(200, 2))
    >>> draws = theta[:, None] + rng.normal(size=(200, 100, 2))  # too wide: under-confident
    >>> fig = tarp_curve(tarp(draws, theta))
    >>> "failed" in fig.axes[0].get_title()
    True
    """
    from scipy.stats import kstwo

    f = np.sort(np.asarray(result.f))
    n = len(f)
    alpha = np.linspace(0, 1, 401)
    ecp = np.searchsorted(f, alpha, side="left") / n  # mean(f < α)
    half = float(kstwo.ppf(level, n))
    fig = Figure(figsize=(4, 4))
    ax = fig.add_subplot(1, 1, 1)
    ax.fill_between(
        alpha,
        np.clip(alpha - half, 0, 1),
        np.clip(alpha + half, 0, 1),
        color=BAND_COLOR,
        label=f"{level:.0%} KS band",
    )
    ax.plot([0, 1], [0, 1], color=TRUTH_COLOR, lw=0.8)
    ok = result.passed()
    ax.plot(alpha, ecp, color=SAMPLES_COLOR if ok else FAIL_COLOR, label="posterior")
    ax.set_xlabel("credibility level α")
    ax.set_ylabel("expected coverage probability")
    ax.set_title(
        f"TARP ({n} pairs): ATC {result.atc:+.3f} ± {result.atc_stderr:.3f}, "
        f"KS p = {result.ks_pvalue:.2g}, {'passed' if ok else 'failed'}",
        fontsize=8,
    )
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return save(fig, path)
