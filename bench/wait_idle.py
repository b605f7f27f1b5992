"""Run a command only once the machine is idle (for timings on a shared machine).

    python bench/wait_idle.py [--idle 0.9] [--window 2] [--timeout 1800] -- COMMAND [ARGS...]

Waits until the whole machine has been at least `--idle` idle (fraction of CPU time, all cores, from
/proc/stat) over a `--window`-second window, then runs COMMAND and exits with its status. Gives up after
`--timeout` seconds (exit 3) without running it. Each timing in bench/RESULTS.md that says "quiet window"
was taken this way. Linux only.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def _cpu_times():
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return idle, sum(fields)


def idle_fraction(window):
    i0, t0 = _cpu_times()
    time.sleep(window)
    i1, t1 = _cpu_times()
    return (i1 - i0) / max(1, t1 - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--idle", type=float, default=0.9, help="required idle fraction over the window (0..1)")
    ap.add_argument("--window", type=float, default=2.0, help="seconds")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds before giving up")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command (after --)")
    args = ap.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command given (put it after --)")
    if not 0.0 < args.idle <= 1.0:
        ap.error(f"--idle must be in (0, 1], got {args.idle}")
    if args.window <= 0:
        ap.error(f"--window must be positive, got {args.window}")
    deadline = time.monotonic() + args.timeout
    while True:
        frac = idle_fraction(args.window)
        if frac >= args.idle:
            break
        if time.monotonic() > deadline:
            print(
                f"wait_idle: machine never {args.idle:.0%} idle within {args.timeout:g} s (last {frac:.0%})",
                file=sys.stderr,
            )
            return 3
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
