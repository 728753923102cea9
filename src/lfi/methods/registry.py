"""Method names → estimator classes, for ``lfi.infer`` and ``lfi run --method``."""

from __future__ import annotations

from lfi.methods.npe import NPE

METHODS: dict[str, type] = {"npe": NPE}


def get_method(name: str) -> type:
    """The estimator class for a method name; unknown names list the valid ones."""
    key = str(name).lower()
    if key not in METHODS:
        raise ValueError(
            f"method: unknown {name!r}; valid methods are {', '.join(sorted(METHODS))}"
        )
    return METHODS[key]
