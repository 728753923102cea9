"""The ``lfi`` command: ``lfi demo``, ``lfi run TASK ...``, ``lfi tasks``, ``lfi simulate``,
``lfi store info``, ``lfi train``, ``lfi bench``."""

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
    ens = f" · ensemble of {m['ensemble']}" if m.get("ensemble") else ""
    lines = [
        f"{m['task']} · {m['method']}{ens} · {m['num_simulations']} simulations",
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
    out = Path(args.out)
    _writable(out)
    result = run_task(
        args.task,
        args.method,
        num_simulations=args.simulations,
        observations=[args.observation],
        seed=args.seed,
        num_samples=args.samples,
        score=not args.no_c2st,
        progress=not args.quiet,
        **({"num_rounds": args.rounds} if args.rounds is not None else {}),
        **({"ensemble": args.ensemble} if args.ensemble is not None else {}),
    )
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


def _shard(text: str) -> tuple[int, int]:
    try:
        i, k = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/N (e.g. 0/10), got {text!r}") from None
    if not 0 <= i < k:
        raise argparse.ArgumentTypeError(f"expected 0 <= i < N, got {text!r}")
    return i, k


def _simulate(args: argparse.Namespace) -> int:
    from lfi.campaign import SimulatorRef, run_campaign

    store = run_campaign(
        SimulatorRef(args.target),
        None,
        args.n,
        args.store,
        args.seed,
        chunk_size=args.chunk_size,
        workers=args.workers,
        cluster=args.cluster,
        shard=args.shard,
        timeout=args.timeout,
        progress=not args.quiet,
    )
    c = store.counts()
    shard = f" (shard {args.shard[0]}/{args.shard[1]})" if args.shard != (0, 1) else ""
    print(
        f"{store.path}{shard}: {store.num_rows} rows, {c['done']} done, {c['failed']} failed, "
        f"{c['nonfinite']} non-finite, {c['pending']} pending"
    )
    return 0


def _store_info(args: argparse.Namespace) -> int:
    from lfi.store import open_store

    store = open_store(args.path)
    info = store.info()
    if args.verify:
        info["damaged_chunks"] = [{"chunk": c, "problem": p} for c, p in store.verify()]
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    prov = info["provenance"]
    print(f"{info['path']}: simulator {prov['simulator']} (version {prov['simulator_version']})")
    print(f"  seed {prov['seed']} · chunk size {prov['chunk_size']} · lfi {prov['lfi_version']}")
    print(
        f"  {info['rows']} rows: {info['done']} done, {info['failed']} failed, "
        f"{info['nonfinite']} non-finite, {info['pending']} pending "
        f"({info['chunks_finished']} of {info['chunks']} chunks finished)"
    )
    for row, text in list(store.errors().items())[:5]:
        print(f"  row {row}: {text}")
    for d in info.get("damaged_chunks", []):
        print(f"  chunk {d['chunk']} damaged: {d['problem']}")
    return 0


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _train(args: argparse.Namespace) -> int:
    import lfi

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = args.checkpoint or str(out / "checkpoint.npz")
    posterior = lfi.infer(
        None,
        None,
        args.method,
        seed=args.seed,
        store=args.store,
        progress=not args.quiet,
        checkpoint=checkpoint,
        **dict(args.option),
    )
    posterior.save(out / "posterior.lfi")
    h = posterior.history
    print(
        f"{args.method} on {args.store}: {len(h.train_loss)} epochs in {h.seconds:.1f} s, best "
        f"validation loss {min(h.val_loss):.4f} (epoch {h.best_epoch}); wrote "
        f"{out / 'posterior.lfi'}"
    )
    return 0


def _numbers(text: str) -> list[int]:
    """'1000,10000' or '1-10' or '1,3-5' as a list of positive integers (an error otherwise)."""
    out: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.partition("-")
        try:
            values = list(range(int(lo), int(hi) + 1)) if sep else [int(float(lo))]
        except ValueError:
            values = []
        if not values or min(values) < 1:
            raise ValueError(
                f"expected positive integers or ranges like 1000,10000 or 1-10, got {text!r}"
            )
        out += values
    return out


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _writable(out: Path) -> None:
    """Make ``out`` and check it takes files before any work (not after an hour's run)."""
    out.mkdir(parents=True, exist_ok=True)
    probe = out / ".lfi-write-test"
    probe.write_text("")
    probe.unlink()


def _bench(args: argparse.Namespace) -> int:
    from lfi import tasks
    from lfi.bench_grid import bench

    _writable(Path(args.out))
    names = tasks.names() if args.tasks == "sbibm" else args.tasks.split(",")
    if args.tasks == "sbibm":
        from lfi.bench_grid import _sbibm

        names = [n for n in names if n in _sbibm()["10000"]]
    rows = bench(
        names,
        args.methods.split(","),
        _numbers(args.budgets),
        _numbers(args.observations),
        args.out,
        seed=args.seed,
        num_samples=args.samples,
        progress=not args.quiet,
        **dict(args.option),
        **({"ensemble": args.ensemble} if args.ensemble is not None else {}),
    )
    print((Path(args.out) / "summary.md").read_text())
    print(f"{len(rows)} rows in {args.out}/results.csv; plot {args.out}/c2st.png")
    return 0


def _bench_command(sub) -> None:
    text = "tasks × methods × budgets × observations: C2ST table beside sbibm (resumable)"
    b = sub.add_parser("bench", help=text, description=text)
    b.add_argument("--tasks", default="sbibm", help="comma-separated, or 'sbibm' (all ten)")
    b.add_argument("--methods", default="npe,nle,nre")
    b.add_argument("--budgets", default="1000,10000", help="e.g. 1000,10000")
    b.add_argument("--observations", default="1-10", help="e.g. 1-10 or 1,3")
    b.add_argument("--out", default="lfi-bench")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--samples", type=_positive, default=10_000, help="posterior samples per C2ST")
    b.add_argument("--option", type=_option, action="append", default=[], metavar="K=V")
    b.add_argument("--ensemble", type=_positive, default=None, metavar="K",
                   help="ensembles of K members (same as --option ensemble=K)")  # fmt: skip
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=_bench)


def _campaign_commands(sub) -> None:
    text = "run or resume a simulation campaign into a store"
    sim = sub.add_parser("simulate", help=text, description=text)
    sim.add_argument("target", help="a task name, a module or a .py file (simulator, prior)")
    sim.add_argument("--n", type=int, required=True, help="number of simulations")
    sim.add_argument("--store", required=True, help="the store directory")
    sim.add_argument("--seed", type=int, default=0)
    where = sim.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, help="local worker processes")
    where.add_argument("--cluster", default=None, help="Dask scheduler address tcp://host:port")
    sim.add_argument("--shard", type=_shard, default=(0, 1), help="i/N: this job's share")
    sim.add_argument("--chunk-size", type=int, default=1000)
    sim.add_argument("--timeout", type=float, default=None, help="seconds per simulation")
    sim.add_argument("--quiet", action="store_true")
    sim.set_defaults(func=_simulate)

    store = sub.add_parser("store", help="inspect a simulation store")
    store_sub = store.add_subparsers(dest="store_command", required=True)
    info = store_sub.add_parser("info", help="rows done, failed and pending; provenance")
    info.add_argument("path")
    info.add_argument("--json", action="store_true")
    info.add_argument("--verify", action="store_true", help="check every chunk's checksum")
    info.set_defaults(func=_store_info)

    text = "train NPE, NLE or NRE on a store (resumes from its checkpoint)"
    train = sub.add_parser("train", help=text, description=text)
    train.add_argument("--store", required=True)
    train.add_argument("--method", default="npe", choices=["npe", "nle", "nre", "nre_a", "nre_b",
                       "nre_c", "bnre"])  # fmt: skip
    train.add_argument("--out", default="lfi-train")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint", default=None, help="default: OUT/checkpoint.npz")
    train.add_argument("--option", type=_option, action="append", default=[], metavar="K=V")
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(func=_train)


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
        p.add_argument("--rounds", type=_positive, default=None, help="rounds (sequential methods)")
        p.add_argument("--ensemble", type=_positive, default=None, metavar="K",
                       help="train K members and sample their mixture")  # fmt: skip
        p.add_argument("--simulations", type=_positive, default=10_000)
        p.add_argument("--observation", type=int, default=1, help="observation number, 1-10")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument(
            "--samples", type=_positive, default=10_000, help="posterior samples to draw"
        )
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
    _campaign_commands(sub)
    _bench_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:  # OSError: e.g. an unwritable --out
        print(f"lfi: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
