"""The ``lfi`` command: ``lfi demo``, ``lfi run TASK ...``, ``lfi tasks``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _write_outputs(result, task, out: Path) -> None:
    from lfi.plot import pairplot

    out.mkdir(parents=True, exist_ok=True)
    for k, samples in result.samples.items():
        np.save(out / f"samples_obs{k}.npy", samples)
        pairplot(
            samples,
            reference=result.references.get(k),
            truth=task.true_parameters(k),
            path=out / f"pairplot_obs{k}.png",
            title=f"{task.name} obs {k}: {result.metrics['method']} vs reference",
        )
    if result.estimator is not None:  # mining gold: the ratio/likelihood estimator itself
        result.estimator.save(out / "estimator.lfi")
    else:
        result.posterior.save(out / "posterior.lfi")
    (out / "metrics.json").write_text(json.dumps(result.metrics, indent=1, default=str))


def _summary(m: dict) -> str:
    c2st = ", ".join(f"obs {k}: {v:.3f}" for k, v in m["c2st"].items())
    lines = [
        f"{m['task']} · {m['method']} · {m['num_simulations']} simulations",
        f"  C2ST vs reference (0.5 is perfect): {c2st or 'not scored'}",
    ]
    if m.get("epochs"):
        lines.append(
            f"  simulate {m['seconds_simulate']:.1f} s · train {m['seconds_train']:.1f} s "
            f"({m['epochs']} epochs, {m['seconds_per_epoch']:.3f} s/epoch, first epoch with "
            f"compilation {m['first_epoch_seconds']:.1f} s) · sample {m['seconds_sample']:.2f} s"
            f" · C2ST {m['seconds_score']:.1f} s"
        )
    else:  # sequential: simulation and training alternate in rounds
        lines.append(
            f"  {m.get('num_rounds')} round(s): simulate + train {m['seconds_train']:.1f} s · "
            f"sample {m['seconds_sample']:.2f} s · C2ST {m['seconds_score']:.1f} s"
        )
    for k, d in (m.get("mcmc") or {}).items():
        lines.append(f"  MCMC obs {k}: max R-hat {d['rhat_max']:.3f}, min ESS {d['ess_min']:.0f}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from lfi import tasks
    from lfi.bench import run_task

    task = tasks.get(args.task)
    result = run_task(
        args.task,
        args.method,
        num_simulations=args.simulations,
        observations=[args.observation],
        seed=args.seed,
        num_samples=args.samples,
        score=not args.no_c2st,
        progress=not args.quiet,
        **({"num_rounds": args.rounds} if args.rounds else {}),
    )
    out = Path(args.out)
    _write_outputs(result, task, out)
    print(_summary(result.metrics))
    model = "estimator.lfi" if result.estimator is not None else "posterior.lfi"
    print(
        f"  wrote {out}/: samples_obs{args.observation}.npy, {model}, metrics.json, "
        f"pairplot_obs{args.observation}.png"
    )
    return 0


def _tasks(_: argparse.Namespace) -> int:
    from lfi import tasks

    for name in tasks.names():
        t = tasks.get(name)
        lik = "likelihood" if t.has_likelihood else "no likelihood"
        print(f"{name:<26} θ: {t.dim_theta:>2}  x: {t.dim_x:>3}  {lik:<14} {t.description}")
    return 0


def _parser() -> argparse.ArgumentParser:
    from lfi.methods.abc import ABC_METHODS
    from lfi.methods.mining import GOLD_METHODS
    from lfi.methods.registry import METHODS
    from lfi.methods.sequential import SEQUENTIAL

    parser = argparse.ArgumentParser(prog="lfi", description="Simulation-based inference on JAX.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, task_default=None):
        names = sorted([*METHODS, *SEQUENTIAL, *ABC_METHODS, *GOLD_METHODS])
        p.add_argument("--method", default="npe", choices=names)
        p.add_argument("--rounds", type=int, default=None, help="rounds (sequential methods)")
        p.add_argument("--simulations", type=int, default=10_000)
        p.add_argument("--observation", type=int, default=1, help="observation number, 1-10")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--samples", type=int, default=10_000, help="posterior samples to draw")
        p.add_argument("--no-c2st", action="store_true", help="skip scoring against the reference")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    text = "NPE on two_moons with 10 000 simulations: C2ST vs the reference, timings, a pairplot"
    demo = sub.add_parser("demo", help=text, description=text)
    common(demo)
    demo.add_argument("--out", default="lfi-demo")
    demo.set_defaults(func=_run, task="two_moons")

    run = sub.add_parser("run", help="run a method on a benchmark task")
    run.add_argument("task")
    common(run)
    run.add_argument("--out", default="lfi-out")
    run.set_defaults(func=_run)

    sub.add_parser("tasks", help="list the benchmark tasks").set_defaults(func=_tasks)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"lfi: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
