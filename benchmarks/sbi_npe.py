"""Train sbi's NPE (neural spline flow) on given simulations, as a reference for lfi.

Run with the python of the separate sbi environment (see benchmarks/README.md), never with
lfi's: sbi and torch are not dependencies of lfi.

    .venv-sbi/bin/python benchmarks/sbi_npe.py --theta theta.npy --x x.npy \\
        --prior-low -1 --prior-high 1 --x-o x_o.npy --num-samples 10000 --out DIR --seed 0

Inputs are ``.npy`` files: ``theta`` (n, d_theta), ``x`` (n, d_x) and ``x_o`` (k, d_x) or
(d_x,). The prior is one of

- ``--prior-low L.. --prior-high H..``: box uniform (one value is broadcast to every dim);
- ``--prior-normal LOC SCALE``: independent normal, SCALE is the standard deviation
  (sbibm's gaussian_linear prior N(0, 0.1 I) is ``--prior-normal 0 0.31622776601683794``);
- ``--prior-json SPEC``: a JSON file or string in lfi's ``prior.to_config()`` format,
  ``{"type": "BoxUniform" | "Normal" | "LogNormal" | "MultivariateNormal", ...}``.

Writes to ``--out``: ``result.json`` (timings, epochs, parameter count, best validation
loss, the configuration used) and ``samples_<k>.npy``, (num_samples, d_theta), per row k
of ``x_o``.

Training configuration (the flag defaults): ``density_estimator="nsf"`` built with
``posterior_nn(hidden_features=50, num_transforms=5, num_bins=10)``, z-scoring of θ and x
"independent"; ``train(training_batch_size=50, learning_rate=5e-4,
validation_fraction=0.1, stop_after_epochs=20, clip_max_norm=5.0)``. Note: sbi 0.27's own
``train`` default batch size is 200 (older sbi used 50; sbibm used 10000); 50 is used here
unless ``--batch-size`` says otherwise. torch keeps its default thread count (all cores)
unless ``--threads`` is given. sbi's TensorBoard logging is replaced by a no-op tracker so
that it neither costs time nor writes ``sbi-logs/``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


class NullTracker:
    """sbi ``Tracker`` that records nothing (the default writes TensorBoard files)."""

    log_dir = None

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def add_figure(self, name: str, figure: Any, step: int | None = None) -> None:
        pass

    def flush(self) -> None:
        pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--theta", required=True, type=Path, help=".npy, shape (n, d_theta)")
    p.add_argument("--x", required=True, type=Path, help=".npy, shape (n, d_x)")
    p.add_argument("--x-o", required=True, type=Path, help=".npy, shape (k, d_x) or (d_x,)")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--num-samples", type=int, default=10_000, help="posterior samples per x_o")
    p.add_argument("--seed", type=int, default=0)
    prior = p.add_argument_group("prior (give exactly one kind)")
    prior.add_argument("--prior-low", type=float, nargs="+", help="box uniform lower bounds")
    prior.add_argument("--prior-high", type=float, nargs="+", help="box uniform upper bounds")
    prior.add_argument(
        "--prior-normal", type=float, nargs=2, metavar=("LOC", "SCALE"),
        help="independent normal N(LOC, SCALE^2) in every dimension (SCALE = std)",
    )  # fmt: skip
    prior.add_argument("--prior-json", help="lfi prior config: a JSON file or JSON string")
    net = p.add_argument_group("flow and training (defaults: sbi's NSF defaults, batch 50)")
    net.add_argument("--hidden-features", type=int, default=50)
    net.add_argument("--num-transforms", type=int, default=5)
    net.add_argument("--num-bins", type=int, default=10)
    net.add_argument("--batch-size", type=int, default=50, help="training_batch_size")
    net.add_argument("--learning-rate", type=float, default=5e-4)
    net.add_argument("--validation-fraction", type=float, default=0.1)
    net.add_argument("--stop-after-epochs", type=int, default=20)
    net.add_argument("--clip-max-norm", type=float, default=5.0)
    net.add_argument(
        "--max-epochs",
        type=int,
        default=2**31 - 1,
        help="max_num_epochs (sbi 0.27 then runs N + 1 epochs; num_epochs reports the count)",
    )
    net.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = p.parse_args(argv)
    kinds = [
        args.prior_low is not None or args.prior_high is not None,
        args.prior_normal is not None,
        args.prior_json is not None,
    ]
    if sum(kinds) != 1:
        p.error("give exactly one prior: --prior-low/--prior-high, --prior-normal or --prior-json")
    if kinds[0] and (args.prior_low is None or args.prior_high is None):
        p.error("--prior-low and --prior-high go together")
    return args


def _broadcast(values: Any, dim: int, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(values, dtype=np.float32).reshape(-1))
    if t.numel() == 1:
        t = t.expand(dim).clone()
    if t.shape != (dim,):
        raise SystemExit(f"{name} has {t.numel()} values but theta has {dim} columns")
    return t


def build_prior(args: argparse.Namespace, dim: int) -> tuple[Any, dict]:
    """The torch prior and a JSON-able description of it."""
    from sbi.utils import BoxUniform

    if args.prior_json is not None:
        text = args.prior_json
        spec = json.loads(Path(text).read_text() if os.path.exists(text) else text)
    elif args.prior_normal is not None:
        spec = {"type": "Normal", "loc": args.prior_normal[0], "scale": args.prior_normal[1]}
    else:
        spec = {"type": "BoxUniform", "low": args.prior_low, "high": args.prior_high}
    kind = spec.get("type")
    if kind == "BoxUniform":
        low, high = _broadcast(spec["low"], dim, "low"), _broadcast(spec["high"], dim, "high")
        if not bool(torch.all(high > low)):
            raise SystemExit("prior: every high must exceed its low")
        prior = BoxUniform(low=low, high=high)
        spec = {"type": kind, "low": low.tolist(), "high": high.tolist()}
    elif kind in ("Normal", "LogNormal"):
        loc, scale = _broadcast(spec["loc"], dim, "loc"), _broadcast(spec["scale"], dim, "scale")
        base = getattr(torch.distributions, kind)(loc, scale)
        prior = torch.distributions.Independent(base, 1)
        spec = {"type": kind, "loc": loc.tolist(), "scale": scale.tolist()}
    elif kind == "MultivariateNormal":
        loc = _broadcast(spec["loc"], dim, "loc")
        cov = torch.as_tensor(np.asarray(spec["covariance_matrix"], dtype=np.float32))
        prior = torch.distributions.MultivariateNormal(loc, covariance_matrix=cov)
        spec = {"type": kind, "loc": loc.tolist(), "covariance_matrix": cov.tolist()}
    else:
        raise SystemExit(
            f"prior type {kind!r} not supported (BoxUniform, Normal, LogNormal, MultivariateNormal)"
        )
    return prior, spec


def load_data(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    theta = np.load(args.theta).astype(np.float32)
    x = np.load(args.x).astype(np.float32)
    x_o = np.load(args.x_o).astype(np.float32)
    theta = theta[:, None] if theta.ndim == 1 else theta
    x = x[:, None] if x.ndim == 1 else x
    x_o = x_o[None, :] if x_o.ndim == 1 else x_o
    if theta.ndim != 2 or x.ndim != 2 or x_o.ndim != 2:
        raise SystemExit("theta, x and x_o must be 1-d or 2-d arrays")
    if theta.shape[0] != x.shape[0]:
        raise SystemExit(f"theta has {theta.shape[0]} rows but x has {x.shape[0]}")
    if x_o.shape[1] != x.shape[1]:
        raise SystemExit(f"x_o has {x_o.shape[1]} columns but x has {x.shape[1]}")
    return torch.from_numpy(theta), torch.from_numpy(x), torch.from_numpy(x_o)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import sbi
    from sbi.inference import NPE_C
    from sbi.neural_nets import posterior_nn

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)  # noqa: NPY002  (in case sbi draws from the global RNG)

    theta, x, x_o = load_data(args)
    prior, prior_spec = build_prior(args, theta.shape[1])
    builder = posterior_nn(
        model="nsf",
        hidden_features=args.hidden_features,
        num_transforms=args.num_transforms,
        num_bins=args.num_bins,
    )
    inference = NPE_C(
        prior=prior, density_estimator=builder, show_progress_bars=False, tracker=NullTracker()
    )
    inference.append_simulations(theta, x)

    start = time.perf_counter()
    estimator = inference.train(
        training_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        validation_fraction=args.validation_fraction,
        stop_after_epochs=args.stop_after_epochs,
        clip_max_norm=args.clip_max_norm,
        max_num_epochs=args.max_epochs,
    )
    train_time = time.perf_counter() - start
    summary = inference.summary
    epochs = int(summary["epochs_trained"][-1])
    durations = [float(d) for d in summary["epoch_durations_sec"]]

    posterior = inference.build_posterior(estimator)
    args.out.mkdir(parents=True, exist_ok=True)
    sample_times = []
    for k in range(x_o.shape[0]):
        start = time.perf_counter()
        samples = posterior.sample((args.num_samples,), x=x_o[k], show_progress_bars=False)
        sample_times.append(time.perf_counter() - start)
        np.save(args.out / f"samples_{k}.npy", samples.numpy().astype(np.float32))

    result = {
        "method": "sbi NPE_C (NPE), nsf",
        "training_time_s": train_time,
        "num_epochs": epochs,
        "time_per_epoch_s": float(np.mean(durations)) if durations else math.nan,
        "time_per_epoch_source": "mean of sbi summary['epoch_durations_sec'] "
        "(each covers one epoch's training and validation passes)",
        "epoch_time_total_s": float(np.sum(durations)),
        "num_parameters": sum(p.numel() for p in estimator.parameters() if p.requires_grad),
        "best_validation_loss": float(summary["best_validation_loss"][-1]),
        "validation_loss_meaning": "mean -log q(theta | x) over the validation set",
        "sampling_time_s": sample_times,
        "num_simulations": int(theta.shape[0]),
        "theta_dim": int(theta.shape[1]),
        "x_dim": int(x.shape[1]),
        "num_observations": int(x_o.shape[0]),
        "num_samples": args.num_samples,
        "seed": args.seed,
        "prior": prior_spec,
        "config": {
            "density_estimator": "nsf",
            "hidden_features": args.hidden_features,
            "num_transforms": args.num_transforms,
            "num_bins": args.num_bins,
            "z_score_theta": "independent",
            "z_score_x": "independent",
            "training_batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "validation_fraction": args.validation_fraction,
            "stop_after_epochs": args.stop_after_epochs,
            "clip_max_norm": args.clip_max_norm,
            "max_num_epochs": args.max_epochs,
        },
        "versions": {
            "sbi": sbi.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "torch_num_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    res = main()
    keys = ["training_time_s", "num_epochs", "time_per_epoch_s", "num_parameters"]
    print(json.dumps({k: res[k] for k in keys + ["best_validation_loss"]}), file=sys.stderr)
