"""Where one program's cost goes: CPU per process role and page faults per stage of the program process.

The executor's throughput on a small machine is bound by a fixed cost per program (a fresh,
sandboxed process forked from the warm zygote), not by the tests. This script measures it on one
worker, one program at a time, for a one-assert MBPP-style program:

* CPU milliseconds per program of the trusted oracle (worker), the zygote, and the program
  processes (the zygote's reaped children), and the worker's share of a core (1.0: never waiting);
* minor page faults per program of the program process and of the zygote (copy-on-write faults
  after each fork are most of the cost on a VM);
* the program process's faults by stage: forked and sandboxed, its start request read and its
  runner set up, the code compiled, the module run, one call answered (then its exit);
* the floor every fork-per-program design pays on this machine: CPU of a bare fork + exit of a
  warm interpreter like the zygote (forking side + child), and the CPU cost of one copy-on-write
  page fault (a child writing to pages it shares with its parent).

    python benchmarks/bench_program_cost.py [--programs 600] [--uid-base 200000]

Run it on a quiet machine; the fault counts do not depend on load, the CPU figures do a little.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SANDBOX = Path(__file__).resolve().parents[1] / "trl_codefeedback" / "execution" / "sandbox"
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> dict:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    f = data[data.rfind(b")") + 2:].split()
    return {"minflt": int(f[7]), "cminflt": int(f[8]), "cpu": (int(f[11]) + int(f[12])) / TICK,
            "ccpu": (int(f[13]) + int(f[14])) / TICK}


def program(i: int):
    from trl_codefeedback.execution import Program

    return Program(f"def f(x):\n    return x + {i}\n", {"kind": "asserts", "asserts": [f"assert f(1) == {i + 1}"]})


def per_role(n: int) -> None:
    from trl_codefeedback.execution import Executor

    with Executor(workers=1, cache_size=0) as ex:
        ex.run([program(i) for i in range(20)])
        worker = ex._workers[0].proc.pid
        zygote = int(subprocess.check_output(["pgrep", "-P", str(worker)]).split()[0])
        w0, z0, t0 = _stat(worker), _stat(zygote), time.perf_counter()
        ex.run([program(i) for i in range(1000, 1000 + n)])
        wall = time.perf_counter() - t0
        w1, z1 = _stat(worker), _stat(zygote)
    oracle, zyg, prog = ((w1["cpu"] - w0["cpu"]), (z1["cpu"] - z0["cpu"]), (z1["ccpu"] - z0["ccpu"]))
    print(f"one worker, {n} programs: {wall / n * 1e3:.2f} ms wall per program")
    print(f"  CPU ms per program: oracle {oracle / n * 1e3:.2f}, zygote {zyg / n * 1e3:.2f}, program {prog / n * 1e3:.2f}, "
          f"sum {(oracle + zyg + prog) / n * 1e3:.2f} (share of one core busy: {(oracle + zyg + prog) / wall:.2f})")
    print(f"  minor page faults per program: program process {(z1['cminflt'] - z0['cminflt']) / n:.0f}, "
          f"zygote {(z1['minflt'] - z0['minflt']) / n:.0f}, oracle {(w1['minflt'] - w0['minflt']) / n:.1f}")


def stages(uid_base: int) -> None:
    """The program process's faults at each stage (hooks installed before the zygote forks)."""
    sys.path.insert(0, str(SANDBOX))
    import candidate
    import isolation
    import worker_main
    import zygote
    from oracle import Oracle
    from testplan import PlanCache

    def mark(tag: str) -> None:  # fd 2 of a program is the file the oracle passes as its stderr below
        os.write(2, f"{tag} {resource.getrusage(resource.RUSAGE_SELF).ru_minflt}\n".encode())

    def wrap(owner, name, before=None, after=None):
        orig = getattr(owner, name)

        def hooked(*a, **k):
            if before:
                mark(before)
            r = orig(*a, **k)
            if after:
                mark(after(*a) if callable(after) else after)
            return r
        setattr(owner, name, hooked)

    wrap(isolation, "_enter_program", after="forked and sandboxed")
    wrap(candidate.CandidateRunner, "start", before="start request read, runner set up", after="compiled")
    wrap(candidate.CandidateRunner, "handle", after=lambda self, req: f"answered {req.get('op')}")
    worker_main._preload()
    zsock, _, info = zygote.start_zygote(uid_base + os.getpid() if os.geteuid() == 0 else -1, True, 512)
    oracle = Oracle(zsock, PlanCache())
    limits = {"test_timeout_s": 3.0, "program_timeout_s": 10.0, "wall_time_factor": 4.0, "memory_mb": 1024,
              "output_bytes": 1 << 20, "max_processes": 32}
    def job(i: int) -> dict:
        return {"code": f"def f(x):\n    return x + {i}\n", "num_tests": 1, "limits": limits,
                "tests": {"kind": "asserts", "asserts": [f"assert f(1) == {i + 1}"]}}
    for i in range(30):
        oracle.run(job(i))
    fd, log_name = tempfile.mkstemp(prefix="tcf-stages-")
    os.close(fd)
    os.chmod(log_name, 0o666)  # written by the program (the sandbox uid) through the fd the oracle passes
    real_open = os.open

    def stderr_to_log(path, flags, *a):  # the oracle opens os.devnull for each program's stderr
        if path == os.devnull and flags == os.O_WRONLY:
            return real_open(log_name, os.O_WRONLY | os.O_APPEND)
        return real_open(path, flags, *a)

    os.open = stderr_to_log
    try:
        oracle.run(job(999))
    finally:
        os.open = real_open
    time.sleep(0.2)
    lines = Path(log_name).read_text().split("\n")
    os.unlink(log_name)
    print(f"program process, page faults so far at each stage (sandbox mode {info.get('mode')}):")
    prev = 0
    for line in filter(None, lines):
        tag, count = line.rsplit(" ", 1)
        print(f"  {tag:38s} {int(count):5d}  (+{int(count) - prev})")
        prev = int(count)
    print("  (then: exit; a process that forks and exits at once takes ~100 faults on this VM)")


def _fork_children(n: int, child) -> tuple[float, float]:
    """Fork ``n`` children (as the zygote forks) that run ``child()`` then exit; (forking side CPU,
    children CPU) per fork, in ms."""
    import isolation

    t0 = os.times()
    for _ in range(n):
        pid = isolation.fork_bare()
        if pid == 0:
            child()
            os._exit(0)
        os.waitpid(pid, 0)
    t1 = os.times()
    own = (t1.user + t1.system - t0.user - t0.system) / n * 1e3
    kids = (t1.children_user + t1.children_system - t0.children_user - t0.children_system) / n * 1e3
    return own, kids


def floor(n: int, pages: int = 512) -> None:
    """What a fork per program costs here before any of our code runs, and what one fault costs."""
    import gc

    sys.path.insert(0, str(SANDBOX))
    import worker_main

    worker_main._preload()  # the zygote's modules: a fork of a comparable address space
    shared = bytearray(pages * 4096)
    for i in range(0, len(shared), 4096):
        shared[i] = 1  # resident before the fork: the child's writes are copy-on-write faults
    gc.collect()
    gc.freeze()

    def touch() -> None:
        for i in range(0, len(shared), 4096):
            shared[i] = 2

    bare_own, bare_kid = _fork_children(n, lambda: None)
    _, touch_kid = _fork_children(n, touch)
    per_fault_us = (touch_kid - bare_kid) / pages * 1e3
    print(f"floor (a fresh interpreter with the zygote's modules, {n} forks):")
    print(f"  fork + immediate exit: CPU {bare_own + bare_kid:.2f} ms per program "
          f"(forking side {bare_own:.2f}, child {bare_kid:.2f})")
    print(f"  one copy-on-write page fault: {per_fault_us:.1f} us of CPU ({pages} pages written per child)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=600)
    ap.add_argument("--uid-base", type=int, default=200000, help="sandbox uids for the stage run (root only)")
    ap.add_argument("--floor-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.floor_only:
        floor(args.programs)
        return
    per_role(args.programs)
    stages(args.uid_base)
    # In a fresh interpreter: this one has imported the library (a larger address space to fork).
    subprocess.run([sys.executable, __file__, "--floor-only", "--programs", str(args.programs)], check=True)


if __name__ == "__main__":
    main()
