"""Method names → estimator factories, for ``lfi.infer`` and ``lfi run --method``.

Each factory is called as ``factory(prior, progress=..., **options)`` and returns an estimator
with ``.fit(theta, x, seed=...)`` → posterior.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from lfi.methods.fmpe import FMPE
from lfi.methods.nle import NLE
from lfi.methods.npe import NPE
from lfi.methods.npse import NPSE
from lfi.methods.nre import NRE

METHODS: dict[str, Callable] = {
    "npe": NPE,
    "bnpe": functools.partial(NPE, balance=100.0),  # balanced NPE (arXiv:2304.10978)
    # NPE with a calibration penalty (arXiv:2310.13402)
    "calnpe": functools.partial(NPE, calibration=100.0),
    "nle": NLE,
    "nre_a": functools.partial(NRE, variant="a"),
    "nre_b": functools.partial(NRE, variant="b"),
    "nre": functools.partial(NRE, variant="b"),  # as in sbi, NRE means NRE-B
    "nre_c": functools.partial(NRE, variant="c"),
    "bnre": functools.partial(NRE, variant="bnre"),
    "fmpe": FMPE,
    "npse": NPSE,
}


def get_method(name: str) -> Callable:
    """The estimator factory for a method name; unknown names list the valid ones."""
    key = str(name).lower()
    if key not in METHODS:
        from lfi.methods.mining import GOLD_METHODS

        extra = ["snle", "snpe", "snre", "rejection_abc", "smc_abc", *GOLD_METHODS]
        valid = ", ".join(sorted([*METHODS, *extra]))
        raise ValueError(f"method: unknown {name!r}; valid methods are {valid}")
    return METHODS[key]
