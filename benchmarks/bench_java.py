"""Java: the compile + test service vs one ``javac`` + one ``java`` process per program, side by side.

Workload: the MBJP v1.2 canonical solutions (874 programs with one). The baseline is the
approach of mxeval and MultiPL-E: write ``Main.java`` (prompt + solution + test), run
``javac``, then ``java Main``; it is timed on the first ``--baseline-n`` programs (a full
run takes ~13 minutes) with ``--workers`` programs at a time. The service is timed on all
programs, from a cold start (pool and JVM start included, cache off), then once more warm.
The service is the forge-proof one (docs/java.md): candidate JVMs return values, a trusted
oracle JVM plans each test (javac on the test alone, then the trusted class) and judges them;
the cold run includes planning every test once, the warm run reuses the plans.
Verdicts must agree with the baseline on the programs both ran (passed vs not passed),
except where the baseline lets ``System.exit(0)`` count as a pass.

    python benchmarks/bench_java.py [--workers 2] [--baseline-n 60]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from trl_codefeedback.data import load_mbjp
from trl_codefeedback.execution import Executor, Limits, Program


def baseline_one(source: str, timeout: float) -> bool:
    with tempfile.TemporaryDirectory(prefix="bench-javac-") as d:
        Path(d, "Main.java").write_text(source)
        if subprocess.run(["javac", "Main.java"], cwd=d, capture_output=True).returncode != 0:
            return False
        try:
            return subprocess.run(["java", "-cp", d, "Main"], cwd=d, capture_output=True, timeout=timeout).returncode == 0
        except subprocess.TimeoutExpired:
            return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baseline-n", type=int, default=60)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    if shutil.which("javac") is None:
        sys.exit("needs a JDK (javac, java) on PATH")
    rows = [r for r in load_mbjp() if r["reference"]]
    limits = Limits(program_timeout_s=args.timeout)
    print(f"MBJP canonical solutions: {len(rows)} programs; {os.cpu_count()} CPUs; workers={args.workers}")

    base_rows = rows[: args.baseline_n]
    sources = [r["reference"] + "\n" + json.loads(r["tests"])["test"] for r in base_rows]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        base_ok = list(pool.map(lambda s: baseline_one(s, args.timeout), sources))
    base_s = time.perf_counter() - t0
    base_rate = len(base_rows) / base_s
    print(f"baseline  javac + java per program: {len(base_rows)} programs in {base_s:7.1f} s = {base_rate:6.2f} programs/s "
          f"({sum(base_ok)} passed)")

    programs = [Program(r["reference"], r["tests"], language="java") for r in rows]
    t0 = time.perf_counter()
    ex = Executor(workers=args.workers, cache_size=0, limits=limits)
    fbs = ex.run(programs)
    cold_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fbs2 = ex.run(programs)
    warm_s = time.perf_counter() - t0
    mode = ex._java.mode if ex._java is not None else "?"
    oracle = dict(ex._java.oracle.stats) if ex._java is not None and ex._java.oracle is not None else {}
    ex.close()
    n_pass = sum(fb.passed for fb in fbs)
    assert [fb.passed for fb in fbs] == [fb.passed for fb in fbs2]
    cold_rate, warm_rate = len(rows) / cold_s, len(rows) / warm_s
    print(f"service   ({mode}), cold start:         {len(rows)} programs in {cold_s:7.1f} s = {cold_rate:6.1f} programs/s "
          f"({n_pass} passed, {sum(fb.status.value == 'harness_error' for fb in fbs)} harness errors)")
    print(f"service   ({mode}), warm:               {len(rows)} programs in {warm_s:7.1f} s = {warm_rate:6.1f} programs/s")
    print(f"trusted oracle: {oracle.get('plans', 0)} tests planned, {oracle.get('compiles', 0)} javac tasks for trusted classes, "
          f"{oracle.get('restarts', 0)} restarts")
    disagree = [r["task_id"] for r, ok, fb in zip(base_rows, base_ok, fbs) if ok != fb.passed]
    print(f"verdicts differing from the baseline on its {len(base_rows)} programs: {disagree or 'none'}"
          + (" (System.exit(0) passes under the baseline)" if disagree else ""))
    print(f"speed-up: {cold_rate / base_rate:.0f}x cold start, {warm_rate / base_rate:.0f}x warm")


if __name__ == "__main__":
    main()
