"""The worker's speed-ups (bare fork, harness warm-up, pinning) keep programs' semantics."""

import os
import subprocess
import sys

from trl_codefeedback.execution import Executor, Program, Status
from trl_codefeedback.execution.executor import WORKER_SCRIPT

SANDBOX = WORKER_SCRIPT.parent


def _random_draw(executor, tag: int) -> str:
    # The failing assert's message carries the value the child drew.
    code = f"import random\n# program {tag}\ndef f():\n    return random.random()\n"
    fb = executor.run([Program(code, {"kind": "asserts", "asserts": ["assert False, repr(f())"]})])[0]
    assert fb.status is Status.FAILED, fb
    return fb.error_message


def test_each_child_gets_a_fresh_random_seed(executor):
    # Children are forked without CPython's at-fork hooks; the worker reseeds random itself.
    draws = {_random_draw(executor, tag) for tag in range(6)}
    assert len(draws) == 6


def test_warm_up_runs_both_sides_and_leaves_the_zygote_serving():
    script = f"""
import sys
sys.path.insert(0, {str(SANDBOX)!r})
import worker_main, zygote
from oracle import Oracle
sock, pid, info = zygote.start_zygote(-1, False, 64)
oracle = Oracle(sock)
print(",".join(worker_main.warm_up(oracle, rounds=2)))
zygote.stop_zygote(sock, pid)
"""
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "failed,failed,runtime_error"


def test_bare_fork_falls_back_to_os_fork_with_threads():
    script = f"""
import importlib.util, os, threading, time
import sys
sys.path.insert(0, {str(SANDBOX)!r})
import isolation as pw
calls = []
real = os.fork
os.fork = lambda: calls.append(1) or real()
def fork_and_reap():
    pid = pw.fork_bare()
    if pid == 0:
        os._exit(7)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
assert fork_and_reap() == 7 and calls == [], "single-threaded: bare fork expected"
t = threading.Thread(target=time.sleep, args=(2,)); t.start()
assert fork_and_reap() == 7 and calls == [1], "with a thread: os.fork expected"
print("ok")
"""
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_workers_are_pinned_one_per_core_and_can_be_left_unpinned():
    cpus = sorted(os.sched_getaffinity(0))
    with Executor(workers=2) as pinned:
        pinned.run([Program("x = 1", None)])
        got = [os.sched_getaffinity(w.proc.pid) for w in pinned._workers]
        assert got == [{cpus[0]}, {cpus[1 % len(cpus)]}]
    with Executor(workers=2, pin_workers=False) as free:
        free.run([Program("x = 1", None)])
        assert all(os.sched_getaffinity(w.proc.pid) == set(cpus) for w in free._workers)
