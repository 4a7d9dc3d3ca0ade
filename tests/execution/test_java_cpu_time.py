"""Java time limits count the program's CPU time (measured in the candidate JVM), with a wall-clock cap.

The issue's case for Java: a check that needs 1.2 s of CPU passes a 3 s limit alone and while four
executors (two candidate JVMs each) score batches of it at the same moment on 2 cores; a busy loop
is a timeout with the CPU-time message; a sleeping check ends at the wall cap (``wall_time_factor``
x its limit) with the wall-cap message. Real javac / java, no mocks.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest
from concurrent_scoring import score_at_once

from trl_codefeedback.execution import Executor, Limits, Program, Status

pytestmark = pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None, reason="needs a JDK")

HEADER = "import java.util.*;\n\nclass Add {\n"  # lines 1-3


def _test(n: int) -> dict:
    checks = "".join(f"        int x{k} = Add.add({k}, 2);\n        if (!(x{k} == {k + 2})) {{\n"
                     f"            throw new java.lang.Exception(\"test case {k} did not pass\");\n        }}\n" for k in range(n))
    return {"kind": "java_main", "test": "class Main {\n    public static void main(String[] args) throws Exception {\n" + checks + "    }\n}\n"}


ONE, TWO, THREE = _test(1), _test(2), _test(3)

# Uses a fixed amount of CPU time whatever the load: ThreadMXBean counts this thread's CPU.
BURN = """    static int add(int a, int b) {{
        java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
        long end = mx.getCurrentThreadCpuTime() + {ms}_000_000L;
        long n = 0;
        while (mx.getCurrentThreadCpuTime() < end) n++;
        return a + b + (n < 0 ? 1 : 0);  // variant {variant}
    }}
}}
"""
BUSY = "    static int add(int a, int b) {\n        while (true) { }\n    }\n}\n"
SLEEP = "    static int add(int a, int b) {\n        try { Thread.sleep(60000); } catch (InterruptedException e) { }\n" \
        "        return a + b;\n    }\n}\n"
LIMITS = Limits(test_timeout_s=3.0, program_timeout_s=10.0)


def _java(body: str, spec: dict = ONE) -> Program:
    return Program(HEADER + body, spec, language="java")


def _heavy(variant: int, ms: int = 1200) -> Program:
    # Distinct code per program: no cache answers.
    return _java(BURN.format(ms=ms, variant=variant))


def _summary(fbs) -> list:
    return [(fb.status.value, fb.error_message, round(fb.duration_s, 2), fb.cpu_time_s) for fb in fbs]


def _busy_cores(seconds: float = 1.0) -> float:
    """Cores the whole machine kept busy over ``seconds`` (/proc/stat), while this test's programs are idle."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    (t0, i0), _, (t1, i1) = sample(), time.sleep(seconds), sample()
    return len(os.sched_getaffinity(0)) * (1 - (i1 - i0) / max(1, t1 - t0))


def test_cpu_heavy_program_passes_alone():
    with Executor(workers=1, limits=LIMITS, cache_size=0) as ex:
        ex.run([_java(BURN.format(ms=1, variant=-1))])  # JVMs started and warm, as in the loaded run
        [fb] = ex.run([_heavy(0)])
    print(f"\nalone: wall {fb.duration_s:.2f} s, cpu {fb.cpu_time_s} s")
    assert fb.status is Status.PASSED, _summary([fb])
    assert 1.15 <= fb.cpu_time_s <= 2.0, fb.cpu_time_s


@pytest.mark.skipif(len(os.sched_getaffinity(0)) != 2, reason="sized for 2 cores: 4 executors x 2 JVMs = 4x oversubscription")
def test_same_verdict_under_4x_oversubscription():
    executors = [Executor(workers=2, limits=LIMITS, cache_size=0) for _ in range(4)]
    batches = [[_heavy(10 * k + j + 1) for j in range(2)] for k in range(4)]
    try:
        for k, ex in enumerate(executors):  # start every pool (2 candidate JVMs + the oracle) first
            ex.run([_java(BURN.format(ms=1, variant=-2 - 10 * k - j)) for j in range(2)])
        busy_before = _busy_cores()
        results = score_at_once(executors, batches)
    finally:
        for ex in executors:
            ex.close()
    flat = [fb for batch in results for fb in batch]
    busy = max(busy_before, _busy_cores())
    print("\nloaded: wall", [round(fb.duration_s, 2) for fb in flat], "cpu", [fb.cpu_time_s for fb in flat],
          f"(other processes kept {busy:.1f} of 2 cores busy)")
    if busy > 0.5 and any(fb.error_message and "wall-clock cap" in fb.error_message for fb in flat):
        # Other processes on this machine took the load past 4x: past the documented factor the wall cap fires.
        pytest.skip(f"machine busier than this test's 4x oversubscription (others kept {busy:.1f} cores busy): {_summary(flat)}")
    assert [fb.status for fb in flat] == [Status.PASSED] * 8, _summary(flat)
    assert all(1.15 <= fb.cpu_time_s <= 2.0 for fb in flat), _summary(flat)
    # It really was oversubscribed: a program's wall time was well above its CPU time.
    assert max(fb.duration_s for fb in flat) > 2.5, _summary(flat)


@pytest.fixture(scope="module")
def executor():
    lim = Limits(test_timeout_s=0.5, program_timeout_s=1.0, wall_time_factor=6.0)
    with Executor(workers=1, limits=lim, cache_size=0) as ex:
        ex.run([_java(BURN.format(ms=1, variant=-100))])
        yield ex


def test_busy_loop_is_a_cpu_timeout(executor):
    [fb] = executor.run([_java(BUSY, TWO)])
    assert fb.status is Status.TIMEOUT and fb.error_type == "Timeout", _summary([fb])
    assert fb.error_message == "test exceeded its CPU-time limit of 0.5 s", fb.error_message
    assert fb.test_outcomes[0].value == "timeout"
    assert 0.5 <= fb.cpu_time_s <= 1.3, _summary([fb])


def test_sleeping_check_ends_at_the_wall_cap(executor):
    [fb] = executor.run([_java(SLEEP)])
    assert fb.status is Status.TIMEOUT, _summary([fb])
    assert fb.error_message == ("test exceeded its wall-clock cap of 3 s (6 x its 0.5 s CPU-time limit): "
                                "it was blocked, sleeping or starved of CPU"), fb.error_message
    assert 2.9 <= fb.duration_s <= 5.0 and fb.cpu_time_s < 0.2, _summary([fb])


def test_program_cpu_limit_across_checks(executor):
    # 0.4 s per check: each check is within 0.5 s, the third finds the program's 1 s used up.
    [fb] = executor.run([_java(BURN.format(ms=400, variant=1), THREE)])
    assert fb.status is Status.TIMEOUT, _summary([fb])
    assert fb.error_message == "program exceeded its CPU-time limit of 1 s", fb.error_message
    assert [o.value for o in fb.test_outcomes][:2] == ["pass", "pass"]


def test_threads_the_program_starts_count(executor):
    code = ("    static int add(int a, int b) {\n"
            "        for (int k = 0; k < 2; k++) { Thread t = new Thread(() -> { while (true) { } }); t.setDaemon(true); t.start(); }\n"
            "        java.util.stream.IntStream.range(0, 4).parallel().forEach(i -> { });\n"
            "        try { Thread.sleep(60000); } catch (InterruptedException e) { }\n"
            "        return a + b;\n    }\n}\n")
    [fb] = executor.run([_java(code)])
    assert fb.status is Status.TIMEOUT and "CPU-time limit" in fb.error_message, _summary([fb])


def test_switching_off_the_cpu_clock_is_denied(executor):
    code = ("    static int add(int a, int b) {\n"
            "        try { java.lang.management.ManagementFactory.getThreadMXBean().setThreadCpuTimeEnabled(false); }\n"
            "        catch (SecurityException e) { }\n"
            "        while (true) { }\n    }\n}\n")
    [fb] = executor.run([_java(code)])
    assert fb.status is Status.TIMEOUT and fb.error_message == "test exceeded its CPU-time limit of 0.5 s", _summary([fb])
