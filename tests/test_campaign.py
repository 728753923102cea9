"""Campaigns: the same rows whatever runs them, and nothing lost or doubled when things die.

Issue 7's acceptance: a real dask.distributed.LocalCluster with two worker processes, a worker
killed mid-campaign, ``kill -9`` of the whole campaign process and a resume, and the same seed
giving identical stores with 1 or 2 workers, the local pool or Dask.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import lfi
from lfi.campaign import SimulatorRef, run_campaign
from lfi.executors import LocalPool
from lfi.store import DONE, FAILED, open_store

SIMS = Path(__file__).parent / "sims"
SIM = SimulatorRef(str(SIMS / "numpy_sim.py"))
N, CHUNK, SEED = 2000, 100, 5


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The campaign run in this process, one chunk after another."""
    path = tmp_path_factory.mktemp("reference")
    return run_campaign(SIM, None, N, path, seed=SEED, chunk_size=CHUNK, progress=False)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def assert_same_rows(store, reference):
    np.testing.assert_array_equal(store.theta, reference.theta)
    np.testing.assert_array_equal(store.x, reference.x)  # NaN rows compare equal here
    np.testing.assert_array_equal(store.status, reference.status)
    assert store.errors() == reference.errors()


def assert_each_chunk_once(store):
    """Every row finished, every chunk has exactly one record naming its own rows."""
    records = sorted((store.path / "chunks").glob("*.json"))
    assert len(records) == store.num_chunks
    rows = np.zeros(store.num_rows, int)
    for path in records:
        rec = json.loads(path.read_text())
        rows[rec["rows"][0] : rec["rows"][1]] += 1
    assert (rows == 1).all()
    assert store.counts()["pending"] == 0 and store.verify() == []


def test_reference_campaign_counts_failures_and_keeps_their_errors(reference):
    c = reference.counts()
    status, theta = reference.status, reference.theta
    assert c["done"] + c["failed"] + c["nonfinite"] == N and c["pending"] == 0
    np.testing.assert_array_equal(status == FAILED, theta[:, 0] > 0.95)
    assert all("too large" in e for e in reference.errors().values())
    assert len(reference.errors()) == c["failed"]
    assert_each_chunk_once(reference)


def test_same_rows_with_two_local_processes(tmp_path, reference):
    store = run_campaign(
        SIM, None, N, tmp_path, seed=SEED, chunk_size=CHUNK, workers=2, progress=False
    )
    assert_same_rows(store, reference)


def test_same_rows_on_dask_with_a_worker_killed_mid_campaign(tmp_path, reference, dask_client):
    os.environ["LFI_TEST_SIM_SECONDS"] = "0.001"  # 0.1 s a chunk: the kill lands mid-campaign
    try:
        pids = list(dask_client.run(os.getpid).values())
        assert len(pids) == 2
        killed = threading.Event()

        def kill_one():
            while not killed.is_set():
                if len(list((tmp_path / "chunks").glob("*.json"))) >= 3:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.set()
                time.sleep(0.02)

        threading.Thread(target=kill_one, daemon=True).start()
        store = run_campaign(
            SIM, None, N, tmp_path, seed=SEED, chunk_size=CHUNK, executor=dask_client,
            progress=False,
        )  # fmt: skip
        killed.set()
    finally:
        del os.environ["LFI_TEST_SIM_SECONDS"]
    done_early = len(list((tmp_path / "chunks").glob("*.json")))
    assert done_early == store.num_chunks
    assert pids[0] not in dask_client.run(os.getpid).values()  # the worker did die
    assert_each_chunk_once(store)
    assert_same_rows(store, reference)


def test_same_rows_when_a_pool_worker_dies(tmp_path, reference):
    pool = LocalPool(2)
    os.environ["LFI_TEST_SIM_SECONDS"] = "0.001"
    try:

        def kill_one():
            while not list((tmp_path / "chunks").glob("*.json")):
                time.sleep(0.02)
            os.kill(next(iter(pool._pool._processes)), signal.SIGKILL)

        threading.Thread(target=kill_one, daemon=True).start()
        store = run_campaign(
            SIM, None, N, tmp_path, seed=SEED, chunk_size=CHUNK, executor=pool, progress=False
        )
    finally:
        del os.environ["LFI_TEST_SIM_SECONDS"]
        pool.close()
    assert_each_chunk_once(store)
    assert_same_rows(store, reference)


def test_a_broken_pool_reports_through_the_future_at_submission():
    """A worker that dies between two submissions breaks the pool before the campaign reads a
    failed result: ``submit`` must not raise then (CI saw that race), but hand back a future
    that carries the loss, which the campaign handles like any lost chunk."""
    from concurrent.futures.process import BrokenProcessPool

    pool = LocalPool(1)
    try:
        assert pool.submit(pow, 2, 5).result(timeout=60) == 32
        os.kill(next(iter(pool._pool._processes)), signal.SIGKILL)
        deadline = time.time() + 60
        while not pool._pool._broken and time.time() < deadline:
            time.sleep(0.02)
        fut = pool.submit(pow, 2, 6)
        assert isinstance(fut.exception(timeout=60), BrokenProcessPool)
        pool.restart()
        assert pool.submit(pow, 2, 6).result(timeout=60) == 64
    finally:
        pool.close()


def test_kill_9_of_the_campaign_then_resume(tmp_path, reference):
    """``lfi simulate`` killed with SIGKILL mid-campaign; rerun: finished chunks are kept as
    they were (not re-simulated), the rest completes, the rows equal an uninterrupted run."""
    store_path = tmp_path / "store"
    cmd = [sys.executable, "-m", "lfi", "simulate", str(SIMS / "numpy_sim.py"), "--quiet"]
    cmd += ["--n", str(N), "--chunk-size", str(CHUNK), "--seed", str(SEED)]
    cmd += ["--store", str(store_path)]
    env = {**os.environ, "LFI_TEST_SIM_SECONDS": "0.002"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(store_path.glob("chunks/*.json"))) < 4:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p.name: p.read_text() for p in store_path.glob("chunks/*.json")}
    assert 4 <= len(before) < reference.num_chunks
    assert open_store(store_path).counts()["pending"] > 0

    out = subprocess.run(cmd, env={**os.environ}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "0 pending" in out.stdout
    store = open_store(store_path)
    after = {p.name: p.read_text() for p in store_path.glob("chunks/*.json")}
    assert all(after[name] == text for name, text in before.items())  # kept, not redone
    assert_each_chunk_once(store)
    assert_same_rows(store, reference)


def test_shards_of_a_job_array_fill_one_store(tmp_path, reference):
    for i in (1, 0, 2):
        run_campaign(
            SIM, None, N, tmp_path, seed=SEED, chunk_size=CHUNK, shard=(i, 3), progress=False
        )
        assert open_store(tmp_path).pending_chunks((i, 3)) == []
    store = open_store(tmp_path)
    assert_each_chunk_once(store)
    assert_same_rows(store, reference)


def test_a_larger_n_extends_the_campaign(tmp_path, reference):
    run_campaign(SIM, None, N // 2, tmp_path, seed=SEED, chunk_size=CHUNK, progress=False)
    store = run_campaign(SIM, None, N, tmp_path, seed=SEED, chunk_size=CHUNK, progress=False)
    assert_same_rows(store, reference)


def test_a_hanging_simulation_times_out_and_the_rest_go_on(tmp_path):
    sim = SimulatorRef(str(SIMS / "hang_sim.py"))
    store = run_campaign(sim, None, 8, tmp_path, seed=0, chunk_size=8, timeout=1.0, progress=False)
    theta, status = store.theta[:, 0], store.status
    hung = theta > 0.8
    assert 0 < hung.sum() < 8
    np.testing.assert_array_equal(status == FAILED, hung)
    assert (status[~hung] == DONE).all()
    assert all("TimeoutError" in e for e in store.errors().values())


def test_a_timeout_keeps_per_sample_outputs_of_any_shape(tmp_path):
    # each row runs in a child process; a (2, 2) output is one simulation of 4 values there too
    sim = SimulatorRef(str(SIMS / "matrix_sim.py"))
    store = run_campaign(sim, None, 3, tmp_path, seed=0, chunk_size=3, timeout=60.0,
                         progress=False)  # fmt: skip
    assert store.counts()["done"] == 3 and store.x.shape == (3, 4), store.errors()


def test_jax_simulators_and_augmented_ones_run_as_campaigns(tmp_path):
    task = lfi.tasks.get("two_moons")
    a = run_campaign(task.simulator, task.prior, 300, tmp_path / "a", seed=1, chunk_size=128,
                     progress=False)  # fmt: skip
    b = run_campaign(SimulatorRef("two_moons"), None, 300, tmp_path / "b", seed=1, chunk_size=128,
                     progress=False)  # fmt: skip
    np.testing.assert_array_equal(a.x, b.x)
    assert a.counts()["done"] == 300
    # the stored x is the task's simulator at the stored θ (two_moons: |x - mean| has a known law)
    assert np.isfinite(a.x).all() and a.x.shape == (300, 2)

    gold = lfi.tasks.get("madminer_toy")
    ref = gold.true_parameters(1)
    g = run_campaign(gold.simulator, gold.prior, 400, tmp_path / "g", seed=0, chunk_size=200,
                     theta_ref=ref, progress=False)  # fmt: skip
    assert g.provenance["augmented"] and g.counts()["done"] == 400
    score, log_r = g.array("score"), g.array("log_r")
    assert score.shape == (400, 1) and log_r.shape == (400,) and np.isfinite(log_r).all()
    # the joint score has mean zero under p(x, z | θ): within 4 standard errors
    assert abs(score.mean()) < 4 * score.std() / np.sqrt(400)


def test_cli_store_info_json(tmp_path, reference):
    out = subprocess.run(
        [sys.executable, "-m", "lfi", "store", "info", str(reference.path), "--json", "--verify"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert {k: info[k] for k in ("done", "failed", "nonfinite", "pending")} == reference.counts()
    assert info["damaged_chunks"] == [] and info["provenance"]["seed"] == SEED


def test_a_scheduler_address_works_like_a_client(tmp_path, reference, dask_client):
    """``lfi simulate --cluster tcp://host:port`` and run_campaign(cluster="tcp://...")."""
    address = dask_client.scheduler.address
    assert address.startswith("tcp://")
    store = run_campaign(
        SIM, None, N, tmp_path, seed=SEED, chunk_size=CHUNK, cluster=address, progress=False
    )
    assert_same_rows(store, reference)


def test_a_global_rng_simulator_on_threaded_dask_workers_is_warned(tmp_path):
    """Threads of one Dask worker share numpy's global generator: a simulator that takes no
    ``rng`` is then not reproducible, and the campaign says so; with ``rng`` it is quiet."""
    import warnings

    distributed = pytest.importorskip("distributed")
    prior = lfi.BoxUniform([0.0], [1.0])

    def global_rng(theta):
        return theta + np.random.standard_normal(theta.shape)  # noqa: NPY002

    def own_rng(theta, rng):
        return theta + rng.standard_normal(theta.shape)

    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        kw = dict(chunk_size=10, executor=client, progress=False)
        with pytest.warns(UserWarning, match="not reproducible"):
            run_campaign(global_rng, prior, 20, tmp_path / "a", **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            run_campaign(own_rng, prior, 20, tmp_path / "b", **kw)
    # two one-thread workers in one process (processes=False) share the generator too
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with pytest.warns(UserWarning, match="not reproducible"):
            run_campaign(global_rng, prior, 20, tmp_path / "c", chunk_size=10, executor=client,
                         progress=False)  # fmt: skip


def test_a_store_where_every_row_failed_says_so(tmp_path):
    def broken(theta):
        raise RuntimeError("no")

    prior = lfi.BoxUniform([0.0], [1.0])
    with pytest.warns(UserWarning):
        store = run_campaign(broken, prior, 4, tmp_path, chunk_size=2, progress=False)
    with pytest.raises(ValueError, match="no finished simulations .*4 failed"):
        store.arrays()


def test_an_interrupt_in_process_stops_at_once_with_every_finished_chunk_written(tmp_path):
    # in-process chunks were simulated up to three ahead of the writes: an interrupt (or a
    # kill) lost two finished chunks, and Ctrl-C waited for them to be simulated
    prior = lfi.BoxUniform([0.0], [1.0])
    calls = []

    def sim(theta):
        calls.append(len(theta))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return theta + 1.0

    with pytest.raises(KeyboardInterrupt):
        run_campaign(sim, prior, 100, tmp_path, seed=0, chunk_size=10, progress=False)
    assert len(calls) == 3  # no chunk simulated after the interrupt
    assert open_store(tmp_path).counts()["done"] == 20  # the two chunks before it are stored


@pytest.mark.parametrize("timeout", [0, -1.0, float("inf"), "5"])
def test_a_timeout_that_is_not_a_positive_number_is_refused(tmp_path, timeout):
    prior = lfi.BoxUniform([0.0], [1.0])
    with pytest.raises(ValueError, match="timeout"):
        run_campaign(lambda t: t, prior, 10, tmp_path, seed=0, timeout=timeout, progress=False)


def test_a_timeout_with_an_unpicklable_simulator_is_refused_naming_the_timeout(tmp_path):
    prior = lfi.BoxUniform([0.0], [1.0])
    with pytest.raises(TypeError, match="timeout.*picklable"):
        run_campaign(lambda t: t, prior, 10, tmp_path, seed=0, timeout=5.0, progress=False)


def test_an_executor_of_another_kind_or_with_workers_is_refused_naming_it(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    prior = lfi.BoxUniform([0.0], [1.0])
    with ThreadPoolExecutor() as pool, pytest.raises(TypeError, match="executor: expected"):
        run_campaign(lambda t: t, prior, 10, tmp_path, seed=0, executor=pool, progress=False)
    local = LocalPool(2)  # its processes start at the first chunk: none here
    try:
        with pytest.raises(ValueError, match="executor, workers"):
            run_campaign(lambda t: t, prior, 10, tmp_path, seed=0, executor=local, workers=2,
                         progress=False)  # fmt: skip
    finally:
        local.close()
