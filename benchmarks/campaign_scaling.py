"""Campaign throughput with 1 and 2 workers (local process pool and Dask) and the store's cost.

Issue 7: "throughput of a CPU-bound numpy simulator with 1 and 2 workers (local pool and Dask)
— scaling >= 1.8x on this 2-core machine — and the per-simulation overhead of the store".

Every configuration runs the same campaign (same seed: the stores must be identical, checked)
in one process, side by side. Workers are started and warmed (lfi imported, the simulator
loaded) before the clock starts: the figure is throughput, and the cold start (spawning and
importing JAX in each worker) is reported separately. The store's overhead is a campaign of a
free simulator (x = θ) minus the same simulations in memory (lfi.run_simulator), per row.

    python benchmarks/campaign_scaling.py --n 4000 --out benchmarks/results/campaign_scaling
"""

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import lfi  # noqa: E402
from lfi.campaign import SimulatorRef, resolve, run_campaign  # noqa: E402
from lfi.executors import DaskExecutor, InProcess, LocalPool  # noqa: E402

HERE = Path(__file__).parent / "sims"
CPU = SimulatorRef(str(HERE / "cpu_bound.py"))
FREE = SimulatorRef(str(HERE / "identity_sim.py"))


def _touch(ref):
    """Load the simulator in a worker (imports lfi and JAX there); return nothing."""
    resolve(ref)
    return 0


def _warm(ex, k):
    futs = [ex.submit(_touch, CPU) for _ in range(4 * k)]
    for f in ex.as_completed(futs):
        f.result()


def _raw_chunk(args):
    """The simulator on one chunk, no lfi around it (the machine's own ceiling)."""
    theta, seed = args
    return resolve(CPU)(theta, rng=np.random.default_rng(seed))


def _raw(workers, n, chunk):
    """Wall time of the bare simulator over the same rows in a spawned multiprocessing pool."""
    import multiprocessing

    theta = np.asarray(lfi.BoxUniform([-1.0, -1.0], [1.0, 1.0]).sample(n, 0))
    jobs = [(theta[i : i + chunk], i) for i in range(0, n, chunk)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_raw_chunk, jobs[: 2 * workers])  # warm
        tic = time.perf_counter()
        pool.map(_raw_chunk, jobs, chunksize=1)
        return time.perf_counter() - tic


def _timed(ex, path, n, chunk, seed):
    tic = time.perf_counter()
    store = run_campaign(CPU, None, n, path, seed, chunk_size=chunk, executor=ex, progress=False)
    return time.perf_counter() - tic, store


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--chunk", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/campaign_scaling")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    rows, stores = [], {}

    def record(name, workers, cold, seconds, store):
        stores[name] = store
        rows.append({"executor": name, "workers": workers, "cold_start_s": cold,
                     "seconds": seconds, "sims_per_s": args.n / seconds})  # fmt: skip
        print(f"{name:<14} {workers} worker(s): {seconds:6.2f} s, {args.n / seconds:7.1f} sims/s "
              f"(cold start {cold:.1f} s)", flush=True)  # fmt: skip

    for k in (1, 2):
        s = _raw(k, args.n, args.chunk)
        rows.append({"executor": "bare multiprocessing (no lfi)", "workers": k,
                     "cold_start_s": 0.0, "seconds": s, "sims_per_s": args.n / s})  # fmt: skip
        print(f"bare pool      {k} worker(s): {s:6.2f} s", flush=True)
    ex = InProcess()
    resolve(CPU)
    s, st = _timed(ex, tmp / "inproc", args.n, args.chunk, args.seed)
    record("in-process", 1, 0.0, s, st)
    for k in (1, 2):
        tic = time.perf_counter()
        pool = LocalPool(k)
        _warm(pool, k)
        cold = time.perf_counter() - tic
        s, st = _timed(pool, tmp / f"pool{k}", args.n, args.chunk, args.seed)
        pool.close()
        record("local pool", k, cold, s, st)
    from distributed import Client, LocalCluster

    for k in (1, 2):
        tic = time.perf_counter()
        with (
            LocalCluster(n_workers=k, threads_per_worker=1, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            ex = DaskExecutor(client)
            _warm(ex, k)
            cold = time.perf_counter() - tic
            s, st = _timed(ex, tmp / f"dask{k}", args.n, args.chunk, args.seed)
        record("dask", k, cold, s, st)

    ref = stores["in-process"]
    # the campaign's two-worker rows against the bare pool's, measured in the same run
    same = all(np.array_equal(v.x, ref.x) and np.array_equal(v.theta, ref.theta)
               for v in stores.values())  # fmt: skip
    base = {r["executor"]: r["seconds"] for r in rows if r["workers"] == 1}

    # the store's own cost per simulation: a free simulator, campaign vs in memory
    n_free, chunk_free = 200_000, 1000
    resolve(FREE)
    tic = time.perf_counter()
    prior = lfi.BoxUniform([-1.0, -1.0], [1.0, 1.0])
    theta = np.asarray(prior.sample(n_free, 0))
    lfi.run_simulator(resolve(FREE), theta, 0, chunk_size=chunk_free, progress=False)
    t_mem = time.perf_counter() - tic
    tic = time.perf_counter()
    run_campaign(FREE, None, n_free, tmp / "free", 0, chunk_size=chunk_free, progress=False)
    t_store = time.perf_counter() - tic
    overhead_us = (t_store - t_mem) / n_free * 1e6
    per_chunk_ms = (t_store - t_mem) / (n_free / chunk_free) * 1e3
    print(f"store overhead: {overhead_us:.1f} µs per simulation ({per_chunk_ms:.1f} ms per "
          f"chunk of {chunk_free}); identical stores across executors: {same}")  # fmt: skip

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"n": args.n, "chunk": args.chunk, "rows": rows, "identical_stores": same,
              "store_overhead_us_per_sim": overhead_us, "store_overhead_ms_per_chunk":
              per_chunk_ms, "free_sims": n_free, "cpus": os.cpu_count()}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [
        "# Campaign throughput: 1 vs 2 workers, local pool and Dask",
        "",
        f"`python benchmarks/campaign_scaling.py --n {args.n} --chunk {args.chunk}` "
        f"({os.cpu_count()} CPUs; CPU-bound numpy simulator, benchmarks/sims/cpu_bound.py; "
        "workers warmed before timing). The bare multiprocessing rows run the same simulator on "
        "the same chunks without lfi: the scaling this machine gave at that moment.",
        "",
        "| executor | workers | seconds | sims/s | scaling vs 1 worker | cold start (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        scale = base[r["executor"]] / r["seconds"]
        lines.append(
            f"| {r['executor']} | {r['workers']} | {r['seconds']:.2f} | {r['sims_per_s']:.1f} "
            f"| {scale:.2f}× | {r['cold_start_s']:.1f} |"
        )
    lines += [
        "",
        f"Identical stores (θ, x) across all five runs: {same}.",
        "",
        f"Store overhead (x = θ, {n_free} simulations in chunks of {chunk_free}, campaign minus "
        f"in-memory run_simulator): {overhead_us:.1f} µs per simulation, {per_chunk_ms:.1f} ms "
        "per chunk (zarr writes, sha256, commit record).",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
