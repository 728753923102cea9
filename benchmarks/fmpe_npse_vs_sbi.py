"""Time per training epoch of lfi's FMPE and NPSE against sbi 0.27's, on the same simulations.

Needs the sbi environment of benchmarks/README.md (`.venv-sbi`). Run by hand on an otherwise idle
machine:

    python benchmarks/fmpe_npse_vs_sbi.py --out benchmarks/results/fmpe_npse_vs_sbi

Both libraries train on the same 10 000 two_moons simulations (lfi, seed 0) with batches of 200
for a fixed number of epochs (no early stopping: only the time per epoch is compared; the first
epoch, which compiles or warms up, is left out, and the median of the rest is reported). sbi
runs its defaults (vector-field MLP of 5 × 100 with layer norm, GELU; NPSE with the "ve" SDE),
lfi its defaults (a context-gated residual net of 3 blocks, 96 wide for FMPE and 128 for NPSE;
NPSE with the "vp" SDE), and lfi again with the other of the two widths (96: fewer parameters
than sbi's net; 128: more).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

import lfi
from lfi.nets.vector_field import vector_field_config

ROOT = Path(__file__).resolve().parents[1]


def lfi_run(method: str, theta, x, prior, epochs: int, **net) -> dict:
    cls = lfi.FMPE if method == "fmpe" else lfi.NPSE
    est = cls(prior, progress=False, max_epochs=epochs, patience=10**6, **net)
    post = est.fit(theta, x, seed=0)
    leaves = jax.tree_util.tree_leaves(eqx.filter(post._net, eqx.is_inexact_array))
    h = est.history
    return {
        "library": "lfi",
        "method": method,
        "options": net,
        "width": vector_field_config(1, 1, **est.net_options)["width"],
        "epochs": len(h.epoch_seconds),
        "seconds_per_epoch": float(np.median(h.epoch_seconds[1:])),
        "first_epoch_seconds": h.epoch_seconds[0],
        "num_parameters": int(sum(a.size for a in leaves)),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--sbi-python", default=str(ROOT / ".venv-sbi/bin/python"))
    p.add_argument("--out", default="benchmarks/results/fmpe_npse_vs_sbi")
    args = p.parse_args(argv)
    task = lfi.tasks.get("two_moons")
    theta, x = lfi.simulate(task.simulator, task.prior, 10_000, seed=0, progress=False)
    work = Path(tempfile.mkdtemp(prefix="lfi-vf-"))
    np.save(work / "theta.npy", np.asarray(theta))
    np.save(work / "x.npy", np.asarray(x))
    rows = []
    for method in ("fmpe", "npse"):
        cmd = [args.sbi_python, str(ROOT / "benchmarks/sbi_vector_field.py"), "--method", method]
        cmd += ["--theta", str(work / "theta.npy"), "--x", str(work / "x.npy")]
        cmd += ["--prior-json", json.dumps(task.prior.to_config()), "--epochs", str(args.epochs)]
        cmd += ["--out", str(work / f"sbi_{method}.json")]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        sbi = json.loads((work / f"sbi_{method}.json").read_text())
        rows.append(sbi)
        default = lfi_run(method, theta, x, task.prior, args.epochs)
        other = {"width": 128 if default["width"] <= 96 else 96}  # the other size measured
        for net in ({}, other):
            row = default if not net else lfi_run(method, theta, x, task.prior, args.epochs, **net)
            row["speedup"] = sbi["seconds_per_epoch"] / row["seconds_per_epoch"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs.json").write_text(json.dumps(rows, indent=1))
    lines = [
        "# FMPE and NPSE: time per training epoch, lfi vs sbi 0.27, 10 000 two_moons simulations",
        "",
        f"Command: `{' '.join(['python', *sys.argv])}` (2-core CPU)",
        "",
        f"Batch 200, {args.epochs} epochs each, median seconds per epoch after the first.",
        "",
        "| method | library | network | parameters | s/epoch | speed-up vs sbi |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["library"] == "sbi":
            net, speed = "MLP 5 × 100 (default)", "1.0×"
        else:
            net = f"residual 3 × {r['width']}" + ("" if r["options"] else " (default)")
            speed = f"{r['speedup']:.1f}×"
        lines.append(
            f"| {r['method']} | {r['library']} | {net} | {r['num_parameters']} | "
            f"{r['seconds_per_epoch']:.3f} | {speed} |"
        )
    (out / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
