"""Tiny launcher that measures one solver process's peak memory (started by bench/suite.py with ``python -S``).

    python -S bench/suite_launch.py RUSAGE.json CMD [ARGS...]

Forks and execs CMD in its own process group, waits for it and writes ``{"maxrss_kb", "exit_code", "killed"}``.
It exists because Linux carries a process's peak RSS across fork + exec: a child started directly by the suite
would report at least the suite's own (large: it holds the data) peak. This launcher is ~10 MB, so the peak it
reports is the solver's. SIGTERM makes it SIGKILL the solver's process group and still write the record.
"""

import json
import os
import signal
import sys


def main():
    out, cmd = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        os.execv(cmd[0], cmd)
    killed = []

    def stop(signum, frame):
        killed.append(signum)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, stop)
    _, status, usage = os.wait4(pid, 0)  # retried after the handler runs (PEP 475)
    with open(out, "w") as f:
        json.dump(
            {"maxrss_kb": usage.ru_maxrss, "exit_code": os.waitstatus_to_exitcode(status), "killed": bool(killed)}, f
        )


if __name__ == "__main__":
    main()
