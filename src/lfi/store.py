"""The simulation store: a campaign's θ and x on disk (zarr), crash-safe and resumable.

A store is a directory::

    PATH/lfi_store.json        provenance: prior, simulator name and version, seed, rows,
                               chunk size, lfi version (written once, checked on every resume)
    PATH/data/                 a zarr group: theta (n, dθ), x (n, dx), status (n,) and, for
                               augmented simulators, score (n, dθ) and log_r (n,)
    PATH/chunks/000123.json    the commit record of chunk 123: its counts, the error text of
                               every failed row, and the sha256 of its stored arrays

Rows are written a chunk at a time (one zarr chunk per array and simulation chunk, so no two
chunks share a file), data first and the record last by an atomic rename: a crash at any moment
leaves every chunk either finished (record present, checksum matching) or pending, and a
resumed campaign re-runs only the pending ones. A chunk whose stored bytes no longer match their
checksum (a truncated or corrupted file) is reported by :meth:`SimulationStore.verify` and
re-simulated on resume.

Row status: ``PENDING`` (0), ``DONE`` (1), ``FAILED`` (2: the simulator raised or timed out; the
record keeps the error text), ``NONFINITE`` (3: it returned NaN/inf). Only ``DONE`` rows train;
the others are counted and reported, never dropped silently.

>>> import tempfile, numpy as np, lfi
>>> path = tempfile.mkdtemp() + "/store"
>>> store = SimulationStore.create(path, prior=lfi.BoxUniform([0.0], [1.0]), num_rows=4,
...                                chunk_size=2, seed=0, simulator="demo")
>>> store.write_theta(np.zeros((4, 1), np.float32))
>>> store.write_chunk(0, np.ones((2, 3), np.float32), np.array([1, 2], np.int8),
...                   errors={1: "ValueError: boom"})
True
>>> store.counts()
{'done': 1, 'failed': 1, 'nonfinite': 0, 'pending': 2}
>>> open_store(path).errors()
{1: 'ValueError: boom'}
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Iterator
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from filelock import FileLock

__all__ = ["DONE", "FAILED", "NONFINITE", "PENDING", "SimulationStore", "open_store"]

PENDING, DONE, FAILED, NONFINITE = 0, 1, 2, 3


def _record_file(path: Path, chunk: int) -> Path:
    """The commit record of ``chunk`` in the store at ``path``."""
    return path / "chunks" / f"{chunk:06d}.json"


_PROVENANCE = "lfi_store.json"
# what must match when a campaign is resumed (num_rows may grow)
_IDENTITY = ("prior", "simulator", "simulator_version", "seed", "chunk_size", "dim_theta")
# how numpy simulators are seeded (see lfi.simulate and lfi.campaign): part of a store's identity
# ("row-key64-words": since 2026-11-27 the global generator's per-row seed is all the key's
# words and the row; "row-key64" stores seeded it with 31 bits and cannot be resumed)
_RNG_SCHEMES = {"chunk": "chunk-key64", "row": "row-key64-words"}


def _lfi_version() -> str:
    try:
        return metadata.version("lfi")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# What lfi writes, and all it reads: a store from elsewhere could name other codecs (zarr v2's
# "pickle" filter unpickles, i.e. runs code, with numcodecs < 0.16) or object dtypes.
_ARRAYS = {"theta": "f", "x": "f", "score": "f", "log_r": "f", "status": "i"}
_CODECS = {"bytes", "zstd", "crc32c", "transpose", "gzip", "blosc"}


def _check_arrays(group: Any, path: Path) -> None:
    """Refuse a store whose arrays are not lfi's: names, numeric dtypes, zarr v3, known codecs
    (checked from metadata, before any chunk is decoded)."""
    if getattr(group.metadata, "zarr_format", None) != 3:
        raise ValueError(f"store: {str(path)!r} is not a zarr v3 group as lfi writes; refusing it")
    for name in group.array_keys():
        arr = group[name]
        meta = arr.metadata
        codecs = [c.to_dict().get("name") for c in getattr(meta, "codecs", None) or []]
        if (
            name not in _ARRAYS
            or getattr(meta, "zarr_format", None) != 3
            or arr.dtype.kind != _ARRAYS[name]
            or not set(codecs) <= _CODECS
        ):
            raise ValueError(
                f"store: {str(path)!r} holds an array lfi does not write ({name!r}: zarr format "
                f"{getattr(meta, 'zarr_format', '?')}, dtype {arr.dtype}, codecs {codecs}); "
                "refusing to read it"
            )


class SimulationStore:
    """A campaign's rows on disk; open one with :func:`open_store` (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        meta = self.path / _PROVENANCE
        if not meta.is_file():
            raise FileNotFoundError(f"path: {str(path)!r} is not an lfi simulation store")
        self.provenance: dict[str, Any] = json.loads(meta.read_text())
        if not (self.path / "data" / "zarr.json").is_file():  # opening must not create it
            if (self.path / "data").is_dir():
                raise ValueError(
                    f"store: {str(path)!r} is not a zarr v3 group as lfi writes; refusing it"
                )
            raise FileNotFoundError(f"path: {str(path)!r} has no simulation data (data/zarr.json)")
        self._group = zarr.open_group(self.path / "data", mode="r+")
        _check_arrays(self._group, self.path)

    # -- creation ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        prior: Any,
        num_rows: int,
        chunk_size: int,
        seed: int,
        simulator: str,
        simulator_version: str | None = None,
        augmented: bool = False,
        theta_ref: Any = None,
        rng: str = "chunk",
    ) -> SimulationStore:
        """Create the store at ``path``, or open it when it holds the same campaign.

        Resuming needs the same prior, simulator name and version, seed, chunk size and ``rng``
        scheme (how a numpy simulator's generator is seeded: "chunk", one per chunk, or "row",
        one per row for simulations run with a timeout) (a ValueError names what differs); a
        larger ``num_rows`` extends the campaign. A store written before the scheme was
        recorded resumes with a warning: its numpy chunks were seeded another way.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if num_rows < 1 or chunk_size < 1:
            raise ValueError(f"num_rows, chunk_size: expected >= 1, got {num_rows}, {chunk_size}")
        new = {
            "format": "lfi-simulation-store/1",
            "prior": prior.to_config(),
            "simulator": str(simulator),
            "simulator_version": simulator_version,
            "seed": int(seed),
            "chunk_size": int(chunk_size),
            "dim_theta": int(prior.dim),
            "num_rows": int(num_rows),
            "augmented": bool(augmented),
            "theta_ref": None if theta_ref is None else np.asarray(theta_ref).tolist(),
            "rng": _RNG_SCHEMES[rng],
            "lfi_version": _lfi_version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        with FileLock(path / ".lock"):
            meta = path / _PROVENANCE
            if meta.is_file():
                old = json.loads(meta.read_text())
                if "rng" not in old:
                    warnings.warn(
                        f"store {str(path)!r}: written by an older lfi whose numpy simulators "
                        "were seeded another way; resumed chunks will not match a fresh run's",
                        stacklevel=3,
                    )
                    old["rng"] = new["rng"]
                if old.get("rng") != new["rng"]:
                    raise ValueError(
                        f"timeout: the store at {str(path)!r} was simulated with numpy "
                        f"generators seeded {old.get('rng')!r}, this run would seed them "
                        f"{new['rng']!r} (per row with a timeout, per chunk without one, and "
                        "older lfi versions otherwise); resume with the same timeout setting and "
                        "lfi version, or use another path"
                    )
                for name in (*_IDENTITY, "augmented", "theta_ref"):
                    if old.get(name) != new[name]:
                        raise ValueError(
                            f"{name}: the store at {str(path)!r} holds a campaign with "
                            f"{name}={old.get(name)!r}, not {new[name]!r}; use another path"
                        )
                if new["num_rows"] > old["num_rows"]:
                    if old["num_rows"] % int(old["chunk_size"]):  # the old last chunk was
                        last = old["num_rows"] // int(old["chunk_size"])  # partial: its record
                        _record_file(path, last).unlink(missing_ok=True)  # covers
                    old["num_rows"] = new["num_rows"]  # too few rows; it runs again, whole
                    _atomic_write(meta, json.dumps(old, indent=1))
                store = cls(path)
                store._resize(store.num_rows)
                return store
            (path / "chunks").mkdir(exist_ok=True)
            group = zarr.open_group(path / "data", mode="a")
            n, d = int(num_rows), int(prior.dim)
            cs = int(chunk_size)
            # overwrite: arrays left by a creation that died before writing the provenance
            # (no chunk can have run then) would block the path for good
            new_array = partial(group.create_array, overwrite=True)
            new_array("theta", shape=(n, d), chunks=(cs, d), dtype="f4", fill_value=np.nan)
            new_array("status", shape=(n,), chunks=(cs,), dtype="i1", fill_value=PENDING)
            if augmented:
                new_array("score", shape=(n, d), chunks=(cs, d), dtype="f4", fill_value=0)
                if theta_ref is not None:
                    new_array("log_r", shape=(n,), chunks=(cs,), dtype="f4", fill_value=0)
            _atomic_write(meta, json.dumps(new, indent=1))
        return cls(path)

    def _resize(self, n: int) -> None:
        for name in self._group.array_keys():
            arr = self._group[name]
            if arr.shape[0] < n:
                arr.resize((n, *arr.shape[1:]))

    # -- shape of the campaign --------------------------------------------------------------

    @property
    def num_rows(self) -> int:
        return int(self.provenance["num_rows"])

    @property
    def chunk_size(self) -> int:
        return int(self.provenance["chunk_size"])

    @property
    def num_chunks(self) -> int:
        return -(-self.num_rows // self.chunk_size)

    def rows(self, chunk: int) -> tuple[int, int]:
        """The rows ``[start, stop)`` of ``chunk``."""
        if not 0 <= chunk < self.num_chunks:
            raise ValueError(f"chunk: expected 0 <= chunk < {self.num_chunks}, got {chunk}")
        start = chunk * self.chunk_size
        return start, min(start + self.chunk_size, self.num_rows)

    # -- writing ----------------------------------------------------------------------------

    def write_theta(self, theta: np.ndarray, start: int = 0) -> None:
        """Store the campaign's θ rows from ``start`` (before their x is simulated)."""
        self._group["theta"][start : start + len(theta)] = np.asarray(theta, np.float32)

    def _record_path(self, chunk: int) -> Path:
        return _record_file(self.path, chunk)

    def _arrays(self, chunk: int, with_x: bool = True) -> dict[str, np.ndarray]:
        start, stop = self.rows(chunk)
        names = [n for n in sorted(self._group.array_keys()) if with_x or n != "x"]
        return {name: self._group[name][start:stop] for name in names}

    @staticmethod
    def _digest(arrays: dict[str, np.ndarray]) -> str:
        h = hashlib.sha256()
        for name in sorted(arrays):
            h.update(name.encode())
            h.update(np.ascontiguousarray(arrays[name]).tobytes())
        return h.hexdigest()

    def write_chunk(
        self,
        chunk: int,
        x: np.ndarray,
        status: np.ndarray,
        *,
        errors: dict[int, str] | None = None,
        score: np.ndarray | None = None,
        log_r: np.ndarray | None = None,
        seconds: float = 0.0,
    ) -> bool:
        """Store one finished chunk (``errors`` maps row offsets in the chunk to error text).

        Returns False, writing nothing, when the chunk is already done (a chunk run twice, e.g.
        after a worker was lost, is stored once)."""
        if self.record(chunk) is not None:
            return False
        start, stop = self.rows(chunk)
        produced = np.isin(np.asarray(status), (DONE, NONFINITE))
        if not produced.any():  # every row failed: x stays NaN (the fill), whatever its width
            x = None
        else:
            x = np.asarray(x, np.float32).reshape(stop - start, -1)
        if x is not None and "x" not in self._group:
            with FileLock(self.path / ".lock"):
                self._group = zarr.open_group(self.path / "data", mode="a")
                if "x" not in self._group:
                    self._group.create_array(
                        "x",
                        shape=(self.num_rows, x.shape[1]),
                        chunks=(self.chunk_size, x.shape[1]),
                        dtype="f4",
                        fill_value=np.nan,
                    )
        if x is None and "x" in self._group:  # NaN over whatever a damaged earlier run left
            x = np.full((stop - start, self._group["x"].shape[1]), np.nan, np.float32)
        if x is not None:
            if self._group["x"].shape[1] != x.shape[1]:
                width = self._group["x"].shape[1]
                raise ValueError(f"x: expected {width} columns, got {x.shape[1]}")
            self._group["x"][start:stop] = x
        for name, value in (("score", score), ("log_r", log_r)):
            if value is not None:
                self._group[name][start:stop] = np.asarray(value, np.float32)
        self._group["status"][start:stop] = np.asarray(status, np.int8)
        status = np.asarray(status)
        record = {
            "chunk": chunk,
            "rows": [start, stop],
            "done": int((status == DONE).sum()),
            "failed": int((status == FAILED).sum()),
            "nonfinite": int((status == NONFINITE).sum()),
            "errors": {str(start + int(i)): str(e) for i, e in (errors or {}).items()},
            "seconds": float(seconds),
            "written": time.time(),
            "has_x": x is not None,  # an all-failed chunk writes no x: its checksum skips x
            "sha256": self._digest(self._arrays(chunk, with_x=x is not None)),
        }
        _atomic_write(self._record_path(chunk), json.dumps(record))
        return True

    # -- reading ----------------------------------------------------------------------------

    def record(self, chunk: int) -> dict | None:
        """The commit record of ``chunk``, or None while it is pending."""
        try:
            return json.loads(self._record_path(chunk).read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:  # a torn record cannot come from _atomic_write; be safe
            return None

    def finished_chunks(self) -> list[int]:
        """The chunks with a commit record (not checked against their data: see verify)."""
        names = os.listdir(self.path / "chunks")
        out = sorted(int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit())
        return [c for c in out if c < self.num_chunks]

    def pending_chunks(self, shard: tuple[int, int] = (0, 1)) -> list[int]:
        """The chunks still to simulate; ``shard=(i, k)`` keeps those with ``chunk % k == i``."""
        i, k = shard
        done = set(self.finished_chunks())
        return [c for c in range(self.num_chunks) if c % k == i and c not in done]

    def verify(self, chunks: list[int] | None = None) -> list[tuple[int, str]]:
        """Check the finished chunks' data against their checksums: ``[(chunk, problem)]``."""
        bad = []
        for c in self.finished_chunks() if chunks is None else chunks:
            rec = self.record(c)
            if rec is None:
                if self._record_path(c).is_file():  # counted finished, but unreadable
                    bad.append((c, "unreadable commit record"))
                continue
            try:
                digest = self._digest(self._arrays(c, with_x=rec.get("has_x", True)))
            except Exception as exc:  # noqa: BLE001 - an unreadable chunk is a finding
                bad.append((c, f"unreadable: {type(exc).__name__}: {exc}"))
                continue
            if digest != rec["sha256"]:
                bad.append((c, "checksum mismatch"))
        return bad

    def invalidate(self, chunk: int) -> None:
        """Mark ``chunk`` pending again (its rows are re-simulated on resume)."""
        self._record_path(chunk).unlink(missing_ok=True)
        start, stop = self.rows(chunk)
        try:
            self._group["status"][start:stop] = PENDING
        except Exception:  # noqa: BLE001 - a corrupt status chunk: remove the file
            warnings.warn(f"chunk {chunk}: its status could not be reset", stacklevel=2)

    @property
    def theta(self) -> np.ndarray:
        return self._group["theta"][:]

    @property
    def x(self) -> np.ndarray:
        if "x" not in self._group:
            return np.full((self.num_rows, 0), np.nan, np.float32)
        return self._group["x"][:]

    @property
    def status(self) -> np.ndarray:
        """Per-row status; rows of a chunk without a commit record read PENDING."""
        status = self._group["status"][:]
        done = np.zeros(self.num_chunks, bool)
        done[self.finished_chunks()] = True
        status[~np.repeat(done, self.chunk_size)[: self.num_rows]] = PENDING
        return status

    def array_width(self, name: str) -> int:
        """Columns of a stored array (0 for x before the first chunk is stored)."""
        if name not in self._group:
            return 0
        shape = self._group[name].shape
        return int(shape[1]) if len(shape) > 1 else 1

    def array(self, name: str) -> np.ndarray:
        """A stored array by name: theta, x, status, score or log_r."""
        if name not in self._group:
            raise KeyError(f"name: this store has {sorted(self._group.array_keys())}, not {name!r}")
        return self._group[name][:]

    def counts(self) -> dict[str, int]:
        """Rows done, failed (raised/timed out), non-finite and pending, from the records."""
        out = {"done": 0, "failed": 0, "nonfinite": 0}
        for c in self.finished_chunks():
            rec = self.record(c) or {}
            for k in out:
                out[k] += int(rec.get(k, 0))
        out["pending"] = self.num_rows - sum(out.values())
        return out

    def errors(self) -> dict[int, str]:
        """The error text of every failed row, by row index."""
        out: dict[int, str] = {}
        for c in self.finished_chunks():
            out.update({int(k): v for k, v in (self.record(c) or {}).get("errors", {}).items()})
        return out

    def iter_chunks(self, chunks: list[int] | None = None) -> Iterator[tuple[np.ndarray, ...]]:
        """``(theta, x)`` of the DONE rows, one finished chunk at a time (larger-than-memory
        stores train from this)."""
        if "x" not in self._group:  # no row has given an x yet (every finished row failed)
            return
        for c in self.finished_chunks() if chunks is None else chunks:
            start, stop = self.rows(c)
            ok = self._group["status"][start:stop] == DONE
            yield self._group["theta"][start:stop][ok], self._group["x"][start:stop][ok]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(theta, x)`` of all DONE rows; warns with the count of the rows left out."""
        counts = self.counts()
        parts = list(self.iter_chunks())
        if not parts or not any(len(p[0]) for p in parts):
            raise ValueError(
                f"store: no finished simulations in {str(self.path)!r} ({counts['failed']} "
                f"failed, {counts['nonfinite']} non-finite, {counts['pending']} pending; see "
                "errors())"
            )
        left = self.num_rows - counts["done"]
        if left:
            warnings.warn(
                f"store: {left} of {self.num_rows} rows are not used ({counts['failed']} failed, "
                f"{counts['nonfinite']} non-finite, {counts['pending']} pending)",
                stacklevel=2,
            )
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def info(self) -> dict[str, Any]:
        """Provenance, row counts and chunk counts (what ``lfi store info --json`` prints)."""
        finished = len(self.finished_chunks())
        return {
            "path": str(self.path),
            **self.counts(),
            "rows": self.num_rows,
            "chunks": self.num_chunks,
            "chunks_finished": finished,
            "chunks_pending": self.num_chunks - finished,
            "provenance": self.provenance,
        }

    def __repr__(self) -> str:
        c = self.counts()
        return (
            f"SimulationStore({str(self.path)!r}: {self.num_rows} rows, {c['done']} done, "
            f"{c['failed']} failed, {c['nonfinite']} non-finite, {c['pending']} pending)"
        )


def open_store(path: str | os.PathLike[str]) -> SimulationStore:
    """Open the simulation store at ``path`` (see :mod:`lfi.store`)."""
    return SimulationStore(path)
