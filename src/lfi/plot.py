"""Plots of posterior samples and of calibration checks.

:func:`sbc_ranks` and :func:`coverage_curve` draw the results of :func:`lfi.diagnostics.sbc` and
:func:`lfi.diagnostics.expected_coverage`: rank histograms with the band a uniform histogram stays
in 99% of the time per bin, and the coverage of HPD regions at every level against the diagonal.

:func:`pairplot` draws a corner plot: the 1-d marginal histogram of each parameter on the
diagonal and the 2-d marginals (scatter) below it, optionally with reference samples (for
example from the true posterior) in a second colour and the true θ marked with lines.

Figures are made on the non-interactive Agg canvas, without pyplot, so nothing needs a
display and no figure is kept alive by a global registry.

>>> import numpy as np
>>> from lfi.plot import pairplot
>>> rng = np.random.default_rng(0)
>>> fig = pairplot(rng.normal(size=(500, 3)), truth=[0.0, 0.0, 0.0])
>>> len(fig.axes)  # 3 diagonal + 3 lower-triangle panels
6
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

__all__ = ["coverage_curve", "pairplot", "sbc_ranks"]

SAMPLES_COLOR = "C0"
REFERENCE_COLOR = "C1"
TRUTH_COLOR = "k"
MAX_SCATTER = 4000  # points per set drawn in each 2-d panel (histograms use all)


def _as_samples(value: Any, name: str, dim: int | None = None) -> np.ndarray:
    """Return ``value`` as a finite ``(n, dim)`` float array, or raise naming ``name``."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(
            f"`{name}` must be a non-empty 2-d array of shape (num_samples, dim), "
            f"got shape {arr.shape}"
        )
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"`{name}` has {arr.shape[1]} columns but `samples` has {dim}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` contains non-finite values (NaN or inf)")
    return arr


def _limits(columns: list[np.ndarray]) -> tuple[float, float]:
    """A padded (low, high) range covering all the given 1-d arrays."""
    low = min(float(np.min(c)) for c in columns)
    high = max(float(np.max(c)) for c in columns)
    pad = 0.05 * (high - low) if high > low else max(0.5, 0.05 * abs(low))
    return low - pad, high + pad


def _thin(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if arr.shape[0] <= MAX_SCATTER:
        return arr
    return arr[rng.choice(arr.shape[0], size=MAX_SCATTER, replace=False)]


def pairplot(
    samples: Any,
    *,
    reference: Any | None = None,
    truth: Any | None = None,
    labels: Sequence[str] | None = None,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Corner plot of ``samples``: marginal histograms on the diagonal, scatter below.

    Args:
        samples: array of shape ``(num_samples, dim)``, drawn in blue.
        reference: optional array ``(num_reference, dim)`` overlaid in orange (e.g. samples
            from the reference posterior).
        truth: optional true parameter, shape ``(dim,)``; marked with black lines on every
            panel and a cross on the 2-d panels.
        labels: ``dim`` axis labels; defaults to ``θ_1 … θ_dim``.
        path: if given, the figure is also written there as a PNG.
        title: optional figure title.

    Returns:
        The :class:`matplotlib.figure.Figure` (on an Agg canvas), with ``dim * (dim + 1) / 2``
        axes: row by row, the panels on and below the diagonal. The 2-d panels draw at most
        4000 points of each set, picked at random with a fixed seed.

    Raises:
        ValueError: ``samples`` or ``reference`` is not a non-empty 2-d finite array, their
            widths differ, or ``truth`` / ``labels`` do not have ``dim`` entries.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> fig = pairplot(rng.normal(size=(200, 2)), reference=rng.normal(size=(300, 2)),
    ...                labels=["a", "b"], title="demo")
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['', 'a', 'b']
    >>> pairplot(np.zeros(5))
    Traceback (most recent call last):
    ...
    ValueError: `samples` must be a non-empty 2-d array of shape (num_samples, dim), got shape (5,)
    """
    smp = _as_samples(samples, "samples")
    dim = smp.shape[1]
    ref = None if reference is None else _as_samples(reference, "reference", dim)
    true = None
    if truth is not None:
        true = np.asarray(truth, dtype=float).reshape(-1)
        if true.shape != (dim,):
            raise ValueError(
                f"`truth` must have {dim} entries (one per column of `samples`), "
                f"got shape {np.shape(truth)}"
            )
    if labels is None:
        labels = [rf"$\theta_{{{i + 1}}}$" for i in range(dim)]
    elif isinstance(labels, str) or len(labels) != dim:
        raise ValueError(f"`labels` must be a sequence of {dim} strings, got {labels!r}")

    sets = [(smp, SAMPLES_COLOR, "samples")]
    if ref is not None:
        sets.insert(0, (ref, REFERENCE_COLOR, "reference"))  # drawn first, samples on top
    limits = []
    for j in range(dim):
        cols = [s[:, j] for s, _, _ in sets]
        if true is not None and np.isfinite(true[j]):
            cols.append(true[j : j + 1])
        limits.append(_limits(cols))
    rng = np.random.default_rng(0)
    thinned = [(_thin(s, rng), c) for s, c, _ in sets]
    num_bins = int(np.clip(np.sqrt(smp.shape[0]), 10, 50))

    size = max(2.0 * dim, 3.0)
    fig = Figure(figsize=(size, size), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(dim, dim)
    for i in range(dim):  # row
        for j in range(i + 1):  # column
            ax = fig.add_subplot(grid[i, j])
            ax.set_xlim(limits[j])
            if i == j:
                edges = np.linspace(*limits[j], num_bins + 1)
                for s, color, _ in sets:
                    ax.hist(s[:, j], bins=edges, density=True, histtype="step", color=color)
                ax.set_yticks([])
            else:
                ax.set_ylim(limits[i])
                for s, color in thinned:
                    alpha = float(np.clip(800.0 / s.shape[0], 0.1, 0.6))
                    ax.scatter(
                        s[:, j], s[:, i], s=3, color=color, alpha=alpha, lw=0, rasterized=True
                    )
                if true is not None:
                    ax.axhline(true[i], color=TRUTH_COLOR, lw=0.8)
                    ax.plot(true[j], true[i], "x", color=TRUTH_COLOR, ms=6)
            if true is not None:
                ax.axvline(true[j], color=TRUTH_COLOR, lw=0.8)
            if i == dim - 1:
                ax.set_xlabel(labels[j])
            else:
                ax.tick_params(labelbottom=False)
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i])
            elif i != j:
                ax.tick_params(labelleft=False)

    handles = [Line2D([], [], color=c, label=name) for _, c, name in reversed(sets)]
    if true is not None:
        handles.append(Line2D([], [], color=TRUTH_COLOR, lw=0.8, label="truth"))
    if len(handles) > 1:  # the empty upper triangle holds the legend
        owner = fig.axes[0] if dim == 1 else fig
        owner.legend(handles=handles, loc="upper right", frameon=False, fontsize="small")
    if title is not None:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(os.fspath(path), format="png", dpi=100)
    return fig


def _save(fig: Figure, path: Any) -> Figure:
    FigureCanvasAgg(fig)
    if path is not None:
        fig.savefig(os.fspath(path), format="png", dpi=100)
    return fig


def sbc_ranks(result: Any, bins: int = 20, path: str | os.PathLike[str] | None = None) -> Figure:
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
    fig = Figure(figsize=(2.6 * min(dim, 5), 2.2 * ((dim + 4) // 5)))
    for d in range(dim):
        ax = fig.add_subplot((dim + 4) // 5, min(dim, 5), d + 1)
        counts = np.bincount(which[ranks[:, d]], minlength=bins)
        lo, hi = binom.ppf(0.005, n, width), binom.ppf(0.995, n, width)
        ax.fill_between(np.arange(bins), lo, hi, step="mid", color="0.85")
        ax.bar(np.arange(bins), counts, width=1.0, color=SAMPLES_COLOR, alpha=0.8)
        ax.set_title(f"θ{d + 1}  p = {result.pvalues[d]:.2g}", fontsize=9)
        ax.set_yticks([])
        ax.set_xticks([])
    fig.suptitle("SBC ranks (grey: 99% band of a uniform histogram)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def coverage_curve(result: Any, path: str | os.PathLike[str] | None = None) -> Figure:
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
    ax.fill_between(levels, levels - 2 * se, levels + 2 * se, color="0.85", label="±2 s.e.")
    ax.plot([0, 1], [0, 1], color=TRUTH_COLOR, lw=0.8)
    ax.plot(levels, covered, color=SAMPLES_COLOR, label="posterior")
    ax.set_xlabel("credibility level of the HPD region")
    ax.set_ylabel("fraction of true θ inside")
    ax.set_title(f"Expected coverage ({n} test simulations)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
