"""The simulation store: resume rules, commit records, checksums, damaged chunks, streaming."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import lfi
from lfi.campaign import SimulatorRef, run_campaign
from lfi.methods.store_data import StoreBlocks
from lfi.store import DONE, FAILED, NONFINITE, PENDING, SimulationStore, open_store

SIM = SimulatorRef(str(Path(__file__).parent / "sims" / "numpy_sim.py"))
PRIOR = lfi.BoxUniform([0.0, 0.0], [1.0, 1.0])


def _create(path, **kw):
    args = dict(prior=PRIOR, num_rows=10, chunk_size=4, seed=0, simulator="s")
    return SimulationStore.create(path, **{**args, **kw})


def test_resume_checks_the_campaign_identity_and_can_grow(tmp_path):
    store = _create(tmp_path)
    assert (store.num_chunks, store.rows(2)) == (3, (8, 10))
    with pytest.raises(ValueError, match="seed"):
        _create(tmp_path, seed=1)
    with pytest.raises(ValueError, match="chunk_size"):
        _create(tmp_path, chunk_size=5)
    with pytest.raises(ValueError, match="prior"):
        _create(tmp_path, prior=lfi.BoxUniform([0.0, 0.0], [2.0, 1.0]))
    grown = _create(tmp_path, num_rows=17)
    assert grown.num_rows == 17 and grown.theta.shape == (17, 2) and grown.num_chunks == 5
    assert _create(tmp_path, num_rows=5).num_rows == 17  # never shrinks


def test_a_creation_that_died_before_its_provenance_does_not_block_the_path(tmp_path):
    import zarr

    group = zarr.open_group(tmp_path / "data", mode="a")  # arrays written, then a kill
    group.create_array("theta", shape=(3, 2), chunks=(3, 2), dtype="f4")
    store = _create(tmp_path)
    assert store.theta.shape == (10, 2) and store.counts()["pending"] == 10


def test_the_rng_scheme_is_part_of_the_identity(tmp_path):
    _create(tmp_path)
    with pytest.raises(ValueError, match="timeout"):  # a timeout seeds numpy per row
        _create(tmp_path, rng="row")
    meta = tmp_path / "lfi_store.json"
    old = json.loads(meta.read_text())
    del old["rng"]  # a store from before the scheme was recorded
    meta.write_text(json.dumps(old))
    with pytest.warns(UserWarning, match="older lfi"):
        _create(tmp_path)
    # a timeout store of lfi before 2026-11-27 seeded global generators with 31 bits per row
    old = json.loads(meta.read_text())
    meta.write_text(json.dumps({**old, "rng": "row-key64"}))
    with pytest.raises(ValueError, match="timeout: .*'row-key64'"):
        _create(tmp_path, rng="row")


def test_growing_reruns_a_partial_last_chunk(tmp_path):
    """10 rows in chunks of 4: chunk 2 held rows 8-9; grown to 12 it holds 8-11, so its record
    (2 rows) no longer covers it: it is pending again, and the new rows get simulated."""
    store = _create(tmp_path)
    for c in range(3):
        start, stop = store.rows(c)
        store.write_chunk(c, np.ones((stop - start, 1), np.float32), np.full(stop - start, DONE))
    assert store.pending_chunks() == []
    grown = _create(tmp_path, num_rows=12)
    assert grown.pending_chunks() == [2] and grown.counts()["pending"] == 4


def test_an_all_failed_chunk_stores_no_x_and_an_unreadable_record_is_found(tmp_path):
    store = _create(tmp_path)
    # every row raised: the runner knows no width (1 column of NaN); later chunks have 3
    assert store.write_chunk(0, np.full((4, 1), np.nan, np.float32), np.full(4, FAILED))
    assert store.write_chunk(1, np.ones((4, 3), np.float32), np.full(4, DONE))
    assert store.x.shape == (10, 3) and np.isnan(store.x[:4]).all()
    assert store.verify() == []
    (tmp_path / "chunks" / "000001.json").write_text("{torn")
    assert store.verify() == [(1, "unreadable commit record")]


def test_open_store_on_other_paths_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an lfi simulation store"):
        open_store(tmp_path)


def test_a_store_with_arrays_lfi_does_not_write_is_refused_before_reading(tmp_path):
    """A store from elsewhere: a zarr v2 object array whose filters unpickle its chunks (code
    execution with numcodecs < 0.16) is refused from its metadata, before any chunk is read; so
    is an array of another name."""
    import pickle

    good = run_campaign(SIM, None, 20, tmp_path / "good", seed=0, chunk_size=10, progress=False)
    data = tmp_path / "good" / "data"
    zarray = {"zarr_format": 2, "shape": [20, 3], "chunks": [10, 3], "dtype": "|O",
              "compressor": None, "fill_value": None, "order": "C", "dimension_separator": ".",
              "filters": [{"id": "vlen-utf8"}, {"id": "pickle"}]}  # fmt: skip
    for child in (data / "x").iterdir():
        if child.is_dir():
            import shutil

            shutil.rmtree(child)
        else:
            child.unlink()
    (data / "zarr.json").unlink()  # a zarr v2 hierarchy, as the crafted store was
    (data / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (data / "x" / ".zarray").write_text(json.dumps(zarray))
    (data / "x" / "0.0").write_bytes(pickle.dumps(["not code, but it would be unpickled"]))
    with pytest.raises(ValueError, match="refusing"):
        open_store(good.path)
    # a v3 store with an array lfi never writes
    import zarr

    other = run_campaign(SIM, None, 20, tmp_path / "other", seed=0, chunk_size=10, progress=False)
    zarr.open_group(other.path / "data", mode="a").create_array("extra", shape=(2,), dtype="f4")
    with pytest.raises(ValueError, match="does not write"):
        open_store(other.path)


def test_a_chunk_is_stored_once_and_counted_by_status(tmp_path):
    store = _create(tmp_path)
    status = np.array([DONE, FAILED, NONFINITE, DONE], np.int8)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert store.write_chunk(1, x, status, errors={1: "ValueError: no"})
    assert not store.write_chunk(1, x + 1, status)  # a second run of the chunk is not stored
    np.testing.assert_array_equal(store.x[4:8], x)
    assert store.counts() == {"done": 2, "failed": 1, "nonfinite": 1, "pending": 6}
    assert store.errors() == {5: "ValueError: no"}
    assert store.pending_chunks() == [0, 2] and store.pending_chunks((1, 2)) == []
    assert store.verify() == []


def test_data_without_a_commit_record_reads_pending(tmp_path):
    """A crash between the data and the record: the rows are pending, and are re-run."""
    store = _create(tmp_path)
    store.write_chunk(0, np.ones((4, 1), np.float32), np.full(4, DONE, np.int8))
    (tmp_path / "chunks" / "000000.json").unlink()
    assert (store.status == PENDING).all()
    assert store.pending_chunks() == [0, 1, 2]


def _chunk_file(path, array, chunk):
    files = sorted((path / "data" / array / "c").rglob("*"))
    files = [
        f
        for f in files
        if f.is_file() and f.relative_to(path / "data" / array / "c").parts[0] == str(chunk)
    ]
    assert len(files) == 1
    return files[0]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_chunks_are_found_and_simulated_again(tmp_path, damage):
    ref = run_campaign(SIM, None, 300, tmp_path / "ref", seed=2, chunk_size=100, progress=False)
    store = run_campaign(SIM, None, 300, tmp_path / "s", seed=2, chunk_size=100, progress=False)
    target = _chunk_file(tmp_path / "s", "x", 1)
    data = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    else:  # same length, one byte changed: only the checksum can tell
        target.write_bytes(data[:-9] + bytes([data[-9] ^ 0xFF]) + data[-8:])
    bad = store.verify()
    assert [c for c, _ in bad] == [1]
    with pytest.warns(UserWarning, match="chunk 1 is damaged"):
        again = run_campaign(SIM, None, 300, tmp_path / "s", seed=2, chunk_size=100, progress=False)
    assert again.verify() == []
    np.testing.assert_array_equal(again.x, ref.x)
    np.testing.assert_array_equal(again.status, ref.status)


def test_arrays_use_done_rows_and_say_how_many_were_left_out(tmp_path):
    store = run_campaign(SIM, None, 400, tmp_path, seed=0, chunk_size=100, progress=False)
    c = store.counts()
    assert c["failed"] > 0 and c["nonfinite"] > 0  # the simulator raises above 0.95, NaN below .03
    with pytest.warns(UserWarning, match=f"{c['failed']} failed, {c['nonfinite']} non-finite"):
        theta, x = store.arrays()
    assert theta.shape == (c["done"], 2) and x.shape == (c["done"], 3)
    assert np.isfinite(x).all() and theta[:, 0].max() <= 0.95 and theta[:, 0].min() >= 0.03
    info = json.loads(json.dumps(store.info()))
    assert info["done"] == c["done"] and info["provenance"]["simulator_version"] == "1.0"


def test_store_blocks_visit_every_training_row_once_per_epoch(tmp_path):
    import jax

    store = run_campaign(SIM, None, 1000, tmp_path, seed=0, chunk_size=100, progress=False)
    blocks = StoreBlocks(store, PRIOR, seed=3, validation_fraction=0.2, block_rows=250)
    assert len(blocks.val_chunks) == 2 and not set(blocks.val_chunks) & set(blocks.train_chunks)
    parts = list(blocks.blocks(jax.random.key(0)))
    assert [p[0].shape[0] for p in parts[:-1]] == [250] * (len(parts) - 1)
    z_theta = np.concatenate([p[0] for p in parts])
    # the same rows as the training chunks, standardised with their exact mean and std
    theta = np.concatenate([t for t, _ in store.iter_chunks(blocks.train_chunks)])
    u = np.asarray(PRIOR.to_unconstrained(theta), np.float64)
    expected = (u - u.mean(0)) / u.std(0)
    assert z_theta.shape == expected.shape == (blocks.num_train, 2)
    np.testing.assert_allclose(np.sort(z_theta, 0), np.sort(expected, 0), atol=2e-4)
    order_a = list(blocks.blocks(jax.random.key(1)))[0][0]
    assert not np.array_equal(order_a, parts[0][0])  # another epoch, another order
    with pytest.raises(ValueError, match="block_rows"):
        StoreBlocks(store, PRIOR, block_rows=0)
    # blocks smaller than a batch hold no whole batch: training would take no step at all
    from lfi.train import fit

    small = StoreBlocks(store, PRIOR, seed=3, block_rows=20)
    with pytest.raises(ValueError, match="block_rows"):
        fit(lambda z: z, lambda m, b, k: 0.0, small, batch_size=50, progress=False)
    # ... but a batch larger than the whole training set is clamped to it, as in memory
    tiny = run_campaign(SIM, None, 150, tmp_path / "tiny", seed=0, chunk_size=50, progress=False)
    whole = StoreBlocks(tiny, PRIOR, seed=3, validation_fraction=0.2, block_rows=150)
    assert whole.num_train < 200 and whole.block_rows < 200
    import equinox as eqx

    model = eqx.nn.Linear(2, 1, key=jax.random.key(0))
    loss = lambda m, b, k: jax.numpy.mean(jax.vmap(m)(b[0]) ** 2)  # noqa: E731
    _, h = fit(model, loss, whole, batch_size=200, max_epochs=2, progress=False)
    assert len(h.val_loss) == 2


def test_streamed_npe_learns_the_posterior_mean(tmp_path):
    """x = (θ₁, θ₂, θ₁+θ₂) + N(0, 1): at x_o the posterior mean is known (uniform prior wide
    against the noise is not, so compare with importance weights on prior draws)."""
    store = run_campaign(SIM, None, 2000, tmp_path, seed=0, chunk_size=250, progress=False)
    npe = lfi.NPE(PRIOR, progress=False, block_rows=800, max_epochs=15, nn_width=32)
    post = npe.fit(store, None, seed=0)
    assert len(post.history.val_loss) > 5
    x_o = np.array([0.5, 0.5, 1.0], np.float32)
    draws = np.asarray(PRIOR.sample(200_000, 1))
    a = np.concatenate([draws, draws.sum(1, keepdims=True)], 1)
    w = np.exp(-0.5 * ((a - x_o) ** 2).sum(1))
    w[(draws[:, 0] > 0.95) | (draws[:, 0] < 0.03)] = 0  # those rows never train
    mean = (w[:, None] * draws).sum(0) / w.sum()
    sd = np.sqrt((w[:, None] * (draws - mean) ** 2).sum(0) / w.sum())
    samples = np.asarray(post.sample(4000, x=x_o, seed=0))
    # a trained flow's mean within a fifth of a posterior sd (4000 draws add sd/63)
    assert np.all(np.abs(samples.mean(0) - mean) < 0.2 * sd), (samples.mean(0), mean, sd)


def test_store_files_are_plain_data(tmp_path):
    store = run_campaign(SIM, None, 100, tmp_path, seed=0, chunk_size=50, progress=False)
    names = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    assert "lfi_store.json" in names and "000001.json" in names
    assert not any(n.endswith((".pkl", ".pickle")) for n in names)
    assert os.path.getsize(tmp_path / "lfi_store.json") > 0 and store.num_chunks == 2


def test_training_box_of_a_store_is_that_of_its_rows(tmp_path):
    """NLE/NRE read a store's θ range chunk by chunk; it equals the range over all its rows."""
    from lfi.methods.nle import training_box

    store = run_campaign(SIM, None, 300, tmp_path, seed=0, chunk_size=100, progress=False)
    theta, x = (np.concatenate(a) for a in zip(*store.iter_chunks()))
    low, high = training_box(PRIOR, store, None)
    want_low, want_high = training_box(PRIOR, theta, x)
    np.testing.assert_array_equal(low, want_low)
    np.testing.assert_array_equal(high, want_high)
    u = np.asarray(PRIOR.to_unconstrained(theta))
    np.testing.assert_allclose(high, u.max(0), rtol=1e-6)
