"""What each layer of the sandbox costs per program: fork + exit, then each containment step added.

Runs as root in a zygote-like process that has entered the worker isolation
(``sandbox.isolation.setup_isolation``: namespaces, file-system view, cgroup), and forks
``--programs`` empty programs per variant, measuring CPU (the child's and the forking
process's) and wall time per program:

* ``fork + exit``: the bare cost every design pays;
* ``+ per-program view``: the program's own mount + IPC namespace, fresh /tmp, /var/tmp,
  /dev/shm, /proc detached (``fsview.enter_program_view``);
* ``+ uid + capabilities``: setgroups / setgid / setuid to the sandbox uid, capabilities cleared;
* ``spawn_sandboxed``: the whole per-program path the executor uses (rlimits, fds, view, uid,
  work dir, cgroup), plus ``finish_program`` (sweep, cgroup check).

    sudo python benchmarks/bench_isolation.py [--programs 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trl_codefeedback" / "execution" / "sandbox"))

import fsview  # noqa: E402
import isolation  # noqa: E402
import oscalls  # noqa: E402

LIMITS = {"test_timeout_s": 3.0, "program_timeout_s": 10.0, "memory_mb": 1024, "output_bytes": 1 << 20, "max_processes": 32}


def measure(n: int, run_one) -> tuple[float, float]:
    """(CPU ms, wall ms) per program for ``n`` calls of ``run_one``."""
    c0, s0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(n):
        run_one()
    c1, s1, t1 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    cpu = (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) + (s1.ru_utime + s1.ru_stime - s0.ru_utime - s0.ru_stime)
    return 1000 * cpu / n, 1000 * (t1 - t0) / n


def forked(body):
    def run_one() -> None:
        pid = isolation.fork_bare()
        if pid == 0:
            try:
                body()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
    return run_one


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (the dedicated-uid and cgroup layers need it)")
    uid = 200_000 + os.getpid()
    info = isolation.setup_isolation(uid, 64)
    view = isolation._STATE["view"]
    if isolation._STATE["cgroup"] is not None:
        isolation.cgroups.create(isolation._STATE["cgroup"], LIMITS["memory_mb"], LIMITS["max_processes"])
    print(f"isolation: { {k: info[k] for k in ('network', 'filesystem', 'setuid', 'cgroup', 'mode')} }")
    devnull = os.open(os.devnull, os.O_RDWR)

    def uid_and_caps() -> None:
        fsview.enter_program_view(view)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        oscalls.clear_capabilities()

    def whole_path() -> None:
        pid, workdir = isolation.spawn_sandboxed(lambda: None, LIMITS, uid, info, (devnull, devnull, devnull, devnull))
        os.waitpid(pid, 0)
        isolation.finish_program(pid, uid, info, workdir)

    variants = {
        "fork + exit": forked(lambda: None),
        "+ per-program view": forked(lambda: fsview.enter_program_view(view)),
        "+ uid + capabilities": forked(uid_and_caps),
        "spawn_sandboxed + finish_program": whole_path,
    }
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    for _ in range(args.repeats):  # interleaved, so load changes hit every variant alike
        for name, run_one in variants.items():
            results[name].append(measure(args.programs, run_one))
    print(f"per program, median of {args.repeats} repeats of {args.programs} programs (CPU = program + forking process):")
    base = statistics.median(c for c, _ in results["fork + exit"])
    for name, rows in results.items():
        cpu, wall = statistics.median(c for c, _ in rows), statistics.median(w for _, w in rows)
        print(f"  {name:34s} CPU {cpu:5.2f} ms ({cpu - base:+.2f} over fork + exit), wall {wall:5.2f} ms")


if __name__ == "__main__":
    main()
