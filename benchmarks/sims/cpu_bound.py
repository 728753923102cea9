"""A CPU-bound numpy simulator for the scaling benchmark: a noisy 8-d nonlinear recurrence
run for STEPS steps per simulation, one simulation at a time (about 5 ms each); tiny matrices,
so BLAS threads play no part and one process uses one core."""

import os

import numpy as np

import lfi

__version__ = "1"
STEPS = int(os.environ.get("LFI_BENCH_STEPS", "1500"))
prior = lfi.BoxUniform([-1.0, -1.0], [1.0, 1.0])
_A = np.random.default_rng(0).standard_normal((8, 8)) / 3


def simulator(theta, rng):
    out = np.empty((len(theta), 8))
    for i, t in enumerate(theta):
        v = np.zeros(8)
        v[:2] = t
        for _ in range(STEPS):
            v = np.tanh(_A @ v + t[0] + 0.1 * rng.standard_normal(8))
        out[i] = v
    return out
