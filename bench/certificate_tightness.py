"""How far the certified gap is from the true excess along a solve (the gap is what stops the solver).

    python bench/certificate_tightness.py [--n 10000 --d 50 --P 500 --beta-ratio 0.05] [--loss squared]
                                          [--formulation gated] [--markdown bench/results/tightness.md]

The problem family is bench/gated_vs_peers.py's. A reference solve at tol 1e-10 gives p*; a default solve
(tol 1e-6) records its history, and at every check the claimed relative gap (objective - dual) / objective is set
against the true relative excess (objective - p*) / p*. The ratio claimed / true is what matters: the solver stops
when the claimed gap reaches tol, so at a ratio r it runs on until the true excess is tol / r.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import convexnn as cnn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gated_vs_peers import make_problem  # noqa: E402


def cpu_line():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor()
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    isa = [f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma")]
    return f"{fields.get('Model name', '?').strip()}; {' '.join(sorted(isa))}"


def labels_for(loss, y):
    return np.where(y > 0, 1.0, -1.0) if loss in ("logistic", "hinge", "squared_hinge") else y


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--P", type=int, default=500)
    ap.add_argument("--beta-ratio", type=float, default=0.05)
    ap.add_argument("--loss", default="squared")
    ap.add_argument("--formulation", default="gated", choices=["gated", "relu"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args(argv)

    X, y, pats, _ = make_problem(args.n, args.d, args.P, args.beta_ratio, args.seed, args.formulation)
    y = labels_for(args.loss, y)
    beta = args.beta_ratio * cnn.beta_max(X, y, pats, loss=args.loss)
    kw = dict(patterns=pats, formulation=args.formulation, loss=args.loss)
    t0 = time.perf_counter()
    ref = cnn.solve(X, y, beta, tol=1e-10, max_iter=200_000, **kw)
    t_ref = time.perf_counter() - t0
    p_star = min(ref.objective, *(h["objective"] for h in ref.history))
    run = cnn.solve(X, y, beta, tol=1e-6, **kw)
    rows = []
    for h in run.history:
        excess = (h["objective"] - p_star) / abs(p_star)
        rows.append((h["iteration"], h["time"], excess, h["gap"], h["gap"] / excess if excess > 0 else np.inf))
    lines = [
        f"CPU: {cpu_line()}",
        f"problem: n={args.n} d={args.d} P={args.P} beta={args.beta_ratio:g} beta_max loss={args.loss} "
        f"formulation={args.formulation}; reference: status {ref.status}, gap {ref.gap:.1e}, {t_ref:.1f} s",
        f"solve tol 1e-6: status {run.status}, {run.n_iter} iterations, {run.time:.2f} s, solver {run.solver}",
        "",
        "| iteration | time (s) | true excess | claimed gap | claimed / true |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {it} | {t:.3f} | {ex:.2e} | {g:.2e} | {r:.1f} |" for it, t, ex, g, r in rows]
    window = [r for _, _, ex, _, r in rows if 1e-6 < ex < 1e-1]
    if window:
        lines += [
            "",
            f"claimed / true over the checks with true excess in (1e-6, 1e-1): median "
            f"{np.median(window):.1f}, max {max(window):.1f} ({len(window)} checks)",
        ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
