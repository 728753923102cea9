"""two_moons NPE calibration, split into mode weights and mode shapes (a diagnostic).

two_moons' posterior is symmetric under (θ1, θ2) -> (-θ2, -θ1) (the simulator uses |θ1 + θ2|),
so its two crescents have equal mass and equal shape. NPE at 10^4 simulations (seed 0), 300 test
pairs (seed 1): prints the fraction of draws in the crescent θ1 + θ2 > 0 (0.5 exactly for the
true posterior), the HPD coverage, and the coverage once the draws of the other crescent are
mirrored into θ*'s (which removes any difference between the two crescents' fitted shapes).

    python benchmarks/two_moons_modes.py
"""

import numpy as np

import lfi

task = lfi.tasks.get("two_moons")
theta, x = lfi.simulate(task.simulator, task.prior, 10000, seed=0, progress=False)
post = lfi.NPE(task.prior, progress=False).fit(theta, x, seed=0)
tt, xt = lfi.simulate(task.simulator, task.prior, 300, seed=1, progress=False)
tt, xt = np.asarray(tt), np.asarray(xt)
fr, alphas, same = [], [], []
for i in range(300):
    s = np.asarray(post.sample(1000, x=xt[i], seed=i))
    fr.append(np.mean(s.sum(1) > 0))
    lp = np.asarray(post.log_prob(np.concatenate([tt[i : i + 1], s[:500]]), x=xt[i]))
    alphas.append(np.mean(lp[1:] > lp[0]))
    # credibility using only the mode containing theta*: mirror samples of the other mode
    sgn = np.sign(tt[i].sum())
    m = s[:500].copy()
    other = np.sign(m.sum(1)) != sgn
    m[other] = -m[other][:, ::-1]
    lpm = np.asarray(post.log_prob(np.concatenate([tt[i : i + 1], m]), x=xt[i]))
    same.append(np.mean(lpm[1:] > lpm[0]))
fr = np.array(fr)
alphas = np.array(alphas)
same = np.array(same)
print(
    "mode fraction: mean",
    fr.mean().round(3),
    "sd",
    fr.std().round(3),
    "quantiles",
    np.quantile(fr, [0.05, 0.25, 0.5, 0.75, 0.95]).round(3),
)
print("coverage", [np.mean(alphas <= a).round(3) for a in (0.5, 0.8, 0.95)])
print(
    "coverage with samples mirrored into theta*'s mode",
    [np.mean(same <= a).round(3) for a in (0.5, 0.8, 0.95)],
)
