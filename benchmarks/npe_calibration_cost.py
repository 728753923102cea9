"""Seconds per training epoch of NPE with and without the calibration penalty, side by side.

Each estimator trains ``--epochs`` epochs on the same 10 000 simulations of a task (seed 0) on
one device; the median epoch after the first (which compiles) is reported. The ratio is what the
penalty's ``calibration_draws`` reparametrised draws per row cost.

    python benchmarks/npe_calibration_cost.py --tasks two_moons slcp
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("LFI_CPU_CORES", "1")  # the penalty is not split over devices

import lfi  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["two_moons", "slcp"])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--calibration", type=float, default=100.0)
    args = p.parse_args(argv)
    for name in args.tasks:
        task = lfi.tasks.get(name)
        theta, x = lfi.simulate(task.simulator, task.prior, 10_000, seed=0, progress=False)
        row = {"task": name}
        for label, opts in (("npe", {}), ("calnpe", {"calibration": args.calibration})):
            est = lfi.NPE(
                task.prior, progress=False, max_epochs=args.epochs, patience=10**6, **opts
            )
            est.fit(theta, x, seed=0)
            row[label] = est.history.seconds_per_epoch  # median after the first epoch
        row["ratio"] = row["calnpe"] / row["npe"]
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
