"""How well an NRE classifier fits gaussian_linear's log ratio (10^4 simulations, seed 0),
without C2ST: the spread (standard deviation) over 2000 reference-posterior draws of the learned
log ratio minus the exact log likelihood, at observations 1, 4 and 8 (0 is exact; a function of
x alone, as NRE-B's logit may carry, does not count).

    python benchmarks/nre_gl_probe.py '{}' '{"variant": "c"}' '{"width": 100}'

Each argument is a JSON dict of lfi.NRE options; one line is printed per setting.
"""

from __future__ import annotations

import json
import sys

from nle_flows import probe as fit_and_probe  # same fit and spread, any estimator class

import lfi


def probe(options: dict, observations=(1, 4, 8)) -> str:
    r = fit_and_probe("gaussian_linear", options, observations, estimator_class=lfi.NRE)
    return (
        f"{json.dumps(options)}: best val {r['val_loss']:.4f} at epoch {r['best_epoch']} of "
        f"{r['epochs']}; spread {' / '.join(f'{s:.2f}' for s in r['spread'])}; "
        f"{r['seconds']:.0f} s"
    )


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["{}"]:
        print(probe(json.loads(arg)), flush=True)
