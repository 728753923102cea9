"""Training from a simulation store that need not fit in memory.

:class:`StoreBlocks` turns the finished chunks of an :class:`lfi.store.SimulationStore` into the
training loop's :class:`lfi.train.BlockSource`: whole chunks are held out for validation (drawn
by the seed), the z-scoring statistics are accumulated chunk by chunk (exact, in float64), and
each epoch visits the training chunks in a random order, ``block_rows`` rows in memory at a
time, shuffled within a block. Only DONE rows train; the others were counted when simulated.

>>> import tempfile, lfi
>>> def sim(theta, rng):
...     return theta + 0.1 * rng.standard_normal(theta.shape)
>>> prior = lfi.BoxUniform([0.0, 0.0], [1.0, 1.0])
>>> store = lfi.run_campaign(sim, prior, 600, tempfile.mkdtemp(), chunk_size=100,
...                          progress=False)
>>> blocks = StoreBlocks(store, prior, seed=0, block_rows=200)
>>> blocks.num_train, blocks.validation[0].shape
(500, (100, 2))
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from lfi._checks import integer
from lfi._rng import Seed, as_key
from lfi.posteriors.direct import Standardizer
from lfi.priors import Prior
from lfi.store import SimulationStore
from lfi.train import BlockSource

__all__ = ["StoreBlocks"]


class StoreBlocks(BlockSource):
    """A store's DONE rows as standardised (θ in unconstrained space, x) training blocks."""

    def __init__(
        self,
        store: SimulationStore,
        prior: Prior,
        *,
        seed: Seed = 0,
        validation_fraction: float = 0.1,
        block_rows: int = 100_000,
    ):
        if not 0 < validation_fraction < 1:
            raise ValueError(
                f"validation_fraction: expected a value in (0, 1), got {validation_fraction}"
            )
        block_rows = integer(block_rows, "block_rows")
        if store.provenance["dim_theta"] != prior.dim:
            raise ValueError(
                f"prior: the store holds {store.provenance['dim_theta']}-d θ, the prior is "
                f"{prior.dim}-d"
            )
        chunks = store.finished_chunks()
        if len(chunks) < 2:
            raise ValueError(
                f"store: streaming needs at least 2 finished chunks, {str(store.path)!r} has "
                f"{len(chunks)}"
            )
        self.store, self.prior, self.block_rows = store, prior, int(block_rows)
        order = np.asarray(jax.random.permutation(as_key(seed), len(chunks)))
        num_val = min(len(chunks) - 1, max(1, round(validation_fraction * len(chunks))))
        self.val_chunks = sorted(chunks[i] for i in order[:num_val])
        self.train_chunks = sorted(chunks[i] for i in order[num_val:])
        self.standardizer, self.num_train = self._statistics()
        self.validation = self._standardize(*self._concat(self.val_chunks))
        self.dim_x = int(self.validation[1].shape[1])

    def _read(self, chunks: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for theta, x in self.store.iter_chunks(chunks):
            outside = ~np.asarray(self.prior.in_support(theta))
            if outside.any():
                raise ValueError(
                    f"theta: {int(outside.sum())} stored rows lie outside the prior's support "
                    f"(first: {theta[outside][0].tolist()})"
                )
            yield theta, x

    def _concat(self, chunks: list[int]) -> tuple[np.ndarray, np.ndarray]:
        parts = list(self._read(chunks))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _statistics(self) -> tuple[Standardizer, int]:
        n, sums = 0, None
        for theta, x in self._read(self.train_chunks):
            u = np.asarray(self.prior.to_unconstrained(theta), np.float64)
            parts = [
                u.sum(0),
                (u**2).sum(0),
                x.sum(0, dtype=np.float64),
                (x.astype(float) ** 2).sum(0),
            ]
            sums = parts if sums is None else [a + b for a, b in zip(sums, parts)]
            n += theta.shape[0]
        if n < 2:
            raise ValueError("store: fewer than 2 usable training rows")
        mu, mu2, mx, mx2 = (a / n for a in sums)
        su, sx = np.sqrt(np.maximum(mu2 - mu**2, 0)), np.sqrt(np.maximum(mx2 - mx**2, 0))
        stand = Standardizer(
            mu.astype(np.float32),
            Standardizer.scale(mu, su).astype(np.float32),
            mx.astype(np.float32),
            Standardizer.scale(mx, sx).astype(np.float32),
        )
        return stand, n

    def _standardize(self, theta: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = self.prior.to_unconstrained(theta)
        return (
            np.asarray(self.standardizer.z_theta(u), np.float32),
            np.asarray(self.standardizer.z_x(x), np.float32),
        )

    def blocks(self, key: jax.Array) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        key_order, key_rows = jax.random.split(key)
        order = np.asarray(jax.random.permutation(key_order, len(self.train_chunks)))
        buf_t: list[np.ndarray] = []
        buf_x: list[np.ndarray] = []
        held, b = 0, 0
        for i in order:
            # checked against the prior once, in _statistics: not again every epoch
            theta, x = next(self.store.iter_chunks([self.train_chunks[i]]))
            buf_t.append(theta)
            buf_x.append(x)
            held += theta.shape[0]
            while held >= self.block_rows:
                yield self._emit(buf_t, buf_x, self.block_rows, jax.random.fold_in(key_rows, b))
                b += 1
                held -= self.block_rows
        if held:
            yield self._emit(buf_t, buf_x, held, jax.random.fold_in(key_rows, b))

    def _emit(self, buf_t: list, buf_x: list, rows: int, key: jax.Array) -> tuple:
        theta, x = np.concatenate(buf_t), np.concatenate(buf_x)
        buf_t[:] = [theta[rows:]]
        buf_x[:] = [x[rows:]]
        perm = np.asarray(jax.random.permutation(key, rows))
        return self._standardize(theta[:rows][perm], x[:rows][perm])


def is_store(value: Any) -> bool:
    """True for an :class:`lfi.store.SimulationStore` (the methods' ``fit`` accepts one)."""
    return isinstance(value, SimulationStore)
