"""A numpy simulator for the campaign tests (loaded by path, so spawned workers import it).

x = θ + N(0, 1) noise in 3 columns; θ₀ > 0.95 raises, θ₀ < 0.03 returns NaN. With the
environment variable LFI_TEST_SIM_SECONDS, every call sleeps that long per row (to kill a
campaign mid-way).
"""

import os
import time

import numpy as np

import lfi

__version__ = "1.0"
prior = lfi.BoxUniform([0.0, 0.0], [1.0, 1.0])


def simulator(theta, rng):
    time.sleep(float(os.environ.get("LFI_TEST_SIM_SECONDS", "0")) * len(theta))
    if np.any(theta[:, 0] > 0.95):
        if len(theta) == 1:
            raise ValueError(f"theta[0] = {theta[0, 0]:.3f} is too large")
        raise ValueError("a row is too large")  # lfi retries row by row
    x = np.concatenate([theta, theta.sum(1, keepdims=True)], 1)
    x = x + rng.standard_normal(x.shape)
    x[theta[:, 0] < 0.03] = np.nan
    return x
