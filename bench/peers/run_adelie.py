"""Run adelie 1.1.52 (convex_relu matrix + grpnet) on a problem file, inside the adelie venv.

    python run_adelie.py PROBLEM.npz OUT.npz --formulation gated|relu --tol TOL

adelie's gaussian GLM minimises 1/2 sum w_i (y_i - eta_i)^2 + lam sum ||b_g|| with weights 1/n, so with
penalty = ones and no intercept lam = beta / n in convexnn's scaling. The path is run down to that lam
(lmda_path = a short log grid ending there, as adelie recommends for warm starts); time covers the whole path.
For relu, each block gets the linear constraint (2 D_i - I) X v >= 0 (adelie.constraint.linear).
"""

import argparse
import time

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("problem")
    p.add_argument("out")
    p.add_argument("--formulation", default="gated")
    p.add_argument("--tol", type=float, default=1e-7)
    p.add_argument("--path-size", type=int, default=10)
    p.add_argument("--ready", default=None, help="touch this file right before the timed solve")
    a = p.parse_args()
    import adelie as ad

    prob = np.load(a.problem)
    X = np.asfortranarray(prob["X"])
    y, masks, beta = prob["y"].ravel(), np.asfortranarray(prob["masks"]), float(prob["beta"])
    threads = int(prob["threads"]) if "threads" in prob else 2
    n, d = X.shape
    P = masks.shape[1]
    gated = a.formulation == "gated"
    lam = beta / n
    if a.ready:  # the suite (bench/suite.py) starts its kill clock here
        open(a.ready, "w").close()
    t0, c0 = time.perf_counter(), time.process_time()
    mat = ad.matrix.convex_relu(X, masks, gated=gated, n_threads=threads)
    n_groups = P if gated else 2 * P
    constraints = None
    if not gated:
        # adelie stores references (copy=False): keep the constraint matrices alive for the whole solve.
        cone_rows = [np.ascontiguousarray((2.0 * masks[:, i] - 1.0)[:, None] * X) for i in range(P)]
        lower, upper = np.zeros(n), np.full(n, np.inf)
        constraints = [
            ad.constraint.linear(A, lower=lower, upper=upper) for _ in range(2) for A in cone_rows
        ]  # v blocks then w blocks: the same cone K_i
    lmda_max_guess = lam * 20
    path = np.geomspace(lmda_max_guess, lam, a.path_size)
    state = ad.grpnet(
        mat,
        ad.glm.gaussian(y),
        constraints=constraints,
        groups=d * np.arange(n_groups),
        penalty=np.ones(n_groups),
        intercept=False,
        lmda_path=path,
        early_exit=False,
        tol=a.tol,
        n_threads=threads,
        progress_bar=False,
    )
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0  # all threads of the process
    beta_hat = np.asarray(state.betas[-1].todense()).ravel()
    if gated:
        np.savez(a.out, U=beta_hat.reshape(P, d, 1), time=elapsed, cpu_time=cpu)
    else:
        np.savez(
            a.out,
            V=beta_hat[: P * d].reshape(P, d, 1),
            W=beta_hat[P * d :].reshape(P, d, 1),
            time=elapsed,
            cpu_time=cpu,
        )


if __name__ == "__main__":
    main()
