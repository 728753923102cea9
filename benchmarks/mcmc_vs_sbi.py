"""Posterior sampling speed of NLE and NRE: lfi's MCMC vs sbi 0.27's default, side by side.

    python benchmarks/mcmc_vs_sbi.py --out benchmarks/results/mcmc_vs_sbi

Same 10 000 two_moons simulations (lfi, seed 0) for both libraries; each trains its own NLE and
NRE with its defaults, then draws 10 000 posterior samples at observation 1 with its default
sampler: sbi's vectorised slice sampler (20 chains, 200 warmup steps), lfi's default (since
2026-11-26 independence Metropolis-Hastings from a fitted Student-t mixture, lfi.proposals;
before, NUTS with 20 chains and 200 warmup steps). lfi is timed twice in one process: the
first call (compilation included, with an empty JAX cache) and a second call with another seed
(compiled). Also reports lfi's R-hat/ESS and both libraries' C2ST against the reference.
Run on an otherwise idle machine (timings are ratios from one run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/mcmc_vs_sbi")
    p.add_argument("--sbi-python", default=str(ROOT / ".venv-sbi/bin/python"))
    p.add_argument("--observation", type=int, default=1)
    p.add_argument("--num-samples", type=int, default=10_000)
    args = p.parse_args(argv)
    os.environ.setdefault("LFI_CACHE_DIR", tempfile.mkdtemp(prefix="lfi-jaxcache-"))
    import lfi
    from lfi.diagnostics import c2st

    task = lfi.tasks.get("two_moons")
    work = Path(tempfile.mkdtemp(prefix="lfi-mcmc-"))
    theta, x = lfi.simulate(task.simulator, task.prior, 10_000, seed=0, progress=False)
    x_o = task.observation(args.observation)
    for name, arr in (("theta", theta), ("x", x), ("x_o", x_o)):
        np.save(work / f"{name}.npy", arr)
    cfg = task.prior.to_config()
    low, high = (list(map(str, np.atleast_1d(cfg[k]))) for k in ("low", "high"))
    cmd = [args.sbi_python, str(ROOT / "benchmarks/sbi_mcmc.py"),
           "--theta", str(work / "theta.npy"), "--x", str(work / "x.npy"),
           "--x-o", str(work / "x_o.npy"), "--prior-low", *low, "--prior-high", *high,
           "--num-samples", str(args.num_samples), "--out", str(work / "sbi")]  # fmt: skip
    subprocess.run(cmd, check=True)
    sbi = json.loads((work / "sbi/result.json").read_text())
    reference = task.reference_posterior(args.observation, args.num_samples, seed=args.observation)
    rows = []
    for name, estimator in (("nle", lfi.NLE(task.prior, progress=False)),
                            ("nre", lfi.NRE(task.prior, progress=False))):  # fmt: skip
        t0 = time.perf_counter()
        post = estimator.fit(theta, x, seed=0)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        post.sample(args.num_samples, x=x_o, seed=1)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        samples = np.asarray(post.sample(args.num_samples, x=x_o, seed=2))
        t_warm = time.perf_counter() - t0
        d = post.diagnostics
        sbi_samples = np.load(work / f"sbi/{name}_samples.npy")
        rows.append(dict(
            method=name, sbi_sample_seconds=sbi[name]["sample_seconds"],
            sbi_train_seconds=sbi[name]["train_seconds"], lfi_train_seconds=t_train,
            lfi_first_seconds=t_first, lfi_warm_seconds=t_warm,
            speedup_first=sbi[name]["sample_seconds"] / t_first,
            speedup_warm=sbi[name]["sample_seconds"] / t_warm,
            sampler=d.kernel, rhat_max=float(np.max(d.rhat)), ess_min=float(np.min(d.ess)),
            divergences=int(d.divergences), c2st_lfi=float(c2st(reference, samples)),
            c2st_sbi=float(c2st(reference, sbi_samples)),
        ))  # fmt: skip
        print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "runs.json").write_text(json.dumps({"sbi": sbi, "rows": rows}, indent=1))
    lines = [
        f"# Posterior sampling: {args.num_samples} draws at two_moons observation "
        f"{args.observation}, lfi vs sbi {sbi['sbi']}",
        "",
        f"Command: `python {' '.join(sys.argv)}` (2-core CPU, one run; torch threads "
        f"{sbi['threads']}).",
        "",
        "| method | sbi slice s | lfi sampler | lfi s (first call, compiling) | lfi s (compiled) "
        "| speed-up first / compiled | lfi max R-hat | lfi min ESS | C2ST lfi | C2ST sbi |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['sbi_sample_seconds']:.2f} | {r['sampler']} "
            f"| {r['lfi_first_seconds']:.2f} "
            f"| {r['lfi_warm_seconds']:.2f} | {r['speedup_first']:.1f}× / "
            f"{r['speedup_warm']:.1f}× | {r['rhat_max']:.4f} | {r['ess_min']:.0f} "
            f"| {r['c2st_lfi']:.3f} | {r['c2st_sbi']:.3f} |"
        )
    (args.out / "README.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
