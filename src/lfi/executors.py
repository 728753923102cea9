"""Where simulation chunks run: in this process, in a local process pool, or on a Dask cluster.

One small interface (``submit``, ``as_completed``, ``restart``, ``close``, ``workers``), three
implementations:

- :class:`InProcess`: runs each chunk when submitted (JAX simulators are vectorised already);
- :class:`LocalPool`: a pool of ``workers`` processes started with ``spawn`` (JAX does not
  survive ``fork``); the default for numpy simulators with ``workers > 1``. A worker that dies
  breaks the pool: the campaign restarts it and re-submits the lost chunks;
- :class:`DaskExecutor`: a ``dask.distributed.Client``, or a scheduler address such as
  ``tcp://host:8786`` (needs ``pip install 'lfi[cluster]'``). Dask re-runs the tasks of a lost
  worker itself. For SLURM/PBS, start the workers with dask-jobqueue and pass its client::

      from dask_jobqueue import SLURMCluster
      cluster = SLURMCluster(cores=8, memory="16GB", walltime="02:00:00")
      cluster.scale(jobs=10)
      lfi.run_campaign(sim, prior, 10**6, "runs/store", executor=Client(cluster))

A chunk's result never depends on the executor: each chunk carries its own seed (see
:mod:`lfi.campaign`).

>>> ex = make_executor()
>>> [f.result() for f in ex.as_completed([ex.submit(pow, 2, 5)])]
[32]
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool
from typing import Any

__all__ = ["DaskExecutor", "InProcess", "LocalPool", "make_executor"]


class InProcess:
    """Run every chunk in this process, at submission."""

    workers = 1
    lost_worker_errors: tuple[type[BaseException], ...] = ()

    def submit(self, fn: Callable, *args: Any) -> futures.Future:
        fut: futures.Future = futures.Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - delivered through the future; an interrupt
            fut.set_exception(exc)  # (Ctrl-C) stops the campaign at once
        return fut

    def capacity(self) -> int:
        """Chunks the campaign keeps in flight: here one, written as soon as it is simulated
        (more would hold finished chunks in memory, lost if the process is killed)."""
        return 1

    def as_completed(self, fs: Iterable[Any]) -> Iterator[Any]:
        return iter(list(fs))

    def restart(self) -> None:
        pass

    def close(self) -> None:
        pass


class LocalPool(InProcess):
    """A local pool of ``workers`` spawned processes."""

    lost_worker_errors = (BrokenProcessPool,)

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError(f"workers: expected a positive integer, got {workers}")
        self.workers = int(workers)
        self._pool = self._new()

    def capacity(self) -> int:
        return 2 * self.workers + 1  # every worker busy, and the next chunks queued

    def _new(self) -> futures.ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        return futures.ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)

    def submit(self, fn: Callable, *args: Any) -> futures.Future:
        try:
            return self._pool.submit(fn, *args)
        except BrokenProcessPool as exc:  # a worker died since the last result was read:
            fut: futures.Future = futures.Future()  # report it like a lost chunk, through
            fut.set_exception(exc)  # the future, so the campaign restarts the pool once
            return fut

    def as_completed(self, fs: Iterable[Any]) -> Iterator[Any]:
        return futures.as_completed(list(fs))

    def restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(InProcess):
    """Chunks as tasks on a Dask cluster: a ``distributed.Client`` or a scheduler address."""

    def __init__(self, cluster: Any):
        try:
            import distributed
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ImportError("cluster: Dask is not installed; pip install 'lfi[cluster]'") from exc
        self._distributed = distributed
        self._own = isinstance(cluster, str)
        self.client = distributed.Client(cluster) if self._own else cluster
        if not isinstance(self.client, distributed.Client):
            raise TypeError(
                f"cluster: expected a dask.distributed.Client or an address like "
                f"'tcp://host:8786', got {type(cluster).__name__}"
            )
        self.lost_worker_errors = (distributed.scheduler.KilledWorker,)

    def capacity(self) -> int:
        return 2 * self.workers + 1

    @property
    def workers(self) -> int:  # type: ignore[override]
        return max(1, len(self.client.scheduler_info(n_workers=-1).get("workers", {})))

    def max_threads(self) -> int:
        """The most task threads that share one process (1 if no worker is up yet): a worker's
        threads, or several workers' when they run in one process (``processes=False``: their
        ``inproc://`` addresses; otherwise workers of one host with the same pid)."""
        nthreads = self.client.nthreads()
        if not nthreads:
            return 1
        try:
            pids = self.client.run(os.getpid)
        except Exception:  # noqa: BLE001 - without pids, each worker counts as its own process
            pids = {}
        shared: dict[Any, int] = {}
        for address, threads in nthreads.items():
            if address.startswith("inproc://"):
                group = "inproc"  # in the client's own process
            else:
                group = (address.rsplit(":", 1)[0], pids.get(address, address))
            shared[group] = shared.get(group, 0) + threads
        return max(shared.values())

    def submit(self, fn: Callable, *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def as_completed(self, fs: Iterable[Any]) -> Iterator[Any]:
        return iter(self._distributed.as_completed(list(fs)))

    def close(self) -> None:
        if self._own:
            self.client.close()


def make_executor(workers: int | None = None, cluster: Any = None) -> InProcess:
    """The executor for ``workers`` local processes or a Dask ``cluster`` (client or address).

    No arguments (or ``workers=1``): in this process."""
    if cluster is not None:
        if workers not in (None, 1):
            raise ValueError("workers, cluster: give one of them (a cluster sizes itself)")
        return DaskExecutor(cluster)
    if workers is None or workers == 1:
        return InProcess()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers: expected a positive integer, got {workers!r}")
    return LocalPool(workers)
