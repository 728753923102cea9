"""Train sbi's NLE and NRE on given two_moons-like simulations and time its default MCMC.

Run with the python of the separate sbi environment (benchmarks/README.md), never lfi's:

    .venv-sbi/bin/python benchmarks/sbi_mcmc.py --theta theta.npy --x x.npy --x-o x_o.npy \\
        --prior-low -1 --prior-high 1 --out DIR

For each of NLE (sbi ``NLE``, its default density estimator, a MAF) and NRE (sbi ``NRE`` =
NRE-B, its default resnet classifier) with sbi's default training settings, draws ``--num-samples``
posterior samples at the first observation with sbi's default sampler (``slice_np_vectorized``:
20 chains, 200 warmup steps, init "resample") and writes the timings and the samples
(``<method>_samples.npy``) plus ``result.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--theta", type=Path, required=True)
    p.add_argument("--x", type=Path, required=True)
    p.add_argument("--x-o", type=Path, required=True)
    p.add_argument("--prior-low", type=float, nargs="+", required=True)
    p.add_argument("--prior-high", type=float, nargs="+", required=True)
    p.add_argument("--num-samples", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", nargs="+", default=["nle", "nre"])
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    import sbi
    from sbi.inference import NLE, NRE
    from sbi.utils import BoxUniform

    torch.manual_seed(args.seed)
    theta = torch.from_numpy(np.load(args.theta).astype(np.float32))
    x = torch.from_numpy(np.load(args.x).astype(np.float32))
    x_o = torch.from_numpy(np.load(args.x_o).astype(np.float32)).reshape(1, -1)
    dim = theta.shape[1]
    low = torch.tensor(np.broadcast_to(args.prior_low, dim).copy(), dtype=torch.float32)
    high = torch.tensor(np.broadcast_to(args.prior_high, dim).copy(), dtype=torch.float32)
    prior = BoxUniform(low, high)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "sbi": sbi.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    for name in args.methods:
        cls = NLE if name == "nle" else NRE
        inference = cls(prior=prior, show_progress_bars=False)
        t0 = time.perf_counter()
        inference.append_simulations(theta, x).train()
        t_train = time.perf_counter() - t0
        posterior = inference.build_posterior()  # default: MCMC, slice_np_vectorized
        t0 = time.perf_counter()
        samples = posterior.sample((args.num_samples,), x=x_o, show_progress_bars=False)
        t_sample = time.perf_counter() - t0
        np.save(args.out / f"{name}_samples.npy", samples.numpy().astype(np.float32))
        result[name] = {"train_seconds": t_train, "sample_seconds": t_sample}
        print(name, result[name], flush=True)
    (args.out / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
