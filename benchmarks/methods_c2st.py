"""Any lfi method on the benchmark tasks: mean C2ST over observations, beside sbibm's figure for
the same algorithm (../shared/anchors/sbibm_c2st.md, sbibm main_paper.csv).

Run by hand (not in CI); C2ST's classifier dominates the time (minutes per observation in 10-d):

    python benchmarks/methods_c2st.py --methods nle nre --tasks two_moons slcp \\
        --out benchmarks/results/methods_c2st.json

Amortised methods (npe, nle, nre_*) train one estimator per (task, budget, seed) and evaluate it
at every observation; sequential ones (snpe, snle, snre) train anew at each observation with
``--rounds`` rounds (sbibm: 10). NLE/NRE posteriors are sampled by lfi's default sampler
and the table reports the worst R-hat seen. Results are appended per run to the JSON file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from lfi.bench import run_task
from lfi.methods.sequential import SEQUENTIAL

# sbibm main_paper.csv, mean C2ST over 10 observations: {(method, task): {budget: value}}
_COLUMNS = ("rejection_abc", "smc_abc", "nle", "snle", "npe", "snpe", "nre", "snre")
_ROWS = {
    ("gaussian_linear", 1000): (0.913, 0.922, 0.650, 0.628, 0.694, 0.652, 0.672, 0.670),
    ("gaussian_linear", 10000): (0.858, 0.829, 0.555, 0.548, 0.552, 0.544, 0.560, 0.536),
    ("gaussian_linear", 100000): (0.802, 0.726, 0.515, 0.519, 0.506, 0.507, 0.536, 0.515),
    ("gaussian_linear_uniform", 1000): (0.977, 0.968, 0.723, 0.657, 0.696, 0.631, 0.788, 0.681),
    ("gaussian_linear_uniform", 10000): (0.948, 0.928, 0.548, 0.552, 0.553, 0.527, 0.706, 0.606),
    ("gaussian_mixture", 1000): (0.883, 0.799, 0.812, 0.701, 0.731, 0.697, 0.784, 0.723),
    ("gaussian_mixture", 10000): (0.789, 0.746, 0.731, 0.702, 0.661, 0.583, 0.752, 0.662),
    ("gaussian_mixture", 100000): (0.772, 0.664, 0.757, 0.624, 0.555, 0.533, 0.734, 0.542),
    ("slcp", 1000): (0.982, 0.982, 0.946, 0.921, 0.975, 0.965, 0.972, 0.968),
    ("slcp", 10000): (0.973, 0.969, 0.771, 0.713, 0.901, 0.845, 0.947, 0.917),
    ("slcp", 100000): (0.961, 0.963, 0.699, 0.578, 0.831, 0.666, 0.919, 0.721),
    ("two_moons", 1000): (0.960, 0.922, 0.773, 0.657, 0.725, 0.643, 0.822, 0.651),
    ("two_moons", 10000): (0.847, 0.707, 0.713, 0.571, 0.606, 0.554, 0.761, 0.582),
    ("two_moons", 100000): (0.664, 0.663, 0.668, 0.582, 0.542, 0.530, 0.629, 0.563),
}
ALIASES = {"nre_b": "nre", "nre_a": "nre", "nre_c": "nre", "bnre": "nre"}  # sbibm's NRE is NRE-B


def sbibm(method: str, task: str, budget: int) -> float | None:
    column = ALIASES.get(method, method)
    row = _ROWS.get((task, budget))
    return None if row is None or column not in _COLUMNS else row[_COLUMNS.index(column)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=["nle", "nre"])
    p.add_argument("--tasks", nargs="+", default=["two_moons"])
    p.add_argument("--budgets", nargs="+", type=int, default=[10000])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--observations", nargs="+", type=int, default=list(range(1, 11)))
    p.add_argument("--rounds", type=int, default=10, help="rounds of the sequential methods")
    p.add_argument(
        "--options",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="method options, VALUE parsed as JSON (e.g. adjust=true num_accept=200)",
    )
    p.add_argument("--out", default="benchmarks/results/methods_c2st.json")
    p.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="instead of running: merge these runs' per-observation results into --out",
    )
    args = p.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.merge:
        runs = merge([r for f in args.merge for r in json.loads(Path(f).read_text())])
        out.write_text(json.dumps(runs, indent=1, default=str))
        out.with_suffix(".md").write_text(render(runs, " ".join(["python", *sys.argv])))
        return 0
    runs = json.loads(out.read_text()) if out.exists() else []
    options = {}
    for item in args.options:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--options: expected KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    for method in args.methods:
        extra = {"num_rounds": args.rounds} if method in SEQUENTIAL else {}
        extra.update(options)
        for task in args.tasks:
            for budget in args.budgets:
                for seed in args.seeds:
                    t0 = time.perf_counter()
                    result = run_task(
                        task,
                        method,
                        num_simulations=budget,
                        observations=args.observations,
                        seed=seed,
                        progress=False,
                        **extra,
                    )
                    m = result.metrics
                    m.update(
                        wall_seconds=time.perf_counter() - t0,
                        sbibm=sbibm(method, task, budget),
                        options=options,
                    )
                    runs.append(m)
                    jax.clear_caches()  # unmap compiled code (vm.max_map_count)
                    out.write_text(json.dumps(runs, indent=1, default=str))
                    print(
                        f"{method:<6} {task:<18} {budget:>6} seed {seed}: C2ST "
                        f"{m['c2st_mean']:.3f} (sbibm {m['sbibm']}; {m['wall_seconds']:.0f} s)",
                        flush=True,
                    )
    out.with_suffix(".md").write_text(render(runs, " ".join(["python", *sys.argv])))
    return 0


def merge(runs: list[dict]) -> list[dict]:
    """One run per (method, task, budget, seed, options) from runs over disjoint observations.

    Exact for the methods here: observation k's simulations, training and draws are seeded by
    k alone (``jax.random.fold_in(key, k)``), so a cell split across processes by
    ``--observations`` gives the figures one process would. Seconds are summed.
    """
    merged: dict[str, dict] = {}
    for r in runs:
        key = json.dumps([r["method"], r["task"], r["num_simulations"], r["seed"], r["options"]])
        if key not in merged:
            merged[key] = {**r, "c2st": {}, "mcmc": {}, "observations": []}
            for k in ("seconds_train", "seconds_sample", "seconds_score", "wall_seconds"):
                merged[key][k] = 0.0
        m = merged[key]
        twice = set(m["observations"]) & set(r["observations"])
        if twice:
            raise ValueError(f"merge: observations {sorted(twice)} of {key} appear twice")
        m["observations"] = sorted(m["observations"] + list(r["observations"]))
        m["c2st"].update(r["c2st"])
        m["mcmc"].update(r.get("mcmc") or {})
        if isinstance(r.get("rounds"), dict):  # per observation: the sequential rounds
            m["rounds"] = {**(m.get("rounds") or {}), **r["rounds"]}
        for k in ("seconds_train", "seconds_sample", "seconds_score", "wall_seconds"):
            m[k] += r.get(k) or 0.0
    for m in merged.values():
        m["c2st_mean"] = float(np.mean(list(m["c2st"].values())))
        m["mcmc"] = m["mcmc"] or None
    return list(merged.values())


def render(runs: list[dict], command: str) -> str:
    lines = [
        "# lfi methods: mean C2ST over observations (0.5 is best) beside sbibm",
        "",
        f"Command: `{command}`",
        "",
        "| method | task | simulations | observations | lfi C2ST | sbibm | ≤ sbibm? | max R-hat "
        "| train s | sample s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in runs:
        ref = m.get("sbibm")
        ok = "" if ref is None else ("yes" if m["c2st_mean"] <= ref else "**no**")
        if ref is not None and len(m["observations"]) < 10:  # sbibm's figures: 10 observations
            ok += f" ({len(m['observations'])} of 10 obs.)"
        rhat = max((d["rhat_max"] for d in (m.get("mcmc") or {}).values()), default=None)
        lines.append(
            f"| {m['method']}{_options(m)} | {m['task']} | {m['num_simulations']} "
            f"| {len(m['observations'])} "
            f"| {m['c2st_mean']:.3f} | {ref or '-'} | {ok} | "
            f"{'-' if rhat is None else f'{rhat:.3f}'} | {m['seconds_train']:.0f} "
            f"| {m['seconds_sample']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _options(m: dict) -> str:
    opts = m.get("options") or {}
    return "".join(f" {k}={json.dumps(v)}" for k, v in opts.items())


if __name__ == "__main__":
    sys.exit(main())
