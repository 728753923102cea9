"""Plots of posterior predictive checks, training histories and likelihood-ratio curves.

- :func:`predictive`: the posterior predictive simulations of an
  :class:`lfi.diagnostics.PPCResult` against x_o (Gelman, Meng & Stern 1996);
- :func:`loss_curves`: training and validation loss per epoch from :class:`lfi.train.History`;
- :func:`q_curve`: q(θ) = −2 log r̂ with the confidence-set threshold, from
  :func:`lfi.frequentist.confidence_set` (Cranmer, Pavez & Louppe, arXiv:1506.02169).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from lfi.plot._common import FAIL_COLOR, SAMPLES_COLOR, TRUTH_COLOR, grid_shape, save

__all__ = ["loss_curves", "predictive", "q_curve"]

PathLike = str | os.PathLike[str] | None


def predictive(
    result: Any, labels: Sequence[str] | None = None, max_panels: int = 12, path: PathLike = None
) -> Figure:
    """Posterior predictive check of an :class:`lfi.diagnostics.PPCResult`: for dx ≤
    ``max_panels`` a histogram of the predictive x_k per dimension with x_o[k] as a red line
    (title: its predictive quantile), then the predictive Mahalanobis distances with x_o's;
    for larger dx one panel of standardised 50% and 95% predictive intervals with x_o as dots.

    >>> import numpy as np
    >>> from lfi.diagnostics import predictive_check
    >>> result = predictive_check(np.random.default_rng(0).normal(size=(500, 3)), [0, 1, 3])
    >>> fig = predictive(result)
    >>> len(fig.axes), fig.axes[2].get_title()
    (4, 'x3  q = 1')
    """
    x_pred, x_o = np.asarray(result.x_pred), np.asarray(result.x_o)
    dim = x_o.size
    labels = [f"x{k + 1}" for k in range(dim)] if labels is None else list(labels)
    if len(labels) != dim:
        raise ValueError(f"labels: expected {dim}, got {len(labels)}")
    if dim > max_panels:
        fig = Figure(figsize=(min(12, 2 + 0.25 * dim), 3.5))
        ax = fig.add_subplot(1, 1, 1)
        mean, sd = x_pred.mean(0), np.where(x_pred.std(0) > 0, x_pred.std(0), 1.0)
        z = (x_pred - mean) / sd
        k = np.arange(dim)
        for lo, hi, width in ((0.025, 0.975, 2), (0.25, 0.75, 6)):
            a, b = np.quantile(z, lo, 0), np.quantile(z, hi, 0)
            ax.vlines(k, a, b, color=SAMPLES_COLOR, lw=width, alpha=0.6)
        bad = result.pvalues < 0.05
        ax.scatter(k, (x_o - mean) / sd, c=np.where(bad, FAIL_COLOR, TRUTH_COLOR), s=12, zorder=3)
        ax.set_xticks(k, labels, rotation=90, fontsize=6)
        ax.set_ylabel("(x − predictive mean) / sd")
        ax.set_title("Posterior predictive: 50%/95% intervals, x_o as dots", fontsize=10)
    else:
        rows, cols = grid_shape(dim + 1, 4)
        fig = Figure(figsize=(2.6 * cols, 2.2 * rows))
        for d in range(dim):
            ax = fig.add_subplot(rows, cols, d + 1)
            ax.hist(x_pred[:, d], bins=40, color=SAMPLES_COLOR, alpha=0.7)
            ax.axvline(x_o[d], color=FAIL_COLOR, lw=1.5)
            ax.set_title(f"{labels[d]}  q = {result.quantiles[d]:.2g}", fontsize=9)
            ax.set_yticks([])
        ax = fig.add_subplot(rows, cols, dim + 1)
        ax.hist(result.distances, bins=40, color="0.6")
        ax.axvline(result.distance, color=FAIL_COLOR, lw=1.5)
        ax.set_title(f"distance  p = {result.distance_pvalue:.2g}", fontsize=9)
        ax.set_yticks([])
        fig.suptitle("Posterior predictive (red: x_o)", fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def loss_curves(history: Any, path: PathLike = None, title: str | None = None) -> Figure:
    """Training and validation loss per epoch, with the best (kept) epoch marked. ``history``:
    a :class:`lfi.train.History`, its ``to_dict()``, or a trained posterior (``.history``,
    kept by ``save`` and ``lfi.load``).

    >>> from lfi.train import History
    >>> fig = loss_curves(History(train_loss=[3.0, 2.0, 1.5], val_loss=[3.1, 2.2, 2.3],
    ...                           best_epoch=1))
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['training', 'validation', 'best epoch (2)']
    """
    if hasattr(history, "history") and not hasattr(history, "train_loss"):
        history = history.history
    if history is None:
        raise ValueError("history: none recorded (this posterior was not trained by lfi's loop)")
    data = history if isinstance(history, dict) else history.to_dict()
    train, val = np.asarray(data["train_loss"], float), np.asarray(data["val_loss"], float)
    if train.size == 0:
        raise ValueError("history: no epochs recorded")
    epochs = np.arange(1, train.size + 1)
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(epochs, train, color=SAMPLES_COLOR, label="training")
    ax.plot(epochs, val, color="C1", label="validation")
    best = int(data.get("best_epoch", -1))
    if best >= 0:
        ax.axvline(best + 1, color=TRUTH_COLOR, lw=0.8, ls="--", label=f"best epoch ({best + 1})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    seconds = float(data.get("seconds", 0.0))
    ax.set_title(title or f"Training ({train.size} epochs, {seconds:.1f} s)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def q_curve(
    sets: Any,
    labels: Sequence[str] | None = None,
    truth: Any = None,
    path: PathLike = None,
) -> Figure:
    """q(θ) = −2 [ℓ(θ) − ℓ(θ̂)] of one or more :class:`lfi.frequentist.ConfidenceSet` (e.g. a
    learned ratio beside the exact likelihood), with each set's threshold (dashed; a curve for a
    Neyman construction) and its accepted region shaded. For a 2-d grid: the boundary of each
    set (contour q = threshold) and its MLE (+). ``truth``: the true θ, marked in black.

    >>> from lfi.frequentist import ConfidenceSet, grid
    >>> g = grid(-2.0, 2.0, 81)
    >>> fig = q_curve(ConfidenceSet(g, g[:, 0] ** 2, np.full(81, 3.84), 0.95, "wilks"))
    >>> fig.axes[0].get_ylabel()
    'q(θ) = −2 log r̂'
    """
    sets = [sets] if hasattr(sets, "q") else list(sets)
    labels = [f"set {i + 1}" for i in range(len(sets))] if labels is None else list(labels)
    if not sets or len(labels) != len(sets):
        raise ValueError(f"labels: expected one per set ({len(sets)}), got {len(labels)}")
    dim = np.asarray(sets[0].grid).shape[1]
    if dim > 2:
        raise ValueError(f"sets: q_curve draws 1-d or 2-d grids, got {dim}-d")
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot(1, 1, 1)
    for i, (cs, label) in enumerate(zip(sets, labels)):
        color = f"C{i}"
        g, q = np.asarray(cs.grid), np.asarray(cs.q)
        thr = np.broadcast_to(np.asarray(cs.threshold, float), q.shape)
        text = f"{label} ({cs.level:.0%} {cs.method})"
        if dim == 1:
            order = np.argsort(g[:, 0])
            t, qs, ths = g[order, 0], q[order], thr[order]
            ax.plot(t, qs, color=color, label=text)
            ax.plot(t, ths, color=color, ls="--", lw=0.8)
            ax.fill_between(t, 0, qs, where=qs <= ths, color=color, alpha=0.15, lw=0)
        else:
            a1, a2 = np.unique(g[:, 0]), np.unique(g[:, 1])
            if len(a1) * len(a2) != len(g):
                raise ValueError("sets: a 2-d set needs a Cartesian grid (lfi.frequentist.grid)")
            order = np.lexsort((g[:, 1], g[:, 0]))
            diff = (q - thr)[order].reshape(len(a1), len(a2)).T
            ax.contour(a1, a2, diff, levels=[0.0], colors=[color])
            best = g[np.argmin(q)]
            ax.plot(best[0], best[1], "+", color=color, ms=10, label=text)
    if truth is not None:
        true = np.asarray(truth, float).reshape(-1)
        if dim == 1:
            ax.axvline(true[0], color=TRUTH_COLOR, lw=0.8, label="truth")
        else:
            ax.plot(true[0], true[1], "x", color=TRUTH_COLOR, label="truth")
    if dim == 1:
        ax.set_xlabel("θ")
        ax.set_ylabel("q(θ) = −2 log r̂")
        ax.set_ylim(bottom=0)
        ax.set_title("q(θ); dashed: threshold; shaded: the confidence set", fontsize=10)
    else:
        ax.set_xlabel("θ1")
        ax.set_ylabel("θ2")
        ax.set_title("confidence sets: contour q(θ) = threshold", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)
