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
