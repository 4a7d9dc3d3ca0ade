"""Entry of one Python worker: the trusted oracle process, with its candidate zygote.

Started by the executor as ``python -I worker_main.py`` (stdlib only, never a fork of a trainer
holding torch). It forks the candidate zygote before it reads any job, so the zygote and every
program forked from it hold no test data; then it answers jobs, one JSON line in, one Feedback
dict out, deciding every verdict itself (:mod:`oracle`). The worker is not dumpable: a program
running as the same user cannot read its memory or environment through ``/proc``.

A reply with ``"recycle": true`` means the zygote is gone; the worker exits after it, and the
executor starts a fresh one.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import os
import signal
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import isolation  # noqa: E402
import zygote  # noqa: E402
from oracle import Oracle  # noqa: E402
from session import ZygoteLost  # noqa: E402
from testplan import PlanCache  # noqa: E402

PR_SET_DUMPABLE = 4

# Modules most programs in MBPP / HumanEval / APPS import: imported once here so forked
# programs do not pay for them.
PRELOAD = (
    "math cmath re collections collections.abc itertools functools heapq bisect string random "
    "typing operator statistics fractions decimal copy json datetime hashlib array "
    "sys os io textwrap unicodedata dataclasses enum numbers queue struct calendar"
).split()

WARM_UP_JOBS = (
    {"code": "def add(a, b):\n    return a + b\n", "num_tests": 2,
     "tests": {"kind": "check", "entry_point": "add", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 5\n"}},
    {"code": "def add(a, b):\n    return a + b\n", "num_tests": 3,
     "tests": {"kind": "asserts", "asserts": ["assert add(1, 2) == 3", "assert add(1, 1) == 3", "assert add(1) == 3"]}},
    {"code": "def add(a, b):\n    return a + c\n", "num_tests": 1,
     "tests": {"kind": "check", "entry_point": "add", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n"}},
)
WARM_UP_LIMITS = {"test_timeout_s": 3.0, "program_timeout_s": 10.0, "memory_mb": 1024, "output_bytes": 1 << 16, "max_processes": 32}


def _preload() -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


WARM_UP_STATUSES = ["failed", "failed", "runtime_error"]


def warm_up(oracle: Oracle, rounds: int = 3) -> list[str]:
    """Run fixed, trusted jobs through the whole path (both sides warm); returns the last statuses.

    Raises RuntimeError when they are not :data:`WARM_UP_STATUSES`: a worker whose sandbox does not
    work must fail to start (with the reason on stderr), not answer harness_error to every program.
    """
    results = []
    for _ in range(rounds):
        results = [oracle.run({**job, "limits": WARM_UP_LIMITS}) for job in WARM_UP_JOBS]
    statuses = [r["status"] for r in results]
    if statuses != WARM_UP_STATUSES:
        detail = "; ".join(f"{r['status']}: {r.get('error_message')}" for r in results)
        raise RuntimeError(f"the sandbox failed its warm-up jobs ({detail})")
    return statuses


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--uid-base", type=int, default=-1, help="programs run as uid BASE + this worker's pid (unique on the host)")
    ap.add_argument("--tmp-mb", type=int, default=512)
    ap.add_argument("--no-isolation", action="store_true")
    args = ap.parse_args()
    # The executor talks to us over our stdin/stdout; programs never see these fds.
    proto_in = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    os.set_inheritable(proto_in.fileno(), False)
    os.set_inheritable(proto_out.fileno(), False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the executor
    libc.prctl(PR_SET_DUMPABLE, 0)
    _preload()
    uid = args.uid_base + os.getpid() if args.uid_base >= 0 else -1
    zsock, zpid, info = zygote.start_zygote(uid, not args.no_isolation, args.tmp_mb)
    oracle = Oracle(zsock, PlanCache())
    warm_up(oracle)
    proto_out.write((json.dumps({"ready": True, "isolation": info, "pid": os.getpid(), "zygote_pid": zpid}) + "\n").encode())
    for line in proto_in:
        job = None
        try:
            job = json.loads(line)
            result = oracle.run(job)
        except ZygoteLost as e:
            result = {"status": "harness_error", "error_type": "HarnessError", "error_message": f"sandbox zygote lost: {e}", "recycle": True}
        except Exception:  # noqa: BLE001 - never die on one bad job
            result = {"status": "harness_error", "error_type": "HarnessError", "error_message": traceback.format_exc()[-2000:]}
        result["id"] = job.get("id") if isinstance(job, dict) else None
        try:
            line = json.dumps(result)
        except (TypeError, ValueError) as e:  # never expected: every field is built on this side
            line = json.dumps({"status": "harness_error", "error_type": "HarnessError", "id": result["id"],
                               "error_message": f"unserialisable result: {e}"[:2000], "recycle": bool(result.get("recycle"))})
        proto_out.write((line + "\n").encode())
        if result.get("recycle"):
            break
    zygote.stop_zygote(zsock, zpid)


if __name__ == "__main__":
    main()
