"""A per-row simulator that hangs for θ₀ > 0.8 (for the timeout tests)."""

import time

import lfi

prior = lfi.BoxUniform([0.0], [1.0])


def simulator(theta, rng):
    if theta[0, 0] > 0.8:
        time.sleep(3600)
    return theta + rng.standard_normal(theta.shape)
