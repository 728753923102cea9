"""Simulation campaigns: chunks of work with their own seeds, run by an executor into a store.

:func:`run_campaign` splits ``n`` simulations into chunks of ``chunk_size`` rows. Chunk ``c``
draws its θ and simulates its x from ``fold_in(key(seed), c)`` alone, so the stored rows do not
depend on the number, kind or order of the workers (in-process, a local process pool, or Dask:
:mod:`lfi.executors`), and a campaign grown to a larger ``n`` keeps its first rows. Finished
chunks go to a :class:`lfi.store.SimulationStore` as they arrive; rerunning the same call (or
``lfi simulate``) after a crash or ``kill -9`` simulates only the chunks that were not stored,
after checking the stored ones against their checksums. ``shard=(i, k)`` runs only the chunks
``c % k == i``: one job of a k-job array on a batch system, all writing to one store.

A simulator that raises has its rows stored as FAILED with the error text; with ``timeout``
(seconds per simulation; numpy simulators) each simulation runs in a child process that is
killed when it overruns, and the row is stored as FAILED ("timed out"); row i then draws from
``numpy.random.default_rng([chunk key, i])``, so a campaign with a timeout stores other (equally
valid) x than one without (the store records which, and a resume with the other refuses), and
a timeout needs a worker that may start processes (for Dask
nanny workers, the config ``distributed.worker.daemon: False``). A worker that dies takes
its chunk with it: the chunk is submitted again (at most ``max_retries`` times).

>>> import tempfile, numpy as np, lfi
>>> def sim(theta, rng):
...     return theta + rng.standard_normal(theta.shape)
>>> path = tempfile.mkdtemp()
>>> store = run_campaign(sim, lfi.BoxUniform([0.0], [1.0]), 250, path, seed=1, chunk_size=100,
...                      progress=False)
>>> store.counts()
{'done': 250, 'failed': 0, 'nonfinite': 0, 'pending': 0}
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import multiprocessing
import os
import pickle
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from lfi._rng import Seed, as_key
from lfi.executors import DaskExecutor, InProcess, LocalPool, make_executor
from lfi.priors import Prior
from lfi.simulate import (
    _as_output,
    _kind,
    _one_row,
    _seed_globals,
    _stack_rows,
    _takes_rng,
    _Wrapped,
    simulate_chunk,
)
from lfi.store import DONE, FAILED, NONFINITE, SimulationStore

__all__ = ["SimulatorRef", "chunk_theta", "resolve", "run_campaign", "run_chunk"]


# ---------------------------------------------------------------------------------------------
# What to simulate: a callable, or a reference that each worker resolves for itself


@dataclass(frozen=True)
class SimulatorRef:
    """A simulator named by a task (``"two_moons"``) or a module (``"pkg.mod"``,
    ``"path/to/file.py"``) defining ``simulator`` and ``prior`` (and optionally
    ``__version__``). Workers import it themselves, so nothing is pickled but the name."""

    target: str

    def load(self) -> tuple[Callable, Prior, str | None]:
        return _load(self.target)


_LOADED: dict[str, tuple] = {}


def _load(target: str) -> tuple[Callable, Prior, str | None]:
    if target in _LOADED:
        return _LOADED[target]
    import lfi.tasks

    if target in lfi.tasks.names():
        task = lfi.tasks.get(target)
        out = (task.simulator, task.prior, f"lfi {_version()}")
    else:
        if target.endswith(".py") or os.sep in target:
            path = Path(target).resolve()
            if not path.is_file():
                raise ValueError(f"simulator: no task or file called {target!r}")
            name = "lfi_user_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            try:
                module = importlib.import_module(target)
            except ImportError as exc:
                raise ValueError(
                    f"simulator: {target!r} is neither a task ({', '.join(lfi.tasks.names())}) "
                    f"nor an importable module ({exc})"
                ) from exc
        missing = [a for a in ("simulator", "prior") if not hasattr(module, a)]
        if missing:
            raise ValueError(f"simulator: module {target!r} must define {missing}")
        version = getattr(module, "__version__", None)
        out = (module.simulator, module.prior, None if version is None else str(version))
    _LOADED[target] = out
    return out


def _version() -> str:
    from lfi.store import _lfi_version

    return _lfi_version()


def resolve(simulator: Any) -> Callable:
    """The simulator callable behind ``simulator`` (a callable or a :class:`SimulatorRef`)."""
    return simulator.load()[0] if isinstance(simulator, SimulatorRef) else simulator


# ---------------------------------------------------------------------------------------------
# One chunk: θ from the campaign seed, x on a worker


def _chunk_keys(seed: Seed, chunk: int) -> tuple[jax.Array, jax.Array]:
    key_theta, key_sim = jax.random.split(jax.random.fold_in(as_key(seed), chunk))
    return key_theta, key_sim


def chunk_theta(prior: Prior, seed: Seed, chunk: int, chunk_size: int, rows: int) -> np.ndarray:
    """The θ of ``chunk`` (its first ``rows`` of ``chunk_size`` draws from its own key)."""
    key_theta, _ = _chunk_keys(seed, chunk)
    return np.asarray(prior.sample(chunk_size, key_theta), np.float32)[:rows]


def _timed_child(conn: Any, simulator: Any, theta: np.ndarray, words: list, start: int) -> None:
    fn = resolve(simulator)
    kind = _kind(fn)
    fn = fn.fn if isinstance(fn, _Wrapped) else fn
    for i in range(start, theta.shape[0]):
        kwargs = {}
        if _takes_rng(fn):  # the chunk key's words and the row: no two rows share a stream
            kwargs["rng"] = np.random.default_rng([*words, i])
        else:  # all the key's words and the row (a 31-bit seed per row would repeat)
            _seed_globals([*words, i])
        try:
            arg = theta[i : i + 1] if kind == "batched" else theta[i]
            out = _one_row(fn(arg, **kwargs), kind == "batched")
            conn.send(("ok", i, _as_output(out, 1, f"row {i}")[0]))
        except Exception as exc:  # noqa: BLE001 - sent back as the row's error
            conn.send(("error", i, f"{type(exc).__name__}: {exc}"))
    conn.close()


_STARTUP_SECONDS = 60.0


def _run_timed(simulator: Any, theta: np.ndarray, words: list, timeout: float) -> tuple:
    """Each simulation in a child process, killed after ``timeout`` s; the next row goes on in
    a new child. Row i draws from ``numpy.random.default_rng([*words, i])`` (the chunk key's
    words)."""
    if multiprocessing.current_process().daemon:
        raise RuntimeError(
            "timeout: this worker is a daemon process and cannot start the child that enforces "
            "the timeout; for Dask set the config distributed.worker.daemon=False"
        )
    ctx = multiprocessing.get_context("spawn")
    n, rows, errors, i = theta.shape[0], {}, {}, 0
    while i < n:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_timed_child, args=(child, simulator, theta, words, i))
        proc.start()
        child.close()
        grace = _STARTUP_SECONDS  # a new child first imports lfi
        while i < n:
            if not parent.poll(timeout + grace):
                errors[i] = f"TimeoutError: simulation exceeded {timeout} s"
                i += 1
                break
            try:
                status, row, value = parent.recv()
            except EOFError:  # the child died (e.g. killed by the OS): that row fails
                errors[i] = "RuntimeError: the simulation process died"
                i += 1
                break
            grace = 0.0
            if status == "ok":
                rows[row] = value
            else:
                errors[row] = value
            i = row + 1
        proc.kill()
        proc.join()
        parent.close()
    raised = np.array([j in errors for j in range(n)])
    return _stack_rows([rows.get(j) for j in range(n)], raised, errors)


def run_chunk(
    simulator: Any,
    theta: np.ndarray,
    key_data: np.ndarray,
    chunk_size: int,
    timeout: float | None = None,
    theta_ref: np.ndarray | None = None,
) -> dict[str, Any]:
    """Simulate one chunk (runs on a worker): x, per-row status and errors, timings."""
    tic = time.perf_counter()
    fn = resolve(simulator)
    key = jax.random.wrap_key_data(np.asarray(key_data, np.uint32))
    n, out = theta.shape[0], {}
    from lfi.augment import AugmentedSimulator, run_augmented

    if isinstance(fn, AugmentedSimulator):
        evals = [theta] if theta_ref is None else [theta, np.broadcast_to(theta_ref, theta.shape)]
        x, logp, scores = run_augmented(
            fn, theta, np.stack(evals, 1), key, chunk_size=chunk_size, progress=False
        )
        raised, errors = np.zeros(n, bool), {}
        out["score"] = scores[:, 0]
        if theta_ref is not None:
            out["log_r"] = logp[:, 0] - logp[:, 1]
    elif timeout is not None and _kind(fn) != "jax":
        words = [int(w) for w in np.asarray(jax.random.key_data(key), np.uint32).ravel()]
        x, raised, errors = _run_timed(simulator, theta, words, float(timeout))
    else:
        pad = chunk_size - n if _kind(fn) == "jax" else 0
        x, raised, errors = simulate_chunk(fn, theta, key, pad=pad)
    finite = np.all(np.isfinite(x), axis=1)
    for name in ("score", "log_r"):
        if name in out:
            finite &= np.all(np.isfinite(out[name].reshape(n, -1)), axis=1)
    status = np.where(raised, FAILED, np.where(finite, DONE, NONFINITE)).astype(np.int8)
    out.update(x=x, status=status, errors=errors, seconds=time.perf_counter() - tic)
    out["pid"] = os.getpid()
    return out


# ---------------------------------------------------------------------------------------------
# The driver


def _name(simulator: Any) -> str:
    if isinstance(simulator, SimulatorRef):
        return simulator.target
    fn = simulator.fn if isinstance(simulator, _Wrapped) else simulator
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def _check_picklable(simulator: Any, timed: bool = False) -> None:
    try:
        pickle.dumps(simulator)
    except Exception as exc:  # noqa: BLE001 - re-raised with advice
        need, advice = (
            ("timeout: each simulation then runs in a spawned process, which needs", "Drop timeout")
            if timed
            else (
                "simulator: a process pool needs",
                "Use workers=1 or a Dask cluster (which pickles closures)",
            )
        )
        raise TypeError(
            f"{need} a picklable simulator (a module-level function or "
            f"lfi.campaign.SimulatorRef); {_name(simulator)} is not ({exc}). {advice}"
        ) from exc


def _is_dask_client(obj: Any) -> bool:
    try:
        import distributed
    except ImportError:
        return False
    return isinstance(obj, distributed.Client)


def run_campaign(
    simulator: Any,
    prior: Prior | None,
    num_simulations: int,
    store: str | os.PathLike[str],
    seed: int = 0,
    *,
    chunk_size: int = 1000,
    workers: int | None = None,
    cluster: Any = None,
    executor: Any = None,
    shard: tuple[int, int] = (0, 1),
    timeout: float | None = None,
    theta_ref: Any = None,
    simulator_version: str | None = None,
    max_retries: int = 3,
    verify: bool = True,
    progress: bool = True,
) -> SimulationStore:
    """Run (or resume) a campaign of ``num_simulations`` into the store at ``store``.

    ``simulator``: a callable (any form :func:`lfi.simulate` takes, or an augmented simulator)
    or a :class:`SimulatorRef`; ``prior`` may be None for a ref (its module's prior is used).
    Runs on ``executor`` (an :mod:`lfi.executors` executor or a ``distributed.Client``, left
    open), else on ``workers`` local processes or a Dask ``cluster`` (a client or an address).
    Returns the :class:`lfi.store.SimulationStore`; its ``counts()`` say what happened.
    """
    from lfi.simulate import check_num_simulations

    num_simulations = check_num_simulations(num_simulations)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed: a campaign needs an integer seed, got {seed!r}")
    if timeout is not None and not (
        isinstance(timeout, (int, float, np.number)) and 0 < float(timeout) < float("inf")
    ):
        raise ValueError(f"timeout: expected a number of seconds > 0 or None, got {timeout!r}")
    i_shard, k_shard = shard
    if not 0 <= i_shard < k_shard:
        raise ValueError(f"shard: expected (i, k) with 0 <= i < k, got {shard}")
    version = simulator_version
    if isinstance(simulator, SimulatorRef):
        _, ref_prior, ref_version = simulator.load()
        prior = prior if prior is not None else ref_prior
        version = version or ref_version
    if not isinstance(prior, Prior):
        raise TypeError(f"prior: expected an lfi prior, got {type(prior).__name__}")
    from lfi.augment import AugmentedSimulator, check_theta_ref

    augmented = isinstance(resolve(simulator), AugmentedSimulator)
    ref = None if theta_ref is None else check_theta_ref(prior, theta_ref)
    # numpy simulators with a timeout run each row in a spawned child (and seed it per row)
    timed = timeout is not None and _kind(resolve(simulator)) != "jax" and not augmented
    st = SimulationStore.create(
        store,
        prior=prior,
        num_rows=num_simulations,
        chunk_size=chunk_size,
        seed=seed,
        simulator=_name(simulator),
        simulator_version=version,
        augmented=augmented,
        theta_ref=ref,
        rng="row" if timed else "chunk",
    )
    if verify:
        mine = [c for c in st.finished_chunks() if c % k_shard == i_shard]
        for c, problem in st.verify(mine):
            warnings.warn(
                f"store: chunk {c} is damaged ({problem}); simulating it again", stacklevel=2
            )
            st.invalidate(c)
    todo = st.pending_chunks(shard)
    for c in todo:  # θ first: the store shows the whole design, and workers get it from here
        start, stop = st.rows(c)
        st.write_theta(chunk_theta(prior, seed, c, chunk_size, stop - start), start)
    own = executor is None
    if own:
        ex = make_executor(workers, cluster)
    else:
        if workers not in (None, 1) or cluster is not None:
            raise ValueError("executor, workers, cluster: give one of them")
        if not isinstance(executor, InProcess) and not _is_dask_client(executor):
            raise TypeError(
                f"executor: expected an lfi.executors executor or a dask.distributed.Client, "
                f"got {type(executor).__name__}"
            )
        ex = executor if isinstance(executor, InProcess) else make_executor(cluster=executor)
    if isinstance(ex, LocalPool) or timed:
        _check_picklable(simulator, timed=timed)
    if isinstance(ex, DaskExecutor) and timeout is None and not augmented:
        _warn_shared_global_rng(resolve(simulator), ex.max_threads())
    rows_todo = sum(st.rows(c)[1] - st.rows(c)[0] for c in todo)
    bar = tqdm(total=rows_todo, unit="sim", desc="simulating", disable=not progress, leave=False)
    tries = dict.fromkeys(todo, 0)
    submit = partial(_submit, ex, st, simulator, seed, chunk_size, timeout, ref)
    try:
        queue, in_flight = list(todo), {}
        capacity, asked = ex.capacity(), time.monotonic()
        while queue or in_flight:
            if time.monotonic() - asked > 10:  # a Dask cluster may grow or shrink meanwhile
                capacity, asked = ex.capacity(), time.monotonic()
            while queue and len(in_flight) < capacity:
                c = queue.pop(0)
                in_flight[submit(c)] = c
            fut = next(iter(ex.as_completed(list(in_flight))))
            c = in_flight.pop(fut)
            try:
                res = fut.result()
            except ex.lost_worker_errors as exc:
                tries[c] += 1
                if tries[c] > max_retries:
                    raise RuntimeError(f"chunk {c}: its worker died {tries[c]} times") from exc
                if isinstance(ex, LocalPool):
                    ex.restart()  # the pool is broken: every chunk in flight is lost
                    queue = [c, *in_flight.values(), *queue]
                    in_flight = {}
                else:
                    queue.insert(0, c)
                continue
            optional = {k: res[k] for k in ("score", "log_r") if k in res}
            st.write_chunk(
                c,
                res["x"],
                res["status"],
                errors=res["errors"],
                seconds=res["seconds"],
                **optional,
            )
            bar.update(len(res["status"]))
    finally:
        bar.close()
        if own:
            ex.close()
    counts = st.counts()
    bad = counts["failed"] + counts["nonfinite"]
    if bad:
        warnings.warn(
            f"store: {bad} of {st.num_rows} simulations are invalid ({counts['failed']} failed, "
            f"{counts['nonfinite']} non-finite); see lfi store info {st.path}",
            stacklevel=2,
        )
    return st


def _warn_shared_global_rng(fn: Any, threads: int) -> None:
    """A numpy simulator without an ``rng`` parameter draws from the global generator, which
    the Dask threads of one process share: two chunks running at once interleave its draws."""
    inner = fn.fn if isinstance(fn, _Wrapped) else fn
    if threads > 1 and _kind(fn) != "jax" and not _takes_rng(inner):
        warnings.warn(
            f"simulator: it takes no `rng` argument, so it draws from numpy's (or torch's) global"
            f" generator, and up to {threads} Dask worker threads share one process: chunks"
            " running at once there share that generator, so these simulations are not"
            " reproducible from the seed. Give the simulator an `rng` parameter (lfi passes a"
            " seeded numpy Generator) or start the workers with one thread each (--nthreads 1)",
            stacklevel=3,
        )


def _submit(ex, st, simulator, seed, chunk_size, timeout, ref, c):
    start, stop = st.rows(c)
    theta = st._group["theta"][start:stop]
    _, key_sim = _chunk_keys(seed, c)
    key_data = np.asarray(jax.random.key_data(key_sim))
    return ex.submit(run_chunk, simulator, theta, key_data, chunk_size, timeout, ref)
