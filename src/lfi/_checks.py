"""Argument checks shared by the modules: one message shape, naming the argument."""

from __future__ import annotations

from typing import Any

import numpy as np


def integer(value: Any, name: str, low: int = 1) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``low``, else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)
