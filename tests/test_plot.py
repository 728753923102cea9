"""Tests for lfi.plot.pairplot."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from lfi.plot import pairplot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_writes_non_empty_png(tmp_path, rng) -> None:
    path = tmp_path / "corner.png"
    fig = pairplot(
        rng.normal(size=(400, 3)),
        reference=rng.normal(size=(300, 3)),
        truth=[0.0, 0.5, -0.5],
        labels=["a", "b", "c"],
        path=path,
        title="test",
    )
    assert isinstance(fig, Figure)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 5_000
    assert fig.get_suptitle() == "test"


@pytest.mark.parametrize("dim", [1, 2, 4])
def test_one_axis_per_panel_on_and_below_the_diagonal(dim, rng) -> None:
    fig = pairplot(rng.normal(size=(100, dim)))
    assert len(fig.axes) == dim * (dim + 1) // 2
    # the bottom row carries the default labels
    bottom = fig.axes[-dim:]
    assert [ax.get_xlabel() for ax in bottom] == [rf"$\theta_{{{i + 1}}}$" for i in range(dim)]


def test_truth_and_reference_are_drawn(rng) -> None:
    fig = pairplot(rng.normal(size=(50, 2)), reference=rng.normal(size=(60, 2)), truth=[1, 2])
    diag0, lower, diag1 = fig.axes
    assert len(diag0.patches) == 2  # one step histogram per set
    assert len(lower.collections) == 2  # one scatter per set
    assert [line.get_xdata()[0] for line in diag0.lines] == [1.0]
    assert [line.get_xdata()[0] for line in diag1.lines] == [2.0]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["samples", "reference", "truth"]


def test_accepts_jax_arrays(rng) -> None:
    jnp = pytest.importorskip("jax.numpy")
    fig = pairplot(jnp.asarray(rng.normal(size=(30, 2))), truth=jnp.zeros(2))
    assert len(fig.axes) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"samples": np.zeros(10)}, "`samples` must be a non-empty 2-d array"),
        ({"samples": np.zeros((0, 2))}, "`samples` must be a non-empty 2-d array"),
        ({"samples": np.full((5, 2), np.nan)}, "`samples` contains non-finite"),
        ({"reference": np.zeros((5, 3))}, "`reference` has 3 columns but `samples` has 2"),
        ({"reference": np.zeros(5)}, "`reference` must be a non-empty 2-d array"),
        ({"truth": [0.0, 1.0, 2.0]}, "`truth` must have 2 entries"),
        ({"labels": ["only one"]}, "`labels` must be a sequence of 2 strings"),
        ({"labels": "ab"}, "`labels` must be a sequence of 2 strings"),
    ],
)
def test_bad_shapes_raise(kwargs, match) -> None:
    args = {"samples": np.zeros((5, 2)), **kwargs}
    with pytest.raises(ValueError, match=match):
        pairplot(args.pop("samples"), **args)


# --- calibration, predictive, training and q(θ) plots: PNGs show what their titles say ---


def _png(path) -> int:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    return len(data)


def _calibrated_and_shrunk(rng, shrink):
    theta = rng.normal(size=(300, 2))
    x = theta + rng.normal(size=(300, 2))
    draws = x[:, None] / 2 + shrink * np.sqrt(0.5) * rng.normal(size=(300, 200, 2))
    return theta, draws


def test_sbc_ecdf_marks_the_dimensions_that_leave_the_band(tmp_path, rng) -> None:
    from lfi.diagnostics import SBCResult
    from lfi.plot import sbc_ecdf

    theta = rng.normal(size=(300, 2))
    x = theta + rng.normal(size=(300, 2))
    noise = np.sqrt(0.5) * rng.normal(size=(300, 100, 2))
    exact, shrunk = x[:, None] / 2 + noise, x[:, None] / 2 + 0.5 * noise
    ranks = np.concatenate(
        [np.sum(exact < theta[:, None], 1), np.sum(shrunk < theta[:, None], 1)], axis=1
    )  # dims 1-2 calibrated, 3-4 over-confident
    fig = sbc_ecdf(SBCResult(ranks, 100, np.ones(4)), path=tmp_path / "ecdf.png")
    assert _png(tmp_path / "ecdf.png") > 5_000
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:2] == ["θ1", "θ2"] and all("outside" in t for t in titles[2:])
    assert "simultaneous" in fig.get_suptitle()


def test_tarp_curve_says_passed_or_failed(tmp_path, rng) -> None:
    from lfi.calibration import tarp
    from lfi.plot import tarp_curve

    for shrink, verdict in ((1.0, "passed"), (0.5, "failed")):
        theta, draws = _calibrated_and_shrunk(rng, shrink)
        result = tarp(draws, theta)
        path = tmp_path / f"tarp{shrink}.png"
        fig = tarp_curve(result, path=path)
        assert _png(path) > 5_000
        assert verdict in fig.axes[0].get_title()
        curve = fig.axes[0].get_lines()[-1].get_ydata()
        assert curve[0] == 0.0 and curve[-1] == 1.0  # ECP from 0 to 1


def test_predictive_plot_has_a_panel_per_dimension_or_intervals(tmp_path, rng) -> None:
    from lfi.diagnostics import predictive_check
    from lfi.plot import predictive

    result = predictive_check(rng.normal(size=(1000, 3)), [0.0, 0.5, 5.0])
    fig = predictive(result, labels=["a", "b", "c"], path=tmp_path / "ppc.png")
    assert _png(tmp_path / "ppc.png") > 5_000
    assert [ax.get_title().split()[0] for ax in fig.axes] == ["a", "b", "c", "distance"]
    assert fig.axes[2].get_lines()[0].get_xdata()[0] == 5.0  # x_o drawn where it is
    wide = predictive_check(rng.normal(size=(500, 20)), np.zeros(20))
    fig = predictive(wide, path=tmp_path / "ppc20.png")
    assert len(fig.axes) == 1 and _png(tmp_path / "ppc20.png") > 5_000


def test_loss_curves_from_a_history_or_a_posterior(tmp_path) -> None:
    from lfi.plot import loss_curves
    from lfi.train import History

    history = History(train_loss=[3.0, 2.0, 1.0, 0.9], val_loss=[3.2, 2.1, 1.5, 1.6], best_epoch=2)
    fig = loss_curves(history, path=tmp_path / "loss.png")
    assert _png(tmp_path / "loss.png") > 5_000
    train, val, best = fig.axes[0].get_lines()
    assert list(val.get_ydata()) == [3.2, 2.1, 1.5, 1.6] and best.get_xdata()[0] == 3

    class Loaded:
        history = None

    with pytest.raises(ValueError, match="none recorded"):
        loss_curves(Loaded())


def test_q_curve_draws_q_and_the_threshold_in_1d_and_2d(tmp_path) -> None:
    from lfi.frequentist import ConfidenceSet, grid
    from lfi.plot import q_curve

    g = grid(-2.0, 2.0, 81)
    exact = ConfidenceSet(g, g[:, 0] ** 2, np.full(81, 3.84), 0.95, "wilks")
    wider = ConfidenceSet(g, 0.5 * g[:, 0] ** 2, np.full(81, 3.84), 0.95, "wilks")
    fig = q_curve([exact, wider], labels=["exact", "learned"], truth=[0.1], path=tmp_path / "q.png")
    assert _png(tmp_path / "q.png") > 5_000
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == [
        "exact (95% wilks)",
        "learned (95% wilks)",
    ]
    assert ax.get_lines()[1].get_ydata()[0] == 3.84  # the threshold
    g2 = grid([-2.0, -2.0], [2.0, 2.0], 41)
    disc = ConfidenceSet(g2, np.sum(g2**2, 1), np.full(len(g2), 5.99), 0.95, "wilks")
    fig = q_curve(disc, path=tmp_path / "q2.png")
    assert _png(tmp_path / "q2.png") > 5_000
    assert fig.axes[0].get_xlabel() == "θ1"
    with pytest.raises(ValueError, match="labels"):
        q_curve([exact, wider], labels=["one"])
