"""How far a sequential (or, with ``--rounds 1``, amortised) posterior is from gaussian_linear's
analytic one, without C2ST's slow 10-d classifiers: minutes per setting instead of ~15 per
observation. The posterior is trained as ``benchmarks/methods_c2st.py`` trains it (the same
seeds per observation), then three numbers are printed per observation:

- ``tv``: total variation between the learned (unnormalised) density and the analytic
  posterior N(x_o/2, 0.05·I), from 20 000 exact draws: TV = ½ E_p|q/p − 1|, q normalised by the
  mean weight. No classifier can exceed accuracy 0.5 + TV/2 (``c2st_bound``);
- ``qda``: 5-fold cross-validated accuracy of a quadratic discriminant between 10 000 posterior
  draws (the method's sampler) and 10 000 exact ones: a C2ST whose classifier is the optimal one
  for two Gaussians, so it sees mean and covariance errors sharper than sbibm's MLP does;
- ``mean_err_sd`` and ``kl_gauss``: the draws' mean error in posterior standard deviations
  (norm over the 10 dimensions) and KL of their Gaussian fit from the exact posterior.

    python benchmarks/gl_probe.py --method snre --observations 4 1 \\
        --options '{"activation": "silu"}'

Appends one JSON line per observation to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import jax
import numpy as np
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
from sklearn.model_selection import cross_val_score

from lfi._rng import as_key
from lfi.methods.sequential import sequential
from lfi.tasks import get

VAR = 0.05  # the posterior variance per dimension: prior 0.1, noise 0.1


def probe(method: str, k: int, rounds: int, simulations: int, options: dict) -> dict:
    task = get("gaussian_linear")
    key_sim, _, _ = jax.random.split(as_key(0), 3)  # as lfi.bench seeds observation k
    x_o = np.asarray(task.observation(k), np.float64).ravel()
    t0 = time.perf_counter()
    post = sequential(task.simulator, task.prior, method, x_o, num_rounds=rounds,
                      num_simulations=simulations, seed=jax.random.fold_in(key_sim, k),
                      progress=False, **options)  # fmt: skip
    seconds = time.perf_counter() - t0
    mean, sd, dim = x_o / 2, math.sqrt(VAR), x_o.size
    rng = np.random.default_rng(k)
    exact = mean + sd * rng.standard_normal((20_000, dim))
    log_p = (-0.5 * ((exact - mean) / sd) ** 2).sum(1) - dim * math.log(sd * math.sqrt(2 * math.pi))
    log_q = np.asarray(post.log_prob(exact.astype(np.float32), x_o.astype(np.float32)), float)
    w = np.exp(log_q - log_p - np.max(log_q - log_p))
    w /= w.mean()
    tv = 0.5 * float(np.mean(np.abs(w - 1)))
    draws = np.asarray(post.sample(10_000, x_o.astype(np.float32), seed=k), float)
    ref = mean + sd * np.random.default_rng(100 + k).standard_normal((10_000, dim))
    both, label = np.concatenate([draws, ref]), np.r_[np.zeros(10_000), np.ones(10_000)]
    qda = cross_val_score(QuadraticDiscriminantAnalysis(), both, label, cv=5).mean()
    err = float(np.linalg.norm((draws.mean(0) - mean) / sd))
    cov = np.cov(draws.T) / VAR
    kl = 0.5 * (np.trace(cov) - dim - np.linalg.slogdet(cov)[1]) + 0.5 * err**2
    return {
        "method": method, "rounds": rounds, "options": options, "observation": k,
        "tv": tv, "c2st_bound": 0.5 + tv / 2, "qda": float(qda), "mean_err_sd": err,
        "kl_gauss": float(kl), "train_s": seconds,
        "epochs": [r["epochs"] for r in post.rounds],
    }  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="snre", choices=["snpe", "snle", "snre"])
    p.add_argument("--observations", nargs="+", type=int, default=[4, 1])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--simulations", type=int, default=10_000)
    p.add_argument("--options", default="{}", help="method options as a JSON dict")
    p.add_argument("--out", default="benchmarks/results/gl_probe.jsonl")
    args = p.parse_args(argv)
    for k in args.observations:
        r = probe(args.method, k, args.rounds, args.simulations, json.loads(args.options))
        print(json.dumps(r), flush=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
