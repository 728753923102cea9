"""Train sbi's FMPE or NPSE for a fixed number of epochs and report the time per epoch.

Run with the python of the separate sbi environment (benchmarks/README.md), never with lfi's:

    .venv-sbi/bin/python benchmarks/sbi_vector_field.py --method fmpe --theta theta.npy \\
        --x x.npy --prior-json '{"type": "BoxUniform", ...}' --epochs 30 --out result.json

sbi 0.27's defaults: ``FMPE(prior)`` / ``NPSE(prior)`` (vector-field MLP, NPSE with the "ve"
SDE), ``train(training_batch_size=200, learning_rate=5e-4, validation_fraction=0.1)``, here with
``max_num_epochs`` so that only the epoch time is measured. TensorBoard logging is replaced by
the no-op tracker of ``sbi_npe.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from sbi_npe import NullTracker, build_prior  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", choices=["fmpe", "npse"], required=True)
    p.add_argument("--theta", type=Path, required=True)
    p.add_argument("--x", type=Path, required=True)
    p.add_argument("--prior-json", required=True)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    from sbi.inference import FMPE, NPSE

    torch.manual_seed(args.seed)
    theta = torch.as_tensor(np.load(args.theta), dtype=torch.float32)
    x = torch.as_tensor(np.load(args.x), dtype=torch.float32)
    spec = argparse.Namespace(
        prior_json=args.prior_json, prior_normal=None, prior_low=None, prior_high=None
    )
    prior, _ = build_prior(spec, theta.shape[1])
    cls = FMPE if args.method == "fmpe" else NPSE
    inference = cls(prior, show_progress_bars=False, tracker=NullTracker())
    inference.append_simulations(theta, x)
    start = time.perf_counter()
    estimator = inference.train(
        training_batch_size=args.batch_size, max_num_epochs=args.epochs, stop_after_epochs=10**6
    )
    seconds = time.perf_counter() - start
    durations = [float(d) for d in inference.summary["epoch_durations_sec"]]
    result = {
        "library": "sbi",
        "method": args.method,
        "epochs": len(durations),
        "seconds_per_epoch": float(np.median(durations[1:])),
        "first_epoch_seconds": durations[0],
        "train_seconds": seconds,
        "num_parameters": int(sum(q.numel() for q in estimator.parameters())),
        "torch_threads": torch.get_num_threads(),
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
