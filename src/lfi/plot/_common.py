"""Colours and the Agg canvas shared by the plotting modules."""

from __future__ import annotations

import os
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SAMPLES_COLOR = "C0"
REFERENCE_COLOR = "C1"
TRUTH_COLOR = "k"
BAND_COLOR = "0.85"
FAIL_COLOR = "C3"


def save(fig: Figure, path: Any) -> Figure:
    """Attach an Agg canvas (no pyplot, no display) and write a PNG if ``path`` is given."""
    FigureCanvasAgg(fig)
    if path is not None:
        fig.savefig(os.fspath(path), format="png", dpi=100)
    return fig


def grid_shape(num: int, most: int = 5) -> tuple[int, int]:
    """(rows, columns) for ``num`` panels, at most ``most`` per row."""
    cols = min(num, most)
    return (num + cols - 1) // cols, cols
