"""A per-sample simulator returning a 2 × 2 matrix per θ (for the timeout tests)."""

import numpy as np

import lfi

prior = lfi.BoxUniform([0.0], [1.0])


def _one(theta, rng):
    return np.full((2, 2), theta[0]) + rng.standard_normal((2, 2))


simulator = lfi.per_sample(_one)
