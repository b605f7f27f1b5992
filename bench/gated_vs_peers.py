"""Gated (and exact) ReLU programs: convexnn against scnn and adelie on the same patterns, same run.

    python bench/gated_vs_peers.py [--n 10000 --d 50 --P 500 --beta-ratio 0.05] [--formulation gated|relu]
                                   [--peers scnn,adelie] [--markdown bench/results/gated.md]

Problem: Gaussian X with unit-norm columns, y from a random two-layer ReLU teacher plus noise,
standardized; no bias; P Gaussian gates (deduplicated), the same masks for every solver; beta = ratio * beta_max.
Every solver's returned weights are scored with the SAME objective (convexnn.reference, docs/api.md scaling), so
"objective" columns are comparable. convexnn runs at a ladder of tolerances; "time to match" is the fastest
convexnn run whose objective is no worse than the peer's. Peers run in their own venvs (bench/peers/setup_peers.sh):
SCNN_PYTHON and ADELIE_PYTHON override the default build/peers/*/bin/python. All solvers get the same threads.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import convexnn as cnn
from convexnn.reference.objectives import gated_objective, relative_violation, relu_objective

ROOT = Path(__file__).resolve().parents[1]


def make_problem(n, d, P, beta_ratio, seed, formulation):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=0)
    teacher = rng.standard_normal((d, 20))
    y = np.maximum(X @ teacher, 0) @ rng.standard_normal(20) + 0.1 * rng.standard_normal(n) / np.sqrt(n)
    y = (y - y.mean()) / y.std()
    pats = cnn.sample_patterns(X, n_patterns=P, seed=seed)
    beta = beta_ratio * cnn.beta_max(X, y, pats)
    return X, y, pats, beta


def score(X, masks, y, beta, formulation, out):
    if formulation == "gated":
        return gated_objective(X, masks, out["U"], y, beta, "squared"), 0.0
    V, W = out["V"], out["W"]
    return relu_objective(X, masks, V, W, y, beta, "squared"), relative_violation(X, masks, V, W)


def run_peer(name, problem_file, formulation, tol, threads, timeout=None):
    default = ROOT / "build" / "peers" / name / "bin" / "python"
    python = os.environ.get(f"{name.upper()}_PYTHON", str(default))
    if not Path(python).exists():
        print(f"[skip] {name}: no venv at {python} (run bench/peers/setup_peers.sh)", file=sys.stderr)
        return None
    out_file = problem_file.with_name(f"{name}_{formulation}_{tol:g}.npz")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [
        python,
        str(ROOT / "bench" / "peers" / f"run_{name}.py"),
        str(problem_file),
        str(out_file),
        "--formulation",
        formulation,
        "--tol",
        str(tol),
    ]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"[timeout] {name} (tol {tol:g}) ran past {timeout} s", file=sys.stderr)
        return {"timeout": timeout}
    if proc.returncode != 0:
        print(f"[fail] {name}: {proc.stderr[-2000:]}", file=sys.stderr)
        return None
    out = dict(np.load(out_file))
    out["wall"] = time.perf_counter() - t0
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--P", type=int, default=500)
    ap.add_argument("--beta-ratio", type=float, default=0.05)
    ap.add_argument("--formulation", default="gated", choices=["gated", "relu"])
    ap.add_argument("--peers", default="scnn,adelie")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tols", default="1e-1,1e-2,1e-3,1e-4,1e-6,1e-8")
    ap.add_argument("--dtypes", default="float64,float32", help="convexnn iteration precisions to run")
    ap.add_argument("--scnn-tols", default="1e-6,1e-8", help="scnn tolerances to run (its default is 1e-6)")
    ap.add_argument("--peer-timeout", type=float, default=None, help="seconds before a peer run is stopped")
    ap.add_argument("--markdown", default=None, help="also write the table to this file")
    a = ap.parse_args()
    cnn.set_num_threads(a.threads)

    X, y, pats, beta = make_problem(a.n, a.d, a.P, a.beta_ratio, a.seed, a.formulation)
    masks = pats.dense()
    tmp = Path(tempfile.mkdtemp(prefix="convexnn_bench_"))
    problem_file = tmp / "problem.npz"
    np.savez(problem_file, X=X, y=y, gates=pats.gates, masks=masks, beta=beta, threads=a.threads)

    rows = []  # (solver, setting, time, objective, violation, gap or '')
    ours = []
    for dtype in [d for d in a.dtypes.split(",") if d]:
        Xd = X.astype(dtype)  # float32: float32 iterations, float64 certificates (docs/api.md)
        for tol in [float(t) for t in a.tols.split(",")]:
            if dtype == "float32" and tol < 1e-6:
                continue  # float32 predictions cannot certify below ~1e-7 (the residual loses its digits)
            t0 = time.perf_counter()
            res = cnn.solve(Xd, y, beta, patterns=pats, formulation=a.formulation, tol=tol, max_iter=100_000)
            elapsed = time.perf_counter() - t0
            coef = {"U": res.coef_} if a.formulation == "gated" else {"V": res.coef_[0], "W": res.coef_[1]}
            obj, viol = score(X, masks, y, beta, a.formulation, coef)
            ours.append((f"{dtype} tol {tol:g}", elapsed, obj, viol, res))
            rows.append(("convexnn", f"{dtype}, tol={tol:g} ({res.solver})", elapsed, obj, viol, f"{res.gap:.1e}"))

    peer_settings = {"scnn": [float(t) for t in a.scnn_tols.split(",")], "adelie": [1e-7]}
    peer_rows = []
    for name in [p for p in a.peers.split(",") if p]:
        for tol in peer_settings.get(name, [1e-6]):
            out = run_peer(name, problem_file, a.formulation, tol, a.threads, a.peer_timeout)
            if out is None:
                continue
            if "timeout" in out:
                rows.append(
                    (name, f"tol={tol:g}: stopped after {a.peer_timeout} s", a.peer_timeout, np.inf, np.inf, "")
                )
                continue
            obj, viol = score(X, masks, y, beta, a.formulation, out)
            rows.append((name, f"tol={tol:g}", float(out["time"]), obj, viol, ""))
            peer_rows.append((name, tol, float(out["time"]), obj, viol))

    best = min(r[3] for r in rows if np.isfinite(r[3]))
    lines = [
        f"### {a.formulation} ReLU, n={a.n}, d={a.d}, P={pats.n_patterns} (of {a.P} gates), "
        f"beta={a.beta_ratio} x beta_max, squared loss, {a.threads} threads",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{time.strftime('%Y-%m-%d')}; best objective found {best:.10g}",
        "",
        "| solver | setting | time (s) | objective | rel. excess over best | violation | reported gap |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, setting, t, obj, viol, gap in rows:
        lines.append(
            f"| {name} | {setting} | {t:.3f} | {obj:.10g} | {(obj - best) / abs(best):.2e} | {viol:.1e} | {gap} |"
        )
    lines.append("")
    for name, tol, t, obj, viol in peer_rows:
        match = [o for o in ours if o[2] <= obj * (1 + 1e-12) and o[3] <= max(viol, 1e-6)]
        if match:
            fastest = min(match, key=lambda o: o[1])
            lines.append(
                f"- vs {name} (tol {tol:g}, {t:.3f} s, objective {obj:.10g}): convexnn reaches an objective "
                f"no worse in {fastest[1]:.3f} s ({fastest[0]}) -> **{t / fastest[1]:.1f}x faster**"
            )
        else:
            lines.append(f"- vs {name} (tol {tol:g}): no convexnn run in the ladder matched its objective")
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        Path(a.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(a.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()
