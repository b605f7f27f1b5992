"""Tables and plot of the benchmark suite (bench/suite.py) from its records (one dict per solver run)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXCESS_FLOOR = 1e-12  # excesses below this (0 included) are plotted on this line
FEASIBLE = 1e-6  # relative violation up to which a point may serve as the best known optimum


def _run(cmd, timeout=60):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment_info(threads):
    """Machine, date, versions (ours and the peers' venvs), for the table header."""
    import convexnn

    model = ""
    for line in _run(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = _run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    info = dict(
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        cpu=model or platform.processor(),
        cores=os.cpu_count(),
        memory_gb=round(mem_gb, 1),
        threads=threads,
        python=platform.python_version(),
        convexnn=f"{convexnn.__version__} ({convexnn.__file__})",
        commit=commit + (" + uncommitted changes" if dirty else ""),
        core_built=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(convexnn._core.__file__))),
        numpy=_version("numpy"),
        cvxpy=_version("cvxpy"),
        clarabel=_version("clarabel"),
    )
    from suite import peer_python  # noqa: PLC0415 (suite imports this module)

    probe = "import importlib.metadata as m, sys; print(' '.join(f'{d} {m.version(d)}' for d in sys.argv[1:]))"
    for name, dists in (("scnn", ["pyscnn", "torch", "numpy"]), ("adelie", ["adelie", "numpy"])):
        python = peer_python(name)
        info[name] = _run([python, "-c", probe, *dists]) if Path(python).exists() else "venv missing"
    return info


def _label(r):
    return f"{r['solver']} ({r['setting']})"


def _has_objective(r):
    return "objective" in r and np.isfinite(r["objective"])


def annotate(records):
    """Per problem: the best objective (feasible points), who reached it, and each record's relative excess."""
    best = {}
    for r in records:
        if _has_objective(r) and r.get("violation", 0.0) <= FEASIBLE:
            if r["problem"] not in best or r["objective"] < best[r["problem"]][0]:
                best[r["problem"]] = (r["objective"], _label(r))
    for r in records:
        if _has_objective(r) and r["problem"] in best:
            b = best[r["problem"]][0]
            r["excess"] = (r["objective"] - b) / abs(b) if b != 0 else (0.0 if r["objective"] == 0 else np.inf)
    return best


def _short_status(r):
    s = r["status"]
    for key in ("skipped", "timeout", "error"):
        if s.startswith(key):
            return key
    return s


def _cell(r):
    if not _has_objective(r):
        return _short_status(r)
    mark = " (cap)" if "time_limit" in r["status"] else ""
    ex = r["excess"]
    ex_s = "**0**" if ex == 0 else f"{ex:.1e}"
    return f"{r['time']:.3g} s / {ex_s}{mark}"


def _problem_order(records):
    seen = []
    for r in records:
        if r["problem"] not in seen:
            seen.append(r["problem"])
    return seen


def markdown(records, run_info):
    """The suite's markdown report."""
    records = [dict(r) for r in records]
    best = annotate(records)
    info = run_info.get("info", {})
    problems = _problem_order(records)
    columns = []
    for r in records:
        if _label(r) not in columns:
            columns.append(_label(r))
    by_key = {(r["problem"], _label(r)): r for r in records}
    first = {p: next(r for r in records if r["problem"] == p) for p in problems}
    tl = sorted({r["time_limit"] for r in records})
    lines = [
        f"Machine: {info.get('cpu', '?')}, {info.get('cores', '?')} cores, {info.get('memory_gb', '?')} GiB; "
        f"{info.get('threads', '?')} thread(s) per solver; run finished {run_info.get('finished', info.get('date'))}.",
        f"Command: `{run_info.get('command', '?')}`; solve-time cap {', '.join(f'{t:g}' for t in tl)} s per run.",
        f"convexnn {info.get('convexnn', '?')}, extension built {info.get('core_built', '?')}, "
        f"repository at commit {info.get('commit', '?')}; numpy {info.get('numpy', '?')}, "
        f"cvxpy {info.get('cvxpy', '?')}, clarabel {info.get('clarabel', '?')}; scnn venv: {info.get('scnn', '?')}; "
        f"adelie venv: {info.get('adelie', '?')}.",
        "",
        "Cells: solve time / relative objective excess over the best objective any solver reached on that problem "
        "(**0** = that solver reached it; `(cap)` = stopped by the time cap, best point returned). For Adam: the "
        'best objective of its run and the training time at which it was reached. "gap certified by convexnn": '
        "the relative duality gap of convexnn's lowest-objective run, i.e. the true optimum is at most that fraction "
        "below the best objective (the bound that matters where every run stopped at the cap).",
        "",
        "| problem | n | d | P | best objective (reached by) | gap certified by convexnn | "
        + " | ".join(columns)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(columns),
    ]
    for p in problems:
        f = first[p]
        b = best.get(p)
        b_s = f"{b[0]:.10g} ({b[1]})" if b else "none"
        cells = [(_cell(by_key[(p, c)]) if (p, c) in by_key else "") for c in columns]
        gap = certified_gap(records, p)
        gap_s = "" if gap is None else f"{gap:.1e}"
        lines.append(f"| {p} | {f['n']} | {f['d']} | {f['P']} | {b_s} | {gap_s} | " + " | ".join(cells) + " |")

    lines += [
        "",
        "Peak memory of each solver process (MB, ru_maxrss: interpreter and libraries included):",
        "",
        "| problem | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for p in problems:
        cells = []
        for c in columns:
            r = by_key.get((p, c))
            cells.append(f"{r['peak_mb']:.0f}" if r and "peak_mb" in r else "")
        lines.append(f"| {p} | " + " | ".join(cells) + " |")

    lines += ["", *time_to_match(records, problems), ""]
    reasons = {}
    for r in records:
        if not _has_objective(r):
            reasons.setdefault((r["solver"], _generic(r["status"])), []).append(r["problem"])
    if reasons:
        lines += ["Runs without a result:", ""]
        for (solver, status), which in reasons.items():
            lines.append(f"- {solver}: {status} — {len(which)} problem(s): {', '.join(which)}")
        lines.append("")
    lines += [
        "<details><summary>All runs (one row per solver run)</summary>",
        "",
        "| problem | solver | setting | status | time (s) | CPU (s) | objective | rel. excess | violation | "
        "peak MB | active groups | reported gap |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        obj = f"{r['objective']:.10g}" if _has_objective(r) else ""
        ex = f"{r['excess']:.2e}" if "excess" in r else ""
        t = f"{r['time']:.3f}" if "time" in r else ""
        viol = f"{r['violation']:.1e}" if "violation" in r else ""
        gap = f"{r['reported_gap']:.1e}" if "reported_gap" in r else ""
        cpu = f"{r['cpu_time']:.3f}" if "cpu_time" in r else ""
        lines.append(
            f"| {r['problem']} | {r['solver']} | {r['setting']} | {r['status']} | {t} | {cpu} | {obj} | "
            f"{ex} | {viol} | {r.get('peak_mb', '')} | {r.get('active', '')} | {gap} |"
        )
    lines += ["", "</details>", ""]
    sources = sorted({(r["problem"], r["source"]) for r in records if r["kind"] == "real"})
    if sources:
        lines += ["Real data: " + "; ".join(f"{p}: {s}" for p, s in sources) + ".", ""]
    return "\n".join(lines)


def _generic(status):
    """A status with its per-problem numbers removed, to group the runs that share it."""
    return re.sub(r"n\*d\*P = \S+ > ", "n*d*P > ", status)


def certified_gap(records, problem):
    """Relative duality gap reported by the convexnn run with the lowest objective on ``problem`` (None if none):
    a certificate that the true optimum is at most that far below that run's objective."""
    ours = [
        r
        for r in records
        if r["problem"] == problem and r["solver"] == "convexnn" and _has_objective(r) and "reported_gap" in r
    ]
    return min(ours, key=lambda r: r["objective"])["reported_gap"] if ours else None


def trajectory_time(records, problem, target):
    """First time at which a convexnn iterate's objective (its own history, same scaling) is <= target."""
    best = None
    for r in records:
        if r["problem"] == problem and r["solver"] == "convexnn":
            for t, f in r.get("history", []):
                if f <= target * (1 + 1e-12):
                    best = t if best is None else min(best, t)
                    break
    return best


def time_to_match(records, problems):
    """For each peer setting: on how many problems a convexnn run reached an objective no worse, faster."""
    out = []
    peers = []
    for r in records:
        if r["solver"] != "convexnn" and _label(r) not in peers:
            peers.append(_label(r))
    for peer in peers:
        ratios, slower, unmatched, no_result, traj = [], [], [], 0, []
        for p in problems:
            pr = [r for r in records if r["problem"] == p and _label(r) == peer]
            if not pr or not _has_objective(pr[0]):
                no_result += 1
                continue
            pr = pr[0]
            ours = [
                r
                for r in records
                if r["problem"] == p
                and r["solver"] == "convexnn"
                and _has_objective(r)
                and r["objective"] <= pr["objective"] * (1 + 1e-12) + 1e-300
            ]
            if not ours:
                unmatched.append(p)
                continue
            fastest = min(ours, key=lambda r: r["time"])
            ratio = pr["time"] / fastest["time"]
            (ratios if ratio >= 1 else slower).append((ratio, p))
            t_traj = trajectory_time(records, p, pr["objective"])
            if t_traj is not None:
                traj.append(pr["time"] / max(t_traj, 1e-6))
        allr = [x for x, _ in ratios + slower]
        line = f"- vs {peer}: convexnn reached an objective no worse on {len(allr)} problem(s)"
        if allr:
            line += (
                f", faster on {len(ratios)} (speed-up median {np.median(allr):.1f}x, "
                f"range {min(allr):.2g}x-{max(allr):.2g}x)"
            )
        if slower:
            line += "; slower on " + ", ".join(f"{p} ({x:.2g}x)" for x, p in slower)
        if traj:
            line += (
                f". Along convexnn's trajectory (its iterates' objective, from the solver history) the peer's "
                f"objective is reached {np.median(traj):.1f}x faster (median; range {min(traj):.2g}x-"
                f"{max(traj):.2g}x; slower on {sum(x < 1 for x in traj)} of {len(traj)})"
            )
        if unmatched:
            line += f"; no convexnn run matched its objective on {', '.join(unmatched)}"
        if no_result:
            line += f"; {no_result} problem(s) without a {peer.split()[0]} result"
        out.append(line + ".")
    return [
        "Time to match (the fastest convexnn run of the ladder whose returned, re-scored objective is no worse "
        "than the peer's; ratio = peer time / convexnn time):",
        "",
        *out,
    ]


def plot(records, path):
    """Time (log x) against relative objective excess (log y), one marker style per solver setting."""
    try:
        import matplotlib
    except ImportError:
        print("[plot] matplotlib is not installed: no plot written")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [dict(r) for r in records]
    annotate(records)
    styles = {
        "convexnn": ("o", "tab:blue"),
        "scnn": ("s", "tab:orange"),
        "adelie": ("^", "tab:green"),
        "clarabel": ("D", "tab:red"),
        "adam": ("v", "tab:purple"),
    }
    fig, ax = plt.subplots(figsize=(8.5, 6.8))
    labels = []
    for r in records:
        if _label(r) not in labels and _has_objective(r):
            labels.append(_label(r))
    fills = {}
    for lab in labels:
        pts = [r for r in records if _label(r) == lab and "excess" in r]
        solver = pts[0]["solver"]
        marker, color = styles.get(solver, ("x", "gray"))
        k = fills.setdefault(solver, 0)
        fills[solver] += 1
        capped = [r for r in pts if "time_limit" in r["status"]]
        pts = [r for r in pts if "time_limit" not in r["status"]]
        if pts:
            ax.scatter(
                [max(r["time"], 1e-4) for r in pts],
                [max(r["excess"], EXCESS_FLOOR) for r in pts],
                marker=marker,
                s=36,
                label=lab,
                edgecolors=color,
                facecolors=color if k == 0 else "none",
                alpha=0.8,
            )
        if capped:
            ax.scatter(
                [max(r["time"], 1e-4) for r in capped],
                [max(r["excess"], EXCESS_FLOOR) for r in capped],
                marker="x",
                s=40,
                color=color,
                alpha=0.9,
                label=f"{lab} stopped at the cap (excess relative to the other runs only)",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(EXCESS_FLOOR, color="gray", lw=0.5, ls=":")
    ax.set_xlabel("solve time (s), 1 thread")
    ax.set_ylabel(f"relative objective excess over the best found (<= {EXCESS_FLOOR:g} drawn at {EXCESS_FLOOR:g})")
    caps = sorted({r["time_limit"] for r in records})
    ax.set_title(
        f"Gated ReLU program: {len({r['problem'] for r in records})} problems, one marker per run "
        f"(cap {', '.join(f'{c:g}' for c in caps)} s)",
        fontsize=11,
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
