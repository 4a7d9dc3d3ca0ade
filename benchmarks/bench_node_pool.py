"""One pool per node vs one pool per rank: 2 ranks (2 processes) scoring at the same moment.

Each rank scores the same kind of batch at the same moment (a file barrier): ``--programs`` correct
programs, each doing about ``--cpu-s`` seconds of pure-Python CPU work in its one test (test
timeout ``--test-timeout`` s), each a distinct code variant so no cache answers. Modes:

* ``shared``: each rank uses ``Executor(backend="node")``: one service, one worker per core;
* ``separate``: each rank uses ``Executor()`` (its own pool, one worker per core): 2x the workers.

Reported per mode: worker processes (top-level ``worker_main.py``), peak memory of everything
that is not a rank (workers, their zygotes and programs, and the service) as the sum of RSS and of
PSS (RSS counts the pages forked processes share once per process; PSS splits them), throughput
(programs / wall time from the barrier to the last rank's end), and false timeouts (correct
programs judged anything but passed).

    python benchmarks/bench_node_pool.py [--programs 8] [--cpu-s 1.2] [--test-timeout 3] [--rounds 1] [--wall-time-factor F]

Numbers and what they show: docs/cluster.md.

Run it on a quiet machine (the 1-minute load average is printed before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trl_codefeedback.execution import Executor, Limits, Program  # noqa: E402
from trl_codefeedback.execution.node_service import node_paths  # noqa: E402

SPEC = {"kind": "asserts", "asserts": ["assert f(1) == 2"]}


def cpu_program(iterations: int, tag: str) -> Program:
    code = f"# {tag}\ndef f(x):\n    s = 0\n    for i in range({iterations}):\n        s += i % 7\n    return x + 1\n"
    return Program(code, SPEC)


def calibrate(cpu_s: float) -> int:
    """Loop iterations that take ``cpu_s`` seconds of CPU here (measured in this process, best of 3)."""
    n, best = 2_000_000, float("inf")
    for _ in range(3):
        t0 = time.process_time()
        s = 0
        for i in range(n):
            s += i % 7
        best = min(best, time.process_time() - t0)
    return int(n * cpu_s / best)


# ------------------------------------------------------------------------------------------ one rank


def rank_main(args) -> None:
    ex = Executor(backend=args.mode_backend)
    ex.run([Program(f"print({args.rank})", None)])  # start the pool (or the service, or join it)
    Path(args.ready).touch()
    while not os.path.exists(args.go):
        time.sleep(0.005)
    limits = _limits(args)
    programs = [cpu_program(args.iterations, f"{args.tag} rank {args.rank} program {i}") for i in range(args.programs)]
    t0 = time.time()
    fbs = ex.run(programs, limits=limits)
    t1 = time.time()
    Path(args.out).write_text(json.dumps({"t0": t0, "t1": t1, "statuses": [fb.status.value for fb in fbs],
                                          "durations": [fb.duration_s for fb in fbs]}))
    ex.close()


# ------------------------------------------------------------------------------------------ sampling


def _is_worker(p: psutil.Process) -> bool:
    try:
        return any("worker_main.py" in a for a in p.cmdline())
    except psutil.Error:
        return False


class Sampler(threading.Thread):
    """Peak worker count and memory of everything under the ranks and the service, but the ranks."""

    def __init__(self, ranks: list[int], socket_path: str):
        super().__init__(daemon=True)
        self.ranks, self.socket_path = set(ranks), socket_path
        self.stop_flag = threading.Event()
        self.workers = self.rss = self.pss = 0
        self.worker_pids: set[int] = set()

    def _processes(self) -> list[psutil.Process]:
        roots = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            if p.info["pid"] in self.ranks or self.socket_path in (p.info["cmdline"] or ()):
                roots.append(p)
        procs = {}
        for r in roots:
            try:
                if r.pid not in self.ranks:
                    procs[r.pid] = r  # the service
                for c in r.children(recursive=True):
                    procs[c.pid] = c
            except psutil.Error:
                pass
        return list(procs.values())

    def run(self) -> None:
        while not self.stop_flag.wait(0.2):
            procs = self._processes()
            rss = pss = 0
            workers = set()
            for p in procs:
                try:
                    mem = p.memory_full_info()
                    rss, pss = rss + mem.rss, pss + mem.pss
                    if _is_worker(p) and not _is_worker(p.parent()):
                        workers.add(p.pid)
                except (psutil.Error, AttributeError):
                    pass
            self.worker_pids |= workers
            self.workers, self.rss, self.pss = max(self.workers, len(workers)), max(self.rss, rss), max(self.pss, pss)


# ------------------------------------------------------------------------------------------ one mode


def run_mode(mode: str, args, iterations: int, tmp: Path, round_: int) -> dict:
    node_id = f"bench-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, TCF_NODE_ID=node_id, TCF_NODE_GRACE_S="1",
               PYTHONPATH=str(REPO) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
    go = tmp / f"{mode}{round_}.go"
    procs, outs = [], []
    for r in range(2):
        out, ready = tmp / f"{mode}{round_}.{r}.json", tmp / f"{mode}{round_}.{r}.ready"
        cmd = [sys.executable, __file__, "--rank", str(r), "--mode-backend", "node" if mode == "shared" else "local",
               "--iterations", str(iterations), "--programs", str(args.programs), "--test-timeout", str(args.test_timeout),
               "--wall-time-factor", str(args.wall_time_factor or 0), "--go", str(go), "--ready", str(ready), "--out", str(out), "--tag", f"{mode} round {round_}"]
        procs.append(subprocess.Popen(cmd, env=env))
        outs.append((out, ready))
    while not all(ready.exists() for _, ready in outs):
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a rank of mode {mode} died before the barrier")
        time.sleep(0.02)
    sampler = Sampler([p.pid for p in procs], str(node_paths(True, node_id).socket))
    sampler.start()
    time.sleep(0.5)  # one sample of the idle pools before the batch
    go.touch()
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError(f"a rank of mode {mode} failed")
    sampler.stop_flag.set()
    sampler.join()
    res = [json.loads(out.read_text()) for out, _ in outs]
    statuses = [s for r in res for s in r["statuses"]]
    wall = max(r["t1"] for r in res) - min(r["t0"] for r in res)
    time.sleep(2.0)  # let a shared service leave (grace 1 s) before the next mode
    return {
        "mode": mode,
        "workers": sampler.workers,
        "rss_mb": sampler.rss / 2**20,
        "pss_mb": sampler.pss / 2**20,
        "throughput": len(statuses) / wall,
        "wall_s": wall,
        "false_timeouts": sum(s != "passed" for s in statuses),
        "programs": len(statuses),
        "median_duration_s": statistics.median(d for r in res for d in r["durations"]),
    }


def _limits(args) -> Limits:
    extra = {"wall_time_factor": args.wall_time_factor} if args.wall_time_factor else {}  # where timeouts count CPU time
    return Limits(test_timeout_s=args.test_timeout, program_timeout_s=max(10.0, 3 * args.test_timeout), **extra)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", type=int, default=8, help="programs per rank")
    ap.add_argument("--cpu-s", type=float, default=1.2, help="CPU seconds of each program's test")
    ap.add_argument("--test-timeout", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--modes", default="shared,separate")
    ap.add_argument("--wall-time-factor", type=float, default=None,
                    help="Limits.wall_time_factor (where timeouts count CPU time; 1 = a wall-clock cap equal to the limit)")
    # rank side (internal)
    ap.add_argument("--rank", type=int, default=-1, help=argparse.SUPPRESS)
    ap.add_argument("--mode-backend", help=argparse.SUPPRESS)
    ap.add_argument("--iterations", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--go", help=argparse.SUPPRESS)
    ap.add_argument("--ready", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--tag", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rank >= 0:
        return rank_main(args)

    iterations = calibrate(args.cpu_s)
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    if subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "trl_codefeedback"], capture_output=True, text=True).stdout.strip():
        commit += " + uncommitted changes in trl_codefeedback/"
    print(f"cores {len(os.sched_getaffinity(0))}, 2 ranks x {args.programs} programs of ~{args.cpu_s} s CPU "
          f"({iterations} iterations), test timeout {args.test_timeout} s, {_limits(args)}, "
          f"commit {commit}, load avg {os.getloadavg()[0]:.2f}")
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_node_pool_{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    rows = []
    for round_ in range(args.rounds):
        for mode in args.modes.split(","):
            rows.append(run_mode(mode, args, iterations, tmp, round_))
    print(f"{'mode':<9} {'workers':>7} {'peak RSS MB':>11} {'peak PSS MB':>11} {'prog/s':>7} {'wall s':>7} "
          f"{'median s':>8} {'false timeouts':>14}")
    for r in rows:
        print(f"{r['mode']:<9} {r['workers']:>7} {r['rss_mb']:>11.0f} {r['pss_mb']:>11.0f} {r['throughput']:>7.2f} "
              f"{r['wall_s']:>7.1f} {r['median_duration_s']:>8.2f} {r['false_timeouts']:>6} / {r['programs']:<6}")
    print(f"load avg after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
