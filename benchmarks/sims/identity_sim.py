"""x = θ, no cost: what a campaign costs per simulation beyond the simulator itself."""

import lfi

prior = lfi.BoxUniform([-1.0, -1.0], [1.0, 1.0])


def simulator(theta):
    return theta
