"""The balance condition of an NPE posterior (Delaunoy et al. 2023, arXiv:2304.10978).

With d(θ, x) = log q(θ | x) − log p(θ), a posterior whose implied classifier σ(d) is balanced has
E_joint σ(d) + E_marginal σ(d) = 1 (exactly, for the true posterior). Prints the two means, their
sum − 1 and −mean log q on 4000 training rows and on 4000 fresh pairs, for NPE or balanced NPE:

    python benchmarks/npe_balance.py slcp 10000 100     # task, simulations, balance (0 = NPE)
"""

import sys

import jax.numpy as jnp
import numpy as np

import lfi
from lfi.posteriors.direct import _log_prob


def main(name: str, n: int, balance: float) -> None:
    task = lfi.tasks.get(name)
    theta, x = lfi.simulate(task.simulator, task.prior, n, seed=0, progress=False)
    theta_t, x_t = lfi.simulate(task.simulator, task.prior, 4000, seed=5, progress=False)
    post = lfi.NPE(task.prior, balance=balance, progress=False).fit(theta, x, seed=0)

    def log_q(th, xx):
        th, xx = jnp.asarray(th), jnp.asarray(xx)
        return np.asarray(_log_prob(post._flow, post._stand, task.prior, th, xx))

    def stats(th, xx):
        th, xx = np.asarray(th), np.asarray(xx)
        perm = np.random.default_rng(0).permutation(len(th))
        lq, lq_marg = log_q(th, xx), log_q(th[perm], xx)
        lp = np.asarray(task.prior.log_prob(th))
        joint = 1 / (1 + np.exp(-(lq - lp)))
        marg = 1 / (1 + np.exp(-(lq_marg - lp[perm])))
        out = (joint.mean(), marg.mean(), joint.mean() + marg.mean() - 1, -lq.mean())
        return tuple(round(float(v), 4) for v in out)

    print(
        f"{name} n={n} balance={balance}: (E_joint, E_marginal, sum - 1, -mean log q) "
        f"training rows {stats(theta[:4000], x[:4000])}, fresh pairs {stats(theta_t, x_t)}, "
        f"epochs {len(post.history.val_loss)}"
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
