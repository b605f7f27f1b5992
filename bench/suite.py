"""Benchmark suite: convexnn against scnn, adelie, CVXPY + Clarabel and Adam on one problem grid.

    python bench/suite.py --grid full --time-limit 60 --out bench/results/suite      # the full table
    python bench/suite.py --grid small --out bench/results/suite-small                # a quick look
    python bench/suite.py --grid smoke --solvers convexnn,clarabel,adam --out DIR      # CI smoke test
    python bench/suite.py --report-only --out DIR         # tables + plot again from DIR/records.jsonl

Each problem (bench/suite_data.py) is built once and saved to an .npz; every solver runs in its OWN subprocess
on that file (same X, y, deduplicated patterns and beta), with the same thread count (default 1: OMP, OpenBLAS,
MKL and torch threads), and times its solve only. The parent kills a child ``--time-limit`` seconds (+ a few
seconds of grace) after the child signals that its solve started; convexnn and Adam also get the limit
themselves and return their best point at their next check after it. Peak memory is the solver process's ru_maxrss
(measured by the small launcher bench/suite_launch.py, so that the suite's own memory does not leak into it), i.e.
the whole process (interpreter and libraries included: the scnn process is ~0.7 GB at rest with torch).

Every returned point is scored by the parent with the SAME objective (convexnn.reference.objectives, docs/api.md
scaling: a sum over samples, beta * sum of group norms); Adam with its own non-convex objective
``L + beta/2 (||W1||^2 + ||w2||^2)`` of the gated network on the same gates, whose minimum equals the convex
gated optimum. "excess" is (objective - best) / |best|, best = the lowest objective any solver reached on the
problem (feasible points only for relu); the table names the solver that reached it.

Results go to OUT/records.jsonl (one line per solver run, appended as they finish: ``--resume`` skips runs
already there), OUT/results.md (tables, machine, date, versions) and OUT/time_vs_excess.png.
Peers run in their own venvs (bench/peers/setup_peers.sh); a missing venv is recorded as skipped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite_report  # noqa: E402
from suite_data import REAL_SETS, build_problem  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
GRACE_S = 5.0  # after the cap, before a peer's (or CVXPY's) run is killed
STARTUP_LIMIT_S = 300  # imports and data loading before the solve starts


# ---------------------------------------------------------------------------------------------------- grids
def grid(name, P_real, beta_ratio, seed):
    """List of problem specs (dicts) of a named grid."""

    def syn(n, d, P):
        return dict(id=f"syn-n{n}-d{d}-P{P}", kind="synthetic", n=n, d=d, P=P, beta_ratio=beta_ratio, seed=seed)

    def real(name, P=P_real):
        return dict(id=f"{name}-P{P}", kind="real", name=name, P=P, beta_ratio=beta_ratio, seed=seed)

    if name == "smoke":
        return [syn(120, 4, 16), real("diabetes", P=16)]
    if name == "small":
        return [syn(1000, 10, 100), syn(1000, 50, 500), syn(10000, 50, 500), real("diabetes"), real("boston")]
    if name == "full":
        synthetic = [
            syn(n, d, P) for n, d, P in itertools.product((1000, 10000, 100000), (10, 50, 200), (100, 500, 2000))
        ]
        return [real(r) for r in REAL_SETS] + synthetic
    raise ValueError(f"unknown grid {name!r}")


# ---------------------------------------------------------------------------------------------------- solvers
def solver_runs(solvers, convexnn_ladder, scnn_tols, adelie_tols, adam_lrs):
    """(solver, setting dict) pairs in run order."""
    runs = []
    for s in solvers:
        if s == "convexnn":
            for item in convexnn_ladder:
                dtype, tol = item.split(":")
                runs.append(("convexnn", dict(dtype=dtype, tol=float(tol))))
        elif s == "scnn":
            runs += [("scnn", dict(tol=t)) for t in scnn_tols]
        elif s == "adelie":
            runs += [("adelie", dict(tol=t)) for t in adelie_tols]
        elif s == "clarabel":
            runs.append(("clarabel", {}))
        elif s == "adam":
            runs += [("adam", dict(lr=lr)) for lr in adam_lrs]
        else:
            raise ValueError(f"unknown solver {s!r}")
    return runs


def setting_label(solver, setting):
    if solver == "convexnn":
        return f"{setting['dtype']}, tol={setting['tol']:g}"
    if solver in ("scnn", "adelie"):
        return f"tol={setting['tol']:g}"
    if solver == "adam":
        return f"lr={setting['lr']:g}, full batch"
    return "tight tolerances (1e-10)"


def peer_python(name):
    return os.environ.get(f"{name.upper()}_PYTHON", str(ROOT / "build" / "peers" / name / "bin" / "python"))


def skip_reason(solver, meta, a):
    """Why a solver does not run on a problem (None: it runs). Recorded in the table, never silent."""
    n, d, P = meta["n"], meta["d"], meta["P"]
    if solver in ("scnn", "adelie") and not Path(peer_python(solver)).exists():
        return f"no venv at {peer_python(solver)} (bench/peers/setup_peers.sh)"
    if solver == "clarabel" and n * d * P > a.clarabel_max_ndp:
        return f"n*d*P = {n * d * P:.1e} > {a.clarabel_max_ndp:.1e} (interior point; minutes to hours)"
    if solver == "scnn":
        need_gb = 4 * n * P * 8 / 1e9  # D (n x P) float64, its einsum intermediates, the expanded product
        if need_gb > a.mem_limit_gb:
            return f"dense n x P matrices need ~{need_gb:.0f} GB > --mem-limit-gb {a.mem_limit_gb:g}"
    return None


def child_command(solver, setting, problem_file, out_file, ready_file, a):
    if solver in ("scnn", "adelie"):
        return [
            peer_python(solver),
            str(BENCH / "peers" / f"run_{solver}.py"),
            str(problem_file),
            str(out_file),
            "--formulation",
            "gated",
            "--tol",
            str(setting["tol"]),
            "--ready",
            str(ready_file),
        ]
    cmd = [
        sys.executable,
        str(BENCH / "suite_child.py"),
        solver,
        str(problem_file),
        str(out_file),
        "--ready",
        str(ready_file),
    ]
    if solver == "convexnn":
        cmd += ["--tol", str(setting["tol"]), "--dtype", setting["dtype"], "--time-limit", str(a.time_limit)]
    elif solver == "adam":
        cmd += ["--lr", str(setting["lr"]), "--time-limit", str(a.time_limit)]
    return cmd


def run_child(cmd, env, cap, ready_file, log_file, honours_limit=False):
    """Run cmd through bench/suite_launch.py; stop it ``kill_after(cap)`` seconds after ``ready_file`` appears.

    Returns (exit code or None if killed, killed: bool, peak RSS of the solver process in MB, wall seconds).
    """
    rusage_file = log_file.with_suffix(".rusage.json")
    rusage_file.unlink(missing_ok=True)
    t0 = time.perf_counter()
    t_ready = None
    with open(log_file, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-S", str(BENCH / "suite_launch.py"), str(rusage_file), *cmd],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stopped = False
        while proc.poll() is None:
            now = time.perf_counter()
            if t_ready is None and ready_file.exists():
                t_ready = now
            late = (t_ready is not None and now - t_ready > kill_after(cap, honours_limit)) or (
                t_ready is None and now - t0 > STARTUP_LIMIT_S
            )
            if late and not stopped:
                proc.send_signal(signal.SIGTERM)  # the launcher kills the solver and writes its rusage
                stopped = True
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                break
            time.sleep(0.05)
    usage = json.loads(rusage_file.read_text()) if rusage_file.exists() else {}
    rusage_file.unlink(missing_ok=True)
    killed = stopped or usage.get("killed", False)
    peak_mb = usage.get("maxrss_kb", float("nan")) / 1024.0
    return (None if killed else usage.get("exit_code", proc.returncode)), killed, peak_mb, time.perf_counter() - t0


def kill_after(cap, honours_limit=False):
    """Seconds after its solve started that a run is stopped.

    Peers and CVXPY cannot return a point at a deadline: they are stopped at the cap plus a little grace.
    convexnn and Adam get ``time_limit`` themselves and return their best point at their next check, which can
    come well after the cap on large problems (one iteration of either is seconds at n = 1e5, d = 200, P = 2000):
    they are only stopped as a backstop, and the table shows the time they actually took.
    """
    if honours_limit:
        return 3 * cap + 30
    return cap + max(GRACE_S, 0.25 * cap)


# ---------------------------------------------------------------------------------------------------- scoring
def score_gated(X, masks, y, beta, U):
    """Gated objective (convexnn.reference) at U (P, d, c); zero blocks are dropped first (they add nothing)."""
    from convexnn.reference.objectives import gated_objective

    U = np.asarray(U, dtype=np.float64)
    nz = np.flatnonzero(np.any(U != 0, axis=(1, 2)))
    if nz.size == 0:
        return gated_objective(X, masks[:, :1], np.zeros((1,) + U.shape[1:]), y, beta, "squared")
    return gated_objective(X, masks[:, nz], U[nz], y, beta, "squared")


def score_gated_network(X, masks, y, beta, W1, w2):
    """Non-convex gated objective L(sum_j 1[X g_j >= 0] (X W1_j) w2_j, y) + beta/2 (||W1||^2 + ||w2||^2)."""
    from convexnn.reference.losses import loss_value

    H = X @ np.asarray(W1, dtype=np.float64).T
    z = np.where(masks, H, 0.0) @ np.asarray(w2, dtype=np.float64).reshape(-1)
    return loss_value(z, y, "squared") + 0.5 * beta * (float(np.sum(W1**2)) + float(np.sum(w2**2)))


# ---------------------------------------------------------------------------------------------------- driver
def run_problem(spec, a, runs, records_file, done, work):
    problem_file = work / f"{spec['id']}.npz"
    todo = [(s, st) for s, st in runs if (spec["id"], s, setting_label(s, st)) not in done]
    if not todo:
        return
    t0 = time.perf_counter()
    meta = build_problem(spec, problem_file, a.threads, work)
    print(
        f"== {spec['id']}: n={meta['n']} d={meta['d']} P={meta['P']} (of {meta['P_drawn']} gates) "
        f"beta={meta['beta']:.4g}; built in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    prob = np.load(problem_file)
    X, y, masks, beta = prob["X"], prob["y"], prob["masks"], float(prob["beta"])
    env = dict(os.environ)
    for var in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
    ):
        env[var] = str(a.threads)
    for solver, setting in todo:
        rec = dict(
            problem=spec["id"],
            kind=spec["kind"],
            **{k: meta[k] for k in ("n", "d", "P", "P_drawn", "beta", "source")},
            beta_ratio=spec["beta_ratio"],
            solver=solver,
            setting=setting_label(solver, setting),
            threads=a.threads,
            time_limit=a.time_limit,
        )
        reason = skip_reason(solver, meta, a)
        if solver == "convexnn" and not reason and capped_looser(records_file, spec["id"], setting):
            reason = "a looser convexnn tolerance already stopped at the time cap (this run would too)"
        if reason:
            rec.update(status=f"skipped: {reason}")
        else:
            tag = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{spec['id']}_{solver}_{rec['setting']}")
            out_file, ready_file, log_file = work / f"{tag}.out.npz", work / f"{tag}.ready", work / f"{tag}.log"
            for f in (out_file, ready_file):
                f.unlink(missing_ok=True)
            cmd = child_command(solver, setting, problem_file, out_file, ready_file, a)
            honours = solver in ("convexnn", "adam")
            rc, killed, peak_mb, wall = run_child(cmd, env, a.time_limit, ready_file, log_file, honours)
            rec.update(peak_mb=round(peak_mb, 1), wall=round(wall, 3))
            if killed:
                rec.update(
                    status=f"timeout: stopped {kill_after(a.time_limit, honours):g} s after its solve started"
                    if ready_file.exists()
                    else f"timeout: did not start within {STARTUP_LIMIT_S} s"
                )
            elif rc != 0 or not out_file.exists():
                lines = [ln for ln in log_file.read_text(errors="replace").splitlines() if ln.strip()]
                rec.update(status=f"error: {(lines[-1] if lines else f'exit code {rc}')[:200]}")
            else:
                rec.update(score_output(solver, np.load(out_file), X, masks, y, beta))
            out_file.unlink(missing_ok=True)
        print(
            f"   {solver:9s} {rec['setting']:28s} {rec['status'][:60]:60s} t={rec.get('time', float('nan')):9.3f} "
            f"obj={rec.get('objective', float('nan')):.10g} peak={rec.get('peak_mb', 0):.0f} MB",
            flush=True,
        )
        with open(records_file, "a") as f:
            f.write(json.dumps(rec) + "\n")
    if not a.keep_problems:
        problem_file.unlink(missing_ok=True)


def capped_looser(records_file, problem, setting):
    """True when a convexnn run of this problem with the same dtype and a looser tol hit the time cap."""
    if not records_file.exists():
        return False
    for line in records_file.read_text().splitlines():
        r = json.loads(line)
        if r["problem"] == problem and r["solver"] == "convexnn" and r["setting"].startswith(setting["dtype"]):
            tol = float(r["setting"].split("tol=")[1])
            if tol > setting["tol"] and (r.get("solver_status") == "time_limit" or r["status"].startswith("timeout")):
                return True
    return False


def score_output(solver, out, X, masks, y, beta):
    rec = dict(time=float(out["time"]), child_threads=int(out["threads"]) if "threads" in out else None)
    if "cpu_time" in out:
        rec["cpu_time"] = float(out["cpu_time"])
    if solver == "adam":
        final = score_gated_network(X, masks, y, beta, out["W1"], out["w2"])
        rec.update(
            objective=float(out["best_objective"]),
            time=float(out["best_time"]),
            total_time=float(out["time"]),
            final_objective_rescored=final,
            final_objective_reported=float(out["final_objective"]),
            violation=0.0,
            status="ok" if str(out["status"]) != "diverged" else "diverged",
            n_iter=int(out["n_iter"]),
            adam_status=str(out["status"]),
        )
        rec["history"] = downsample(out["hist_time"], out["hist_objective"])
        return rec
    rec.update(objective=score_gated(X, masks, y, beta, out["U"]), violation=0.0, status="ok")
    if solver == "convexnn":
        status = str(out["status"])
        rec.update(
            status="ok" if status == "converged" else f"ok ({status})",
            solver_status=status,
            reported_gap=float(out["reported_gap"]),
            n_iter=int(out["n_iter"]),
            solver_name=str(out["solver_name"]),
            history=downsample(out["hist_time"], out["hist_objective"]),
        )
    elif solver == "clarabel":
        rec.update(status="ok" if str(out["status"]) == "optimal" else f"ok ({out['status']})")
    U = np.asarray(out["U"])
    rec["active"] = int(np.count_nonzero(np.any(U != 0, axis=(1, 2))))
    return rec


def downsample(t, f, k=60):
    t, f = np.asarray(t, dtype=float), np.asarray(f, dtype=float)
    if t.size > k:
        idx = np.unique(np.linspace(0, t.size - 1, k).round().astype(int))
        t, f = t[idx], f[idx]
    return [[float(a), float(b)] for a, b in zip(t, f)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", default="small", choices=["smoke", "small", "full"])
    ap.add_argument("--only", default=None, help="comma-separated problem ids (or substrings) to run")
    ap.add_argument("--out", default="bench/results/suite")
    ap.add_argument("--solvers", default="convexnn,scnn,adelie,clarabel,adam")
    ap.add_argument(
        "--convexnn-ladder",
        default="float64:1e-3,float64:1e-6",
        help="convexnn runs as dtype:tol pairs (each its own process)",
    )
    ap.add_argument("--scnn-tols", default="1e-6", help="scnn R-FISTA tolerances (its default is 1e-6)")
    ap.add_argument("--adelie-tols", default="1e-7")
    ap.add_argument(
        "--adam-lrs",
        default="3e-2",
        help="Adam step sizes (3e-2: best of 1e-1, 3e-2, 1e-2, 1e-3 on syn-n1000-d50-P500, 10 s)",
    )
    ap.add_argument("--time-limit", type=float, default=60.0, help="solve-time cap per solver run (seconds)")
    ap.add_argument("--threads", type=int, default=1, help="threads for every solver (default 1)")
    ap.add_argument("--P-real", type=int, default=500, help="gates drawn for the real data sets")
    ap.add_argument("--beta-ratio", type=float, default=0.05, help="beta = ratio * beta_max")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clarabel-max-ndp", type=float, default=3e6, help="skip CVXPY+Clarabel above this n*d*P")
    ap.add_argument("--mem-limit-gb", type=float, default=12.0, help="skip scnn when its dense arrays exceed this")
    ap.add_argument("--resume", action="store_true", help="keep OUT/records.jsonl and skip runs already in it")
    ap.add_argument("--keep-problems", action="store_true", help="keep the problem .npz files in OUT/work")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--no-plot", action="store_true")
    a = ap.parse_args(argv)

    out = Path(a.out)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    records_file = out / "records.jsonl"
    command = "python bench/suite.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if not a.report_only:
        if not a.resume:
            records_file.unlink(missing_ok=True)
        done = set()
        if records_file.exists():
            for line in records_file.read_text().splitlines():
                r = json.loads(line)
                done.add((r["problem"], r["solver"], r["setting"]))
        runs = solver_runs(
            [s for s in a.solvers.split(",") if s],
            [x for x in a.convexnn_ladder.split(",") if x],
            [float(t) for t in a.scnn_tols.split(",") if t],
            [float(t) for t in a.adelie_tols.split(",") if t],
            [float(t) for t in a.adam_lrs.split(",") if t],
        )
        specs = grid(a.grid, a.P_real, a.beta_ratio, a.seed)
        if a.only:
            keys = a.only.split(",")
            specs = [s for s in specs if any(k in s["id"] for k in keys)]
        t0 = time.perf_counter()
        for spec in specs:
            run_problem(spec, a, runs, records_file, done, work)
        print(f"suite: {len(specs)} problems in {time.perf_counter() - t0:.0f} s", flush=True)
        (out / "run_info.json").write_text(
            json.dumps(
                dict(
                    command=command,
                    finished=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    info=suite_report.environment_info(a.threads),
                ),
                indent=1,
            )
        )
    records = [json.loads(line) for line in records_file.read_text().splitlines()] if records_file.exists() else []
    info_file = out / "run_info.json"
    run_info = (
        json.loads(info_file.read_text())
        if info_file.exists()
        else dict(command=command, info=suite_report.environment_info(a.threads))
    )
    text = suite_report.markdown(records, run_info)
    (out / "results.md").write_text(text)
    print(text)
    if not a.no_plot:
        suite_report.plot(records, out / "time_vs_excess.png")


if __name__ == "__main__":
    main()
