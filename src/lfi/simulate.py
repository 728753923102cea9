"""Running simulators: three forms behind one call, reproducible from one seed, nothing dropped.

A simulator can be

(a) a batched numpy callable ``f(theta) -> x`` with ``theta`` of shape ``(n, dθ)`` (the default
    for a one-argument callable);
(b) a per-sample callable ``f(theta_i) -> x_i``, wrapped with :func:`per_sample` (lfi loops);
(c) a pure JAX function ``f(key, theta_i) -> x_i`` (any callable with two required positional
    parameters, not counting one named ``rng`` in second place, which makes ``f(theta, rng)`` a
    batched numpy simulator; or wrapped with :func:`jax_simulator`), which lfi vmaps and jits.

Numpy/torch simulators draw their randomness from a generator that lfi seeds: a callable with an
``rng`` keyword receives a ``numpy.random.Generator``; otherwise numpy's (and torch's, when it is
imported) global generator is seeded from the run's seed before each chunk.

>>> import numpy as np, lfi
>>> prior = lfi.BoxUniform([0.0, 0.0], [2.0, 2.0])
>>> def f(theta, rng):
...     return theta + 0.1 * rng.standard_normal(theta.shape)
>>> theta, x = lfi.simulate(f, prior, 100, seed=0, progress=False)
>>> theta.shape, x.shape
((100, 2), (100, 2))
"""

from __future__ import annotations

import inspect
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from lfi._checks import integer
from lfi._rng import Seed, as_key, numpy_rng, numpy_seed
from lfi.priors import Prior

__all__ = [
    "SimulationReport",
    "jax_simulator",
    "per_sample",
    "run_simulator",
    "simulate",
    "simulate_chunk",
]


class _Wrapped:
    def __init__(self, fn: Callable, kind: str):
        if not callable(fn):
            raise TypeError(f"simulator: expected a callable, got {type(fn).__name__}")
        self.fn, self.kind = fn, kind
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def per_sample(fn: Callable) -> _Wrapped:
    """Mark ``fn(theta_i) -> x_i`` as a per-sample simulator (one θ of shape (dθ,) at a time)."""
    return _Wrapped(fn, "per_sample")


def jax_simulator(fn: Callable) -> _Wrapped:
    """Mark ``fn(key, theta_i) -> x_i`` as a pure JAX simulator (vmapped and jitted by lfi)."""
    return _Wrapped(fn, "jax")


def _kind(simulator: Callable) -> str:
    if isinstance(simulator, _Wrapped):
        return simulator.kind
    if not callable(simulator):
        raise TypeError(f"simulator: expected a callable, got {type(simulator).__name__}")
    try:
        params = inspect.signature(simulator).parameters.values()
    except (TypeError, ValueError):
        return "batched"
    positional = [
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if positional[:1] == ["rng"] and len(positional) == 2:  # f(rng, theta): a JAX key first
        return "jax"
    return "jax" if len([n for n in positional if n != "rng"]) == 2 else "batched"


def _takes_rng(fn: Callable) -> bool:
    try:
        return "rng" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


@dataclass
class SimulationReport:
    """What happened in a simulation run: counts of every outcome, and the speed."""

    num_simulations: int
    num_nonfinite: int
    num_raised: int
    seconds: float
    first_error: str | None = None

    @property
    def num_invalid(self) -> int:
        return self.num_nonfinite + self.num_raised

    def __str__(self) -> str:
        rate = self.num_simulations / max(self.seconds, 1e-9)
        text = (
            f"{self.num_simulations} simulations in {self.seconds:.2f} s ({rate:,.0f}/s): "
            f"{self.num_nonfinite} returned NaN/inf, {self.num_raised} raised"
        )
        return text + (f" (first error: {self.first_error})" if self.first_error else "")


def _seed_globals(seed: int | list[int]) -> None:
    """Seed numpy's (and torch's) global generator from an int or a list of 32-bit words."""
    np.random.seed(seed)  # noqa: NPY002 - the user's simulator draws from the global generator
    if "torch" in sys.modules:  # a user's torch simulator; lfi never imports torch itself
        words = np.random.SeedSequence(seed).generate_state(2, np.uint64)
        sys.modules["torch"].manual_seed(int(words[0] >> np.uint64(1)))


def _numpy(x: Any) -> np.ndarray:
    """A simulator's output as a numpy array (a torch tensor detached and moved to the CPU)."""
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)


def _as_output(x: Any, n: int, name: str) -> np.ndarray:
    if x is None:
        raise TypeError(f"simulator: returned None ({name}; a missing return?)")
    try:
        raw = _numpy(x)
    except ValueError as exc:  # numpy's "inhomogeneous shape" for a ragged list
        raise TypeError(f"simulator: returned a ragged sequence ({name}): {exc}") from None
    if raw.dtype == object or not np.issubdtype(raw.dtype, np.number) and raw.dtype != bool:
        raise TypeError(f"simulator: returned {raw.dtype} values, expected numbers ({name})")
    if np.iscomplexobj(raw):  # astype(float32) would drop the imaginary part
        raise TypeError(f"simulator: returned complex values, expected real numbers ({name})")
    with np.errstate(over="ignore", invalid="ignore"):
        x = raw.astype(np.float32)
    overflow = np.isfinite(raw) & ~np.isfinite(x)
    if overflow.any():
        raise OverflowError(
            f"simulator: returned values beyond float32's range (max |x| = "
            f"{np.abs(raw[overflow]).max():.3g}; {name}): rescale its output"
        )
    if x.ndim == 0:
        if n > 1:
            raise ValueError(f"simulator: returned one number for {n} parameters ({name})")
        x = x.reshape(1, 1)
    elif x.ndim == 1 and n == 1:
        x = x.reshape(1, -1)
    elif x.ndim == 1:  # one value per simulation; a longer vector has no known rows
        if x.shape[0] != n:
            raise ValueError(
                f"simulator: returned shape {x.shape} for {n} parameters ({name}); expected "
                f"({n},) or ({n}, dim_x)"
            )
        x = x.reshape(n, 1)
    if x.shape[0] != n:
        raise ValueError(f"simulator: returned {x.shape[0]} outputs for {n} parameters ({name})")
    return x.reshape(n, -1)


_RAISED = object()


def _call_numpy(fn: Callable, theta: np.ndarray, key: jax.Array, batched: bool) -> tuple:
    """Run a numpy simulator on one chunk; isolate rows that raise.

    An ``rng`` simulator gets a generator seeded by the chunk key's full 64 bits (a 31-bit
    seed per chunk would give two of 10^4 chunks the same noise with probability ~2%); one
    that draws from numpy's (or torch's) global generator gets the key's 31-bit seed.
    Returns ``(x, raised, errors)``, ``errors`` the text of each raised row by its index."""
    rng = numpy_rng(key) if _takes_rng(fn) else None
    kwargs = {"rng": rng} if rng is not None else {}
    if rng is None:
        _seed_globals(numpy_seed(key))
    n = theta.shape[0]
    if batched:
        try:
            out = fn(theta, **kwargs)
        except Exception:  # noqa: BLE001 - retried row by row to find the failing ones
            out = _RAISED
        if out is not _RAISED:
            try:  # a wrong shape or None is the simulator's bug: a clear error for the run
                return _as_output(out, n, "batched call"), np.zeros(n, bool), {}
            except OverflowError:  # row by row: the rows beyond float32 counted with the reason
                pass
    rows, raised, errors = [], np.zeros(n, bool), {}
    for i in range(n):
        try:
            arg = theta[i : i + 1] if batched else theta[i]
            out = fn(arg, **kwargs)
            rows.append(_as_output(_one_row(out, batched), 1, f"row {i}")[0])
        except Exception as exc:  # noqa: BLE001 - counted and reported, never dropped silently
            raised[i] = True
            errors[i] = f"{type(exc).__name__}: {exc}"
            rows.append(None)
    return _stack_rows(rows, raised, errors)


def _one_row(out: Any, batched: bool) -> Any:
    """One simulation of a per-sample simulator: any shape, flattened as the batched forms are."""
    if batched or out is None:
        return out
    return _numpy(out).reshape(1, -1)


def _stack_rows(rows: list, raised: np.ndarray, errors: dict) -> tuple:
    """Rows of one chunk as (n, dx): a row whose width differs from the most common one is
    counted as raised with its reason (NaN), not a crash of the whole run."""
    widths = [r.shape[0] for r in rows if r is not None]
    width = max(set(widths), key=widths.count) if widths else 1
    for i, r in enumerate(rows):
        if r is not None and r.shape[0] != width:
            raised[i], rows[i] = True, None
            errors[i] = f"ValueError: simulator: returned {r.shape[0]} values, expected {width}"
    x = np.stack([np.full(width, np.nan, np.float32) if r is None else r for r in rows])
    return x, raised, errors


_JAX_CACHE: dict[int, tuple[Callable, Callable]] = {}


def _jax_runner(fn: Callable) -> Callable:
    """jit(vmap(fn)), compiled once per simulator. The cache holds ``fn`` itself, so its id
    cannot be reused by another function while the entry exists."""
    entry = _JAX_CACHE.get(id(fn))
    if entry is None or entry[0] is not fn:
        entry = _JAX_CACHE[id(fn)] = (fn, jax.jit(jax.vmap(fn)))
    return entry[1]


def simulate_chunk(
    simulator: Callable, theta: np.ndarray, key: jax.Array, *, pad: int = 0
) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Simulate one chunk of θ (n, dθ) from its own key: returns ``(x, raised, errors)``,
    ``errors`` the error text of each row that raised, by its index in the chunk.

    The unit of work of :func:`run_simulator` and of simulation campaigns (:mod:`lfi.campaign`):
    a chunk's x depends only on its θ and its key. A JAX simulator gets ``split(key, n + pad)``
    (``pad`` repeats the last row so that every chunk compiles to one shape); a numpy one a
    generator seeded from the key.
    """
    kind = _kind(simulator)
    fn = simulator.fn if isinstance(simulator, _Wrapped) else simulator
    n = theta.shape[0]
    if kind != "jax":
        return _call_numpy(fn, theta, key, kind == "batched")
    padded = np.concatenate([theta, np.repeat(theta[-1:], pad, 0)]) if pad else theta
    keys = jax.random.split(key, padded.shape[0])
    try:
        out = _jax_runner(fn)(keys, jnp.asarray(padded))
    except Exception as exc:
        raise RuntimeError(f"simulator: the JAX simulator failed: {exc}") from exc
    return _as_output(out, padded.shape[0], "JAX simulator")[:n], np.zeros(n, bool), {}


def _chunks(a: np.ndarray, size: int) -> list[np.ndarray]:
    return [a[i : i + size] for i in range(0, len(a), size)]


def run_simulator(
    simulator: Callable,
    theta: Any,
    seed: Seed = 0,
    *,
    chunk_size: int | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, SimulationReport]:
    """Simulate x for given θ (n, dθ). Rows that raised come back as NaN and are counted.

    Returns ``(x, report)``; ``report`` counts the non-finite and raised rows.
    """
    theta = np.asarray(theta, dtype=np.float32)
    if theta.ndim != 2:
        raise ValueError(f"theta: expected shape (n, dim_theta), got {theta.shape}")
    kind, n = _kind(simulator), theta.shape[0]
    if chunk_size is not None:
        integer(chunk_size, "chunk_size", 1)
    chunk = chunk_size or (10_000 if kind == "jax" else 1_000)
    key = as_key(seed)
    xs, raised, error, t0 = [], np.zeros(n, bool), None, time.perf_counter()
    bar = tqdm(total=n, unit="sim", desc="simulating", disable=not progress, leave=False)
    for c, start in enumerate(range(0, n, chunk)):
        part = theta[start : start + chunk]
        pad = chunk - part.shape[0] if n > chunk else 0
        x_part, bad, errs = simulate_chunk(simulator, part, jax.random.fold_in(key, c), pad=pad)
        raised[start : start + part.shape[0]] = bad
        error = error or next(iter(errs.values()), None)
        xs.append(x_part)
        bar.update(part.shape[0])
    bar.close()
    # a chunk whose every row raised does not know x's width: NaN rows as wide as the others'
    widths = [p.shape[1] for p, b in zip(xs, _chunks(raised, chunk)) if not b.all()]
    if widths:
        xs = [p if not b.all() else np.full((len(p), widths[0]), np.nan, np.float32)
              for p, b in zip(xs, _chunks(raised, chunk))]  # fmt: skip
    if len(chunk_widths := {p.shape[1] for p in xs}) > 1:
        raise ValueError(
            f"simulator: chunks returned outputs of different widths {sorted(chunk_widths)}: "
            "every simulation must give the same number of values"
        )
    x = np.concatenate(xs) if xs else np.zeros((0, 1), np.float32)
    nonfinite = ~np.all(np.isfinite(x), axis=1) & ~raised
    report = SimulationReport(
        n, int(nonfinite.sum()), int(raised.sum()), time.perf_counter() - t0, error
    )
    if report.num_invalid:
        warnings.warn(
            f"{report.num_invalid} of {n} simulations were invalid ({report}); they are kept as "
            "NaN rows and excluded from training",
            stacklevel=2,
        )
    return x, report


def check_num_simulations(n: Any) -> int:
    """``n`` as an int, or a ValueError naming ``num_simulations``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"num_simulations: expected a positive integer, got {n!r}")
    return int(n)


def simulate(
    simulator: Callable,
    prior: Prior,
    num_simulations: int,
    seed: Seed = 0,
    *,
    chunk_size: int | None = None,
    progress: bool = True,
    augmented: bool = False,
    theta_ref: Any = None,
) -> Any:
    """Draw θ from the prior and simulate x: returns ``(theta, x)`` as numpy arrays.

    A tqdm bar shows simulations/s. Simulations that return NaN/inf or raise are kept as rows with
    NaN x and a warning gives their count; estimators exclude them (with a warning) when fitting.

    The same ``seed`` and ``chunk_size`` give the same θ and x; the simulators' noise is drawn per
    chunk, so another ``chunk_size`` gives the same θ but other x (as likely). A simulator that
    draws from numpy's or torch's global generator is seeded per chunk; import torch at the top
    of the simulator's module, not inside it, so that it is seeded from the first chunk.

    ``augmented=True`` (an augmented simulator, :func:`lfi.augmented`) returns instead an
    :class:`lfi.GoldData` with the joint score t(x, z | θ) of every run and, given
    ``theta_ref``, the joint log-ratio log r(x, z | θ, θ_ref) (see :mod:`lfi.augment`).
    """
    if augmented:
        from lfi.augment import simulate_augmented

        return simulate_augmented(
            simulator, prior, num_simulations, seed, theta_ref=theta_ref, progress=progress
        )
    if theta_ref is not None:
        raise ValueError("theta_ref: only used with augmented=True")
    if not isinstance(prior, Prior):
        raise TypeError(f"prior: expected an lfi prior, got {type(prior).__name__}")
    num_simulations = check_num_simulations(num_simulations)
    key_theta, key_sim = jax.random.split(as_key(seed))
    theta = np.asarray(prior.sample(int(num_simulations), key_theta))
    x, _ = run_simulator(simulator, theta, key_sim, chunk_size=chunk_size, progress=progress)
    return theta, x


def finite_rows(theta: Any, x: Any, *, warn: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Keep the rows where θ and x are finite; warn with the count of excluded rows."""
    theta, x = np.asarray(theta, np.float32), np.asarray(x, np.float32)
    ok = np.all(np.isfinite(theta), 1) & np.all(np.isfinite(x), 1)
    if warn and not ok.all():
        warnings.warn(
            f"excluded {int((~ok).sum())} of {ok.size} simulations with NaN/inf values "
            "from training",
            stacklevel=3,
        )
    return theta[ok], x[ok]
