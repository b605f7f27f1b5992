"""Ctrl-C latency of the exact solver: seconds from SIGINT to the returned (interrupted) result.

    python bench/interrupt_latency.py [--n 20000 --d 50 --P 1000] [--after 3 20]

A child process runs ``convexnn.solve(..., formulation="relu")`` on Gaussian data (squared loss, bias, sampled
patterns, beta = 1e-3 beta_max, tol 1e-10 so that it runs until interrupted); the parent sends SIGINT the given
seconds after the solve started and reports when the child printed its result.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap
import time

CHILD = """
import sys, time, numpy as np, convexnn as cnn
n, d, P = {n}, {d}, {P}
rng = np.random.default_rng(0)
X = rng.standard_normal((n, d))
y = np.maximum(X @ rng.standard_normal((d, 10)), 0) @ rng.standard_normal(10)
pats = cnn.sample_patterns(X, P, seed=0, bias=True)
beta = 1e-3 * cnn.beta_max(X, y, pats, bias=True)
print("start", flush=True)
try:
    r = cnn.solve(X, y, beta, patterns=pats, formulation="relu", bias=True, tol=1e-10, max_iter=10**7)
    print(r.status, time.time(), flush=True)
except KeyboardInterrupt:
    print("KeyboardInterrupt", time.time(), flush=True)
"""


def one_run(n, d, P, after):
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD.format(n=n, d=d, P=P))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        line = proc.stdout.readline().strip()
        if line != "start":
            raise RuntimeError(f"child did not start: {line!r} {proc.stderr.read()}")
        time.sleep(after)
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    status, done = out.split()[-2:]
    return status, float(done) - sent


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--P", type=int, default=1000)
    ap.add_argument("--after", type=float, nargs="+", default=[3.0, 20.0])
    args = ap.parse_args(argv)
    print(f"n={args.n} d={args.d} P={args.P}, load average {os.getloadavg()[0]:.1f}")
    for after in args.after:
        status, latency = one_run(args.n, args.d, args.P, after)
        print(f"SIGINT {after:g} s after the start: {status} after {latency:.2f} s")


if __name__ == "__main__":
    main()
