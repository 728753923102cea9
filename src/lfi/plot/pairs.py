"""Corner plots of posterior samples, with reference samples and the true θ overlaid.

The diagonal holds the 1-d marginal histograms, the panels below it the 2-d marginals (scatter);
reference samples (e.g. from the true posterior) come in a second colour, the true θ as lines.

>>> import numpy as np
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

from lfi.plot._common import REFERENCE_COLOR, SAMPLES_COLOR, TRUTH_COLOR

__all__ = ["pairplot"]

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
