"""The shared training loop: best weights kept, early stopping, learning-rate decays, errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lfi.train import fit


def _problem(n=512, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    y = (3 * x + 0.5 * rng.standard_normal((n, 1))).astype(np.float32)
    return x, y


def mse(model, batch, key):
    x, y = batch
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


def test_best_weights_are_returned_and_history_is_consistent():
    x, y = _problem()
    model = eqx.nn.Linear(1, 1, key=jax.random.key(0))
    fitted, h = fit(
        model, mse, (x, y), seed=1, batch_size=32, learning_rate=0.05, patience=5, progress=False
    )
    assert h.stopped_early
    assert h.val_loss[h.best_epoch] == min(h.val_loss)
    assert len(h.val_loss) - 1 - h.best_epoch == 5
    # the noise variance is 0.25, so a fitted line has a residual mean square near it
    assert abs(float(mse(fitted, (x, y), None)) - 0.25) < 0.05
    assert abs(float(fitted.weight[0, 0]) - 3.0) < 0.2


def test_learning_rate_decays_restart_from_the_best_weights():
    x, y = _problem()
    model = eqx.nn.Linear(1, 1, key=jax.random.key(0))
    _, plain = fit(
        model, mse, (x, y), seed=1, batch_size=32, learning_rate=0.2, patience=4, progress=False
    )
    _, decayed = fit(
        model,
        mse,
        (x, y),
        seed=1,
        batch_size=32,
        learning_rate=0.2,
        patience=4,
        lr_decays=2,
        progress=False,
    )
    # identical until the first plateau, then decays train on and never end worse
    n = len(plain.val_loss)
    assert decayed.val_loss[:n] == plain.val_loss[:n]
    assert len(decayed.val_loss) > n
    assert min(decayed.val_loss) <= min(plain.val_loss)


class _LineAndExtra(eqx.Module):
    """A line fitted to the data, and extra weights that only a loss term of a test may use."""

    line: eqx.nn.Linear
    extra: jax.Array

    def __call__(self, x):
        return self.line(x)


def test_weight_decay_shrinks_each_weight_by_lr_times_decay_per_step():
    """AdamW (decoupled decay): a weight the loss ignores has a zero Adam step, so after s
    optimizer steps it is exactly w0 (1 - lr wd)^s; the used weights still fit the data."""
    x, y = _problem()
    model = _LineAndExtra(eqx.nn.Linear(1, 1, key=jax.random.key(0)), jnp.full(3, 2.0))
    lr, wd, epochs, batch = 0.05, 0.1, 7, 32
    fitted, h = fit(
        model, mse, (x, y), seed=1, batch_size=batch, learning_rate=lr, max_epochs=epochs,
        patience=100, weight_decay=wd, progress=False,
    )  # fmt: skip
    assert len(h.val_loss) == epochs and h.best_epoch == epochs - 1
    steps = epochs * ((len(x) - round(0.1 * len(x))) // batch)
    np.testing.assert_allclose(fitted.extra, 2.0 * (1 - lr * wd) ** steps, rtol=1e-4)
    plain, _ = fit(
        model, mse, (x, y), seed=1, batch_size=batch, learning_rate=lr, max_epochs=epochs,
        patience=100, progress=False,
    )  # fmt: skip
    np.testing.assert_array_equal(plain.extra, model.extra)
    with pytest.raises(ValueError, match="weight_decay"):
        fit(model, mse, (x, y), weight_decay=-1.0, progress=False)


def test_ema_returns_the_moving_average_of_the_weights():
    """A weight whose loss term is -w has a constant gradient, so unclipped Adam moves it by
    exactly the learning rate per step: w_k = w_0 + k lr. The loop must then return the
    debiased average a_s = Σ_k d^(s-k) w_k / Σ_k d^(s-k) after s steps (the validation loss
    keeps falling with a, so the last epoch is the best)."""
    x, y = _problem()
    model = _LineAndExtra(eqx.nn.Linear(1, 1, key=jax.random.key(0)), jnp.full(2, 0.5))

    def loss(m, batch, key):
        return mse(m.line, batch, key) - jnp.sum(m.extra)

    lr, d, epochs, batch = 0.01, 0.9, 3, 32
    opts = dict(seed=1, batch_size=batch, learning_rate=lr, max_epochs=epochs, patience=100,
                clip_norm=None, progress=False)  # fmt: skip
    fitted, h = fit(model, loss, (x, y), ema=d, **opts)
    assert h.best_epoch == epochs - 1
    s = epochs * ((len(x) - round(0.1 * len(x))) // batch)
    k = np.arange(1, s + 1)
    w = 0.5 + k * lr
    expected = np.sum(d ** (s - k) * w) / np.sum(d ** (s - k.astype(float)))
    np.testing.assert_allclose(fitted.extra, expected, rtol=1e-5)
    raw, _ = fit(model, loss, (x, y), **opts)  # without averaging: the last weights
    np.testing.assert_allclose(raw.extra, w[-1], rtol=1e-5)


@pytest.mark.parametrize("lr_decays", [0, 2])
def test_with_ema_the_returned_weights_are_those_validated_best(lr_decays):
    """Validation scores the average, and the loop returns the average of the best epoch (also
    across learning-rate decays, which restart from it): its loss on the held-out rows is the
    best validation loss recorded."""
    x, y = _problem()
    held_out = np.zeros(len(x), bool)
    held_out[::5] = True
    model = eqx.nn.MLP(1, 1, 16, 2, key=jax.random.key(0))
    fitted, h = fit(
        model, mse, (x, y), seed=2, batch_size=32, learning_rate=0.05, patience=3,
        lr_decays=lr_decays, ema=0.9, validation=held_out, progress=False,
    )  # fmt: skip
    assert h.stopped_early
    best = float(mse(fitted, (x[held_out], y[held_out]), None))
    np.testing.assert_allclose(best, min(h.val_loss), rtol=1e-6)


def test_a_resumed_training_with_ema_equals_an_uninterrupted_one(tmp_path):
    x, y = _problem()
    model = eqx.nn.MLP(1, 1, 16, 2, key=jax.random.key(0))
    opts = dict(seed=3, batch_size=32, learning_rate=0.01, patience=100, ema=0.95, progress=False)
    straight, h = fit(model, mse, (x, y), max_epochs=6, **opts)
    ck = tmp_path / "ck.npz"
    fit(model, mse, (x, y), max_epochs=2, checkpoint=ck, checkpoint_seconds=0, **opts)
    resumed, h2 = fit(model, mse, (x, y), max_epochs=6, checkpoint=ck, **opts)
    assert h2.val_loss == h.val_loss
    for a, b in zip(jax.tree_util.tree_leaves(straight), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="checkpoint"):  # another average is another run
        fit(model, mse, (x, y), max_epochs=6, checkpoint=ck, **{**opts, "ema": 0.9})


def test_bad_data_is_named():
    x, y = _problem(20)
    model = eqx.nn.Linear(1, 1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="first axis"):
        fit(model, mse, (x, y[:10]), progress=False)
    with pytest.raises(ValueError, match="validation_fraction"):
        fit(model, mse, (x, y), validation_fraction=1.5, progress=False)
    bad = [("batch_size", 0), ("batch_size", -4), ("max_epochs", 2.5), ("patience", -1),
           ("lr_decays", True), ("learning_rate", 0.0), ("lr_factor", 1.0)]  # fmt: skip
    for name, value in bad:
        with pytest.raises(ValueError, match=name):
            fit(model, mse, (x, y), progress=False, **{name: value})


def test_a_validation_mask_holds_out_exactly_its_rows():
    x, y = _problem(100)
    mask = np.zeros(100, bool)
    mask[:7] = True
    y_marked = y.copy()
    y_marked[mask] = 1000.0  # only the held-out rows are far off: their loss is ~10^6
    model = eqx.nn.Linear(1, 1, key=jax.random.key(0))
    _, h = fit(model, mse, (x, y_marked), validation=mask, max_epochs=3, progress=False)
    assert min(h.val_loss) > 9e5 and max(h.train_loss) < 1e3
    _, h = fit(model, mse, (x, y_marked), validation=~mask, max_epochs=3, progress=False)
    assert max(h.train_loss) > 9e5  # the marked rows are now trained on
    for bad in (mask[:50], mask.astype(int), np.zeros(100, bool), np.ones(100, bool)):
        with pytest.raises(ValueError, match="validation|training rows"):
            fit(model, mse, (x, y), validation=bad, progress=False)


def test_patience_steps_sets_a_minimum_patience_in_optimizer_steps():
    """A loss that never improves stops after exactly the patience: 3 epochs by default, and
    ceil(40 / 4) = 10 epochs when each epoch is 4 steps and patience_steps=40."""

    class Flat(eqx.Module):
        w: jax.Array

        def __call__(self, x):
            return 0.0 * self.w * x

    def loss(model, batch, key):
        return jnp.mean(model(batch[0]) ** 2) + 1.0

    data = (jnp.ones((44, 1)),)  # 40 training rows, batch 10: 4 steps per epoch
    opts = dict(seed=0, batch_size=10, patience=3, lr_decays=0, progress=False)
    _, plain = fit(Flat(jnp.ones(1)), loss, data, **opts)
    _, longer = fit(Flat(jnp.ones(1)), loss, data, patience_steps=40, **opts)
    assert len(plain.val_loss) == 3 and len(longer.val_loss) == 10


def test_a_resumed_training_equals_an_uninterrupted_one(tmp_path):
    x, y = _problem()
    model = eqx.nn.MLP(1, 1, 16, 2, key=jax.random.key(0))
    opts = dict(seed=3, batch_size=32, learning_rate=0.01, patience=100, progress=False)
    straight, h = fit(model, mse, (x, y), max_epochs=8, **opts)
    ck = tmp_path / "ck.npz"
    _, h1 = fit(model, mse, (x, y), max_epochs=3, checkpoint=ck, checkpoint_seconds=0, **opts)
    assert len(h1.val_loss) == 3 and ck.is_file()
    resumed, h2 = fit(model, mse, (x, y), max_epochs=8, checkpoint=ck, **opts)
    assert h2.val_loss == h.val_loss and h2.best_epoch == h.best_epoch
    for a, b in zip(jax.tree_util.tree_leaves(straight), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # a checkpoint of another run (other seed) is refused, not silently mixed in
    with pytest.raises(ValueError, match="checkpoint"):
        fit(model, mse, (x, y), max_epochs=8, checkpoint=ck, **{**opts, "seed": 4})
    # nor is one made with other training options (it would go on at the old learning rate)
    with pytest.raises(ValueError, match="checkpoint"):
        fit(model, mse, (x, y), max_epochs=8, checkpoint=ck, **{**opts, "learning_rate": 0.1})
    # or on other rows beyond the first thousand (the data is hashed whole)
    x2, y2 = np.concatenate([x, x, x]), np.concatenate([y, y, y])
    ck2 = tmp_path / "ck2.npz"
    fit(model, mse, (x2, y2), max_epochs=1, checkpoint=ck2, **opts)
    y2[-1] += 1.0
    with pytest.raises(ValueError, match="checkpoint"):
        fit(model, mse, (x2, y2), max_epochs=2, checkpoint=ck2, **opts)
    with np.load(ck, allow_pickle=False) as f:  # plain arrays and JSON bytes: no pickle
        assert "meta" in f.files


def _closure_loss(weight):
    def loss(model, batch, key):
        return weight * mse(model, batch, key)

    return loss


class _ScaledLoss(eqx.Module):
    weight: float = eqx.field(static=True)  # a static setting, like BalancedNPELoss's balance

    def __call__(self, model, batch, key):
        return self.weight * mse(model, batch, key)


@pytest.mark.parametrize("make_loss", [_closure_loss, _ScaledLoss])
def test_a_checkpoint_is_refused_by_a_loss_of_the_same_factory_with_other_settings(
    tmp_path, make_loss
):
    # losses built by one factory (gold_loss(method, alpha), scandal_loss(alpha)) share a name:
    # the values they close over, or a loss module's fields (static ones too), are part of the
    # fingerprint
    x, y = _problem()
    model = eqx.nn.MLP(1, 1, 8, 1, key=jax.random.key(0))
    opts = dict(seed=0, batch_size=32, max_epochs=2, progress=False)
    ck = tmp_path / "ck.npz"
    fit(model, make_loss(1.0), (x, y), checkpoint=ck, **opts)
    fit(model, make_loss(1.0), (x, y), checkpoint=ck, **opts)  # the same settings resume
    with pytest.raises(ValueError, match="checkpoint"):
        fit(model, make_loss(2.0), (x, y), checkpoint=ck, **opts)


def test_a_checkpoint_is_refused_for_other_incoming_weights(tmp_path):
    # a warm start from other weights (same architecture, data and seed) is another run
    x, y = _problem()
    opts = dict(seed=0, batch_size=32, max_epochs=2, progress=False)
    ck = tmp_path / "ck.npz"
    fit(eqx.nn.MLP(1, 1, 8, 1, key=jax.random.key(0)), mse, (x, y), checkpoint=ck, **opts)
    with pytest.raises(ValueError, match="checkpoint"):
        fit(eqx.nn.MLP(1, 1, 8, 1, key=jax.random.key(1)), mse, (x, y), checkpoint=ck, **opts)


def test_a_checkpoint_with_key_arrays_in_the_data_resumes(tmp_path):
    x, y = _problem(n=256)
    keys = jax.random.split(jax.random.key(3), 256)
    model = eqx.nn.Linear(1, 1, key=jax.random.key(0))

    def noisy(m, batch, key):
        x, y, k = batch
        return mse(m, (x, y + 0.01 * jax.vmap(lambda kk: jax.random.normal(kk, (1,)))(k)), key)

    opts = dict(seed=0, batch_size=32, progress=False, checkpoint=tmp_path / "ck.npz")
    whole, h_whole = fit(model, noisy, (x, y, keys), max_epochs=4, **{**opts, "checkpoint": None})
    fit(model, noisy, (x, y, keys), max_epochs=2, **opts)
    resumed, h = fit(model, noisy, (x, y, keys), max_epochs=4, **opts)
    assert h.val_loss == h_whole.val_loss


@pytest.mark.parametrize(
    "options, name",
    [
        ({"patience": 0}, "patience"),
        ({"clip_norm": -5.0}, "clip_norm"),
        ({"clip_norm": 0}, "clip_norm"),
        ({"weight_decay": True}, "weight_decay"),
        ({"ema": 1.0}, "ema"),
        ({"ema": -0.1}, "ema"),
        ({"ema": True}, "ema"),
    ],
)
def test_options_that_would_train_wrongly_are_refused(options, name):
    x, y = _problem(n=64)
    model = eqx.nn.Linear(1, 1, key=jax.random.key(0))
    with pytest.raises(ValueError, match=name):
        fit(model, mse, (x, y), seed=0, max_epochs=2, progress=False, **options)


def test_a_numpy_scalar_weight_decay_is_accepted():
    x, y = _problem(n=64)
    model = eqx.nn.Linear(1, 1, key=jax.random.key(0))
    fit(model, mse, (x, y), seed=0, max_epochs=1, progress=False, weight_decay=np.float32(1e-4))


def test_infer_with_a_store_resumes_the_campaign_and_trains(tmp_path):
    import lfi

    prior = lfi.BoxUniform([0.0, 0.0], [1.0, 1.0])

    def sim(theta, rng):
        return theta + 0.1 * rng.standard_normal(theta.shape)

    store = tmp_path / "store"
    post = lfi.infer(sim, prior, "npe", 600, seed=0, store=store, max_epochs=2, progress=False)
    records = {p.name: p.read_text() for p in store.glob("chunks/*.json")}
    assert post.sample(3, x=[0.5, 0.5]).shape == (3, 2)
    again = lfi.infer(None, None, "npe", seed=0, store=store, max_epochs=2, progress=False)
    assert {p.name: p.read_text() for p in store.glob("chunks/*.json")} == records
    assert again.history.val_loss == post.history.val_loss  # same rows, same seed, same fit


def test_cli_train_resumes_from_its_checkpoint(tmp_path, capsys):
    import lfi
    from lfi.cli import main

    prior = lfi.BoxUniform([0.0], [1.0])

    def sim(theta, rng):
        return theta + 0.1 * rng.standard_normal(theta.shape)

    lfi.run_campaign(sim, prior, 400, tmp_path / "s", chunk_size=100, progress=False)
    args = ["train", "--store", str(tmp_path / "s"), "--out", str(tmp_path / "o"), "--quiet"]
    assert main([*args, "--option", "max_epochs=2"]) == 0
    assert main([*args, "--option", "max_epochs=4"]) == 0
    out = capsys.readouterr().out
    assert "2 epochs" in out and "4 epochs" in out
    loaded = lfi.load(tmp_path / "o" / "posterior.lfi")
    assert len(loaded.history.val_loss) == 4  # the history survives save and load
    assert (tmp_path / "o" / "checkpoint.npz").is_file()


def test_a_loss_of_another_float_dtype_and_key_arrays_in_the_data_train():
    # the first epoch's baseline validation loss is computed under lax.cond: its branches must
    # agree whatever dtype the loss returns; and arrays of JAX keys (which numpy cannot hold)
    # are split into training and validation rows like any other array
    x, y = _problem(n=256)
    keys = jax.random.split(jax.random.key(3), 256)
    model = eqx.nn.Linear(1, 1, key=jax.random.key(0))

    def noisy_bf16(m, batch, key):
        x, y, k = batch
        noise = 0.01 * jax.vmap(lambda kk: jax.random.normal(kk, (1,)))(k)
        return mse(m, (x, y + noise), key).astype(jnp.bfloat16)

    fitted, h = fit(model, noisy_bf16, (x, y, keys), seed=0, max_epochs=3, progress=False)
    assert len(h.val_loss) == 3 and all(np.isfinite(h.val_loss))


_COMPILING: list = []
jax.monitoring.register_event_duration_secs_listener(
    lambda name, secs, **kw: _COMPILING and _COMPILING[-1].append(name)
)


def test_epochs_after_the_first_compile_nothing_even_across_decays():
    # a weak-typed weight, a leaf whose type changed after the first epoch, or a learning-rate
    # decay that rebuilt the optimizer state differently would each compile the whole epoch
    # again (seconds for a flow); a second run of the same shapes must compile nothing at all
    x, y = _problem()
    model = eqx.nn.Linear(1, 1, key=jax.random.key(0))
    model = eqx.tree_at(lambda m: m.bias, model, jnp.full((1,), 0.0))  # weak-typed
    options = dict(seed=1, batch_size=32, learning_rate=0.2, patience=3, progress=False)
    fit(model, mse, (x, y), max_epochs=2, lr_decays=1, **options)  # compiles what it needs
    _COMPILING.append([])
    try:
        _, h = fit(model, mse, (x, y), max_epochs=200, lr_decays=2, **options)
    finally:
        events = _COMPILING.pop()
    assert h.stopped_early  # so both decays happened (it stops only when none is left)
    assert "/jax/core/compile/backend_compile_duration" not in events, events
