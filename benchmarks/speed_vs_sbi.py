"""lfi's NPE and sbi's NPE side by side on the same simulations: time per epoch, time from
simulations to a trained posterior, and C2ST against lfi's reference posterior.

Needs the sbi environment of benchmarks/README.md (`.venv-sbi`). Run on an otherwise idle
machine, by hand:

    python benchmarks/speed_vs_sbi.py --out benchmarks/results/speed_vs_sbi

Both libraries get the same 10 000 two_moons simulations (made by lfi, seed 0), the same batch
size, learning rate, validation fraction, patience and gradient clipping, and flows of matched
size (sbi's default NSF: 5 transforms, 50 hidden units, 2 residual blocks, 10 bins; lfi's
default NSF has the same architecture: 5 coupling layers, each a spline whose parameters come
from a residual net of 2 context-gated blocks of width 50, then an LU linear layer; other sizes
with --flow-layers, --nn-width, --nn-depth, --conditioner mlp). lfi runs in a fresh process
twice: with an empty JAX compilation cache (cold: every
compilation paid) and again with the cache that the first run filled (warm).
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


def lfi_worker(args) -> None:
    """Train lfi's NPE on the saved simulations and sample at every x_o (run in a subprocess)."""
    t_import = time.perf_counter()
    import equinox as eqx
    import jax

    import lfi
    from lfi import _cores
    from lfi.methods.npe import npe_loss

    t0 = time.perf_counter()
    t_import = t0 - t_import
    task = lfi.tasks.get(args.task)
    theta, x = np.load(args.work / "theta.npy"), np.load(args.work / "x.npy")
    npe = lfi.NPE(
        task.prior,
        progress=False,
        batch_size=args.batch_size,
        nn_depth=args.nn_depth,
        flow_layers=args.flow_layers,
        nn_width=args.nn_width,
        conditioner=args.conditioner,
        knots=10,
        learning_rate=args.learning_rate,
        **({} if args.lr_decays is None else {"lr_decays": args.lr_decays}),
    )
    post = npe.fit(theta, x, seed=args.seed)
    t_train = time.perf_counter() - t0
    x_o = np.load(args.work / "x_o.npy")
    t0 = time.perf_counter()
    for k, xk in enumerate(x_o, start=1):
        np.save(args.out_dir / f"samples_{k}.npy", np.asarray(post.sample(args.num_samples, xk, k)))
    t_sample = time.perf_counter() - t0
    leaves = jax.tree_util.tree_leaves(eqx.filter(post._trained, eqx.is_inexact_array))
    h = npe.history
    result = dict(
        train_seconds=t_train,
        import_seconds=t_import,
        epochs=len(h.val_loss),
        seconds_per_epoch=float(np.mean(h.epoch_seconds[1:])),
        first_epoch_seconds=h.epoch_seconds[0],
        num_parameters=int(sum(a.size for a in leaves)),
        sample_seconds=t_sample,
        best_val_loss=min(h.val_loss),
        cpu_devices=_cores.width(args.batch_size, npe_loss),  # devices each batch is split over
    )
    (args.out_dir / "result.json").write_text(json.dumps(result, indent=1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="two_moons")
    p.add_argument("--simulations", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-samples", type=int, default=10_000)
    p.add_argument("--nn-depth", type=int, default=2, help="lfi residual blocks (MLP: depth)")
    p.add_argument("--conditioner", default="resnet", choices=["resnet", "mlp"])
    p.add_argument("--nn-width", type=int, default=50, help="lfi conditioner width")
    p.add_argument("--flow-layers", type=int, default=5, help="lfi coupling layers")
    p.add_argument(
        "--lr-decays",
        type=int,
        default=None,
        help="lfi's learning-rate decays on plateau (default: lfi's; 0 = sbi's schedule)",
    )
    p.add_argument("--learning-rate", type=float, default=5e-4, help="lfi's learning rate")
    p.add_argument(
        "--sbi-learning-rates",
        type=float,
        nargs="+",
        default=[5e-4],
        help="train sbi once per learning rate (sbi's default: 5e-4); the first is the baseline",
    )
    p.add_argument(
        "--cores",
        type=int,
        default=None,
        help="LFI_CPU_CORES for lfi (default: lfi's own, one JAX CPU device per core)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/speed_vs_sbi")
    p.add_argument("--sbi-python", default=str(ROOT / ".venv-sbi/bin/python"))
    p.add_argument("--reuse", type=Path, help="score the runs left in this work folder again")
    p.add_argument("--lfi-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.lfi_worker:
        lfi_worker(args)
        return 0

    import lfi

    task = lfi.tasks.get(args.task)
    if args.reuse:
        runs = reuse(args.reuse)
    else:
        work = Path(tempfile.mkdtemp(prefix="lfi-speed-"))
        theta, x = lfi.simulate(
            task.simulator, task.prior, args.simulations, seed=args.seed, progress=False
        )
        x_o = np.stack([task.observation(k) for k in range(1, 11)])
        for name, arr in (("theta", theta), ("x", x), ("x_o", x_o)):
            np.save(work / f"{name}.npy", arr)
        runs = train_both(args, work, json.dumps(task.prior.to_config()))
    score_and_write(runs, task, args)
    return 0


def reuse(work: Path) -> dict:
    """Runs of an earlier invocation (its temporary folder), to score them again."""
    sbi = json.loads((work / "sbi/result.json").read_text())
    runs = {
        "sbi": {
            **sbi,
            "train_seconds": sbi["training_time_s"],
            "epochs": sbi["num_epochs"],
            "seconds_per_epoch": sbi["time_per_epoch_s"],
            "dir": str(work / "sbi"),
            "index_base": 0,
        }
    }
    for label, sub_dir in (("lfi (cold cache)", "cold"), ("lfi (warm cache)", "warm")):
        result = json.loads((work / sub_dir / "result.json").read_text())
        result.pop("import_seconds", None)  # measured wrongly before the fix of this field
        runs[label] = {**result, "dir": str(work / sub_dir), "index_base": 1}
    return runs


def train_both(args, work: Path, prior: str) -> dict:
    runs = {}
    cmd = [
        args.sbi_python,
        str(ROOT / "benchmarks/sbi_npe.py"),
        "--theta",
        str(work / "theta.npy"),
        "--x",
        str(work / "x.npy"),
        "--x-o",
        str(work / "x_o.npy"),
        "--prior-json",
        prior,
        "--num-samples",
        str(args.num_samples),
        "--seed",
        str(args.seed),
        "--batch-size",
        str(args.batch_size),
    ]
    for i, lr in enumerate(args.sbi_learning_rates):
        label, sub = ("sbi", "sbi") if i == 0 else (f"sbi (lr {lr:g})", f"sbi_lr{lr:g}")
        t0 = time.perf_counter()
        subprocess.run([*cmd, "--learning-rate", str(lr), "--out", str(work / sub)], check=True)
        sbi = json.loads((work / sub / "result.json").read_text())
        runs[label] = {
            **sbi,
            "train_seconds": sbi["training_time_s"],
            "epochs": sbi["num_epochs"],
            "seconds_per_epoch": sbi["time_per_epoch_s"],
            "process_seconds": time.perf_counter() - t0,
            "learning_rate": lr,
            "dir": str(work / sub),
            "index_base": 0,  # sbi_npe.py names samples from 0
        }
    cache = Path(tempfile.mkdtemp(prefix="lfi-jaxcache-"))
    for label in ("lfi (cold cache)", "lfi (warm cache)"):
        out_dir = work / label.split()[1].strip("(")
        out_dir.mkdir()
        env = {**os.environ, "LFI_CACHE_DIR": str(cache)}
        if args.cores is not None:
            env["LFI_CPU_CORES"] = str(args.cores)
        cmd = [
            sys.executable,
            __file__,
            "--lfi-worker",
            "--work",
            str(work),
            "--out-dir",
            str(out_dir),
            "--task",
            args.task,
            "--batch-size",
            str(args.batch_size),
            "--nn-depth",
            str(args.nn_depth),
            "--nn-width",
            str(args.nn_width),
            "--flow-layers",
            str(args.flow_layers),
            "--conditioner",
            args.conditioner,
            "--learning-rate",
            str(args.learning_rate),
            *([] if args.lr_decays is None else ["--lr-decays", str(args.lr_decays)]),
            "--seed",
            str(args.seed),
            "--num-samples",
            str(args.num_samples),
        ]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env)
        runs[label] = {
            **json.loads((out_dir / "result.json").read_text()),
            "process_seconds": time.perf_counter() - t0,
            "learning_rate": args.learning_rate,
            "dir": str(out_dir),
            "index_base": 1,
        }
    return runs


def _samples(run: dict, k: int) -> np.ndarray:
    return np.load(Path(run["dir"]) / f"samples_{k - 1 + run['index_base']}.npy")


def score_and_write(runs: dict, task, args) -> None:
    from lfi.diagnostics import c2st

    # the warm run trains the same flow from the same seed: its samples must equal the cold run's
    same = all(
        np.array_equal(_samples(runs["lfi (cold cache)"], k), _samples(runs["lfi (warm cache)"], k))
        for k in range(1, 11)
    )
    print("lfi cold and warm samples identical:", same, flush=True)
    for label, r in runs.items():
        if same and label == "lfi (warm cache)":
            r["c2st"], r["c2st_mean"] = (
                runs["lfi (cold cache)"]["c2st"],
                runs["lfi (cold cache)"]["c2st_mean"],
            )
            continue
        scores = []
        for k in range(1, 11):
            ref = task.reference_posterior(k, args.num_samples, seed=k)
            scores.append(float(c2st(ref, _samples(r, k))))
        r["c2st"] = scores
        r["c2st_mean"] = float(np.mean(scores))
        print(label, json.dumps({k: v for k, v in r.items() if k != "c2st"}), flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "runs.json").write_text(json.dumps(runs, indent=1))
    (args.out / "README.md").write_text(render(runs, args, " ".join(["python", *sys.argv])))


def render(runs: dict, args, command: str) -> str:
    sbi = runs["sbi"]
    sbi_train = sbi.get("train_seconds")
    lines = [
        f"# NPE speed: lfi vs sbi, {args.simulations} {args.task} simulations, one run",
        "",
        f"Command: `{command}` (2-core CPU, machine otherwise idle).",
        "",
        f"Same simulations, batch size {args.batch_size}, 10% validation, patience 20, clip 5.0;"
        f" learning rate: sbi {args.sbi_learning_rates[0]:g} (each row says its own), lfi"
        f" {args.learning_rate:g}"
        + ("" if args.lr_decays is None else f", lfi learning-rate decays {args.lr_decays}")
        + ". C2ST: mean over observations 1-10, 10 000 samples vs lfi's reference.",
        "",
        "| run | lr | parameters | epochs | s/epoch | epoch speed-up | train s | total speed-up "
        "| C2ST |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in runs.items():
        spe = r["seconds_per_epoch"]
        lines.append(
            f"| {label} | {r.get('learning_rate', 5e-4):g} | {r['num_parameters']} | "
            f"{r['epochs']} | {spe:.3f} | "
            f"{sbi['seconds_per_epoch'] / spe:.1f}× | {r['train_seconds']:.1f} | "
            f"{sbi_train / r['train_seconds']:.1f}× | {r['c2st_mean']:.3f} |"
        )
    lines += [
        "",
        "s/epoch: mean over epochs; for lfi the first epoch (which compiles) is left out of "
        "the mean and counted in train s. sbi's is the mean of sbi's own epoch_durations_sec. "
        "train s: from simulations in memory to a trained posterior, compilation included. "
        f"lfi split each batch over {runs['lfi (cold cache)'].get('cpu_devices', 1)} JAX CPU "
        "device(s) (one per core unless LFI_CPU_CORES says otherwise); torch on its default "
        "threads.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
