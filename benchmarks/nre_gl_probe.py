"""How well an NRE classifier fits gaussian_linear's log ratio (10^4 simulations, seed 0),
without C2ST: the spread (standard deviation) over 2000 reference-posterior draws of the learned
log ratio minus the exact log likelihood, at observations 1, 4 and 8 (0 is exact; a function of
x alone, as NRE-B's logit may carry, does not count).

    python benchmarks/nre_gl_probe.py '{}' '{"variant": "c"}' '{"width": 100}'

Each argument is a JSON dict of lfi.NRE options; one line is printed per setting.
"""

from __future__ import annotations

import json
import sys
import time

import jax
import numpy as np

import lfi
from lfi._rng import as_key


def probe(options: dict, observations=(1, 4, 8)) -> str:
    task = lfi.tasks.get("gaussian_linear")
    key_sim, key_fit, _ = jax.random.split(as_key(0), 3)
    theta, x = lfi.simulate(task.simulator, task.prior, 10_000, seed=key_sim, progress=False)
    t0 = time.perf_counter()
    estimator = lfi.NRE(task.prior, progress=False, **options)
    posterior = estimator.fit(theta, x, seed=key_fit)
    seconds = time.perf_counter() - t0
    spread = []
    for k in observations:
        x_o = task.observation(k)
        ref = task.reference_posterior(k, 2000, seed=k)
        exact = np.asarray(task.log_likelihood(ref, np.broadcast_to(x_o, (len(ref), x_o.size))))
        learned = np.asarray(posterior.log_prob(ref, x=x_o)) - np.asarray(task.prior.log_prob(ref))
        spread.append(float(np.std(learned - exact)))
    h = estimator.history
    return (
        f"{json.dumps(options)}: best val {min(h.val_loss):.4f} at epoch {h.best_epoch} of "
        f"{len(h.val_loss)}; spread {' / '.join(f'{s:.2f}' for s in spread)}; {seconds:.0f} s"
    )


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["{}"]:
        print(probe(json.loads(arg)), flush=True)
