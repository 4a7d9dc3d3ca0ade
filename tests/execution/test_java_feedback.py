"""Java backend: broken variants get the right status, error_type, error_line, scope and pass ratio."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

from trl_codefeedback.execution import ErrorScope, Limits, Program, Status, TestOutcome
from trl_codefeedback.execution.java import JavaBackend, count_java_checks, java_error_scope, split_java_main
from trl_codefeedback.execution.sandbox.policy import SandboxUnavailableError

pytestmark = pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None, reason="needs a JDK")

HEADER = "import java.util.*;\n\nclass Add {\n"  # lines 1-3; the method starts on line 4
TEST = """
class Main {
    public static void main(String[] args) throws Exception {
        int x0 = Add.add(1, 2);
        if (!(x0 == 3)) {
            throw new java.lang.Exception("Exception -- test case 0 did not pass. x0 = " + x0);
        }

        int x1 = Add.add(2, 2);
        if (!(x1 == 4)) {
            throw new java.lang.Exception("Exception -- test case 1 did not pass. x1 = " + x1);
        }

        int x2 = Add.add(0, 5);
        if (!(x2 == 5)) {
            throw new java.lang.Exception("Exception -- test case 2 did not pass. x2 = " + x2);
        }
    }
}
"""
SPEC = {"kind": "java_main", "test": TEST}
FAST = Limits(test_timeout_s=1.0, program_timeout_s=3.0)


def prog(body: str, **kw) -> Program:
    return Program(HEADER + body, SPEC, language="java", **kw)


def run1(executor, body, limits=None, **kw):
    return executor.run([prog(body, **kw)], limits=limits)[0]


CASES = [
    # (name, body, status, error_type, error_line, scope)
    ("pass", "    static int add(int a, int b) {\n        return a + b;\n    }\n}\n", Status.PASSED, None, None, None),
    ("compile error line 5", "    static int add(int a, int b) {\n        return a + c;\n    }\n}\n",
     Status.COMPILE_ERROR, "cant.resolve.location", 5, ErrorScope.LINE),
    ("type error line 5", "    static int add(int a, int b) {\n        String s = a + b;\n        return 0;\n    }\n}\n",
     Status.COMPILE_ERROR, "prob.found.req", 5, ErrorScope.LINE),
    ("missing semicolon line 5", "    static int add(int a, int b) {\n        return a + b\n    }\n}\n",
     Status.COMPILE_ERROR, "expected", 5, ErrorScope.LINE),
    ("exception line 6", "    static int add(int a, int b) {\n        int[] xs = new int[2];\n        return xs[a + b];\n    }\n}\n",
     Status.RUNTIME_ERROR, "ArrayIndexOutOfBoundsException", 6, ErrorScope.LINE),
    ("exception in helper line 8", "    static int add(int a, int b) {\n        return helper(a) + b;\n    }\n"
     "    static int helper(int a) {\n        return a / (a - a);\n    }\n}\n",
     Status.RUNTIME_ERROR, "ArithmeticException", 8, ErrorScope.LINE),
    ("null pointer", "    static int add(int a, int b) {\n        String s = null;\n        return s.length();\n    }\n}\n",
     Status.RUNTIME_ERROR, "NullPointerException", 6, ErrorScope.LINE),
    ("stack overflow", "    static int add(int a, int b) {\n        return add(a, b);\n    }\n}\n",
     Status.RUNTIME_ERROR, "StackOverflowError", 5, ErrorScope.GLOBAL),
    ("System.exit(0)", "    static int add(int a, int b) {\n        System.exit(0);\n        return a + b;\n    }\n}\n",
     Status.RUNTIME_ERROR, "SystemExit", 5, ErrorScope.LINE),
    ("method misnamed (error in the test part)", "    static int plus(int a, int b) {\n        return a + b;\n    }\n}\n",
     Status.COMPILE_ERROR, "cant.resolve.location.args", None, ErrorScope.GLOBAL),
    ("unclosed comment", "    static int add(int a, int b) {\n        /* open\n        return a + b;\n    }\n}\n",
     Status.COMPILE_ERROR, "unclosed.comment", 5, ErrorScope.IGNORE),
]


@pytest.mark.parametrize("name,body,status,error_type,line,scope", CASES, ids=[c[0] for c in CASES])
def test_broken_variants(executor, name, body, status, error_type, line, scope):
    fb = run1(executor, body, limits=FAST)
    assert fb.status is status, (fb.error_type, fb.error_message)
    assert fb.error_type == error_type, fb.error_message
    assert fb.error_line == line, fb.error_message
    assert fb.error_scope == scope
    assert fb.tests_total == 3
    if status is Status.COMPILE_ERROR:
        assert "column" in fb.error_message or "test code" in fb.error_message


def test_compile_error_message_has_line_and_column(executor):
    fb = run1(executor, "    static int add(int a, int b) {\n        return a + c;\n    }\n}\n")
    assert fb.error_message.startswith("cannot find symbol") and "(line 5, column 20)" in fb.error_message


def test_wrong_answer_on_one_of_three_checks_is_exact(executor):
    fb = run1(executor, "    static int add(int a, int b) {\n        return a == 2 ? 5 : a + b;\n    }\n}\n")
    assert fb.status is Status.FAILED
    assert (fb.tests_passed, fb.tests_total) == (2, 3)
    assert fb.test_outcomes == [TestOutcome.PASS, TestOutcome.FAIL, TestOutcome.PASS]
    assert fb.error_type == "WrongAnswer" and "test case 1" in fb.error_message
    assert fb.error_line is None and fb.error_scope is ErrorScope.IGNORE


def test_exception_on_one_check_does_not_hide_the_others(executor):
    fb = run1(executor, "    static int add(int a, int b) {\n        if (a == 0) throw new IllegalStateException(\"zero\");\n"
                        "        return a + b;\n    }\n}\n")
    assert fb.status is Status.RUNTIME_ERROR and fb.error_type == "IllegalStateException" and fb.error_line == 5
    assert fb.test_outcomes == [TestOutcome.PASS, TestOutcome.PASS, TestOutcome.ERROR]
    assert fb.pass_ratio == pytest.approx(2 / 3)


def test_truncated_missing_brace_is_global(executor):
    code = "    static int add(int a, int b) {\n        return a + b;\n"
    fb = run1(executor, code, truncated=True)
    assert fb.status is Status.COMPILE_ERROR and fb.error_type == "premature.eof"
    assert fb.error_scope is ErrorScope.GLOBAL


def test_infinite_loop_times_out(executor):
    t0 = time.monotonic()
    fb = run1(executor, "    static int add(int a, int b) {\n        while (true) { a++; }\n    }\n}\n", limits=FAST)
    assert fb.status is Status.TIMEOUT and fb.error_type == "Timeout" and fb.error_scope is ErrorScope.GLOBAL
    assert TestOutcome.PASS not in fb.test_outcomes
    assert time.monotonic() - t0 < 10


def _cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def test_thread_that_never_ends_does_not_pass_and_does_not_leak():
    body = ("    static int add(int a, int b) {\n        new Thread(() -> { long x = 0; while (true) { x++; } }).start();\n"
            "        return a + b;\n    }\n}\n")
    daemon = ("    static int add(int a, int b) {\n        Thread t = new Thread(() -> { long x = 0; while (true) { x++; } });\n"
              "        t.setDaemon(true);\n        t.start();\n        return a + b;\n    }\n}\n")
    with JavaBackend(1) as be:
        ex_items = lambda p: [(_job(p, FAST), p)]  # noqa: E731
        fb = be.run(ex_items(prog(body)))[0]
        assert fb.status is Status.TIMEOUT and not fb.passed
        fb2 = be.run(ex_items(prog(daemon)))[0]
        assert fb2.status is Status.PASSED  # a plain JVM exits past daemon threads; ours are stopped
        time.sleep(0.3)
        pids = be.worker_pids()
        c0 = _cpu_seconds(pids)
        time.sleep(1.0)
        assert _cpu_seconds(pids) - c0 < 0.5, "a spinning program thread survived"
        assert be.run(ex_items(prog(CASES[0][1])))[0].status is Status.PASSED


def test_memory_hog_is_resource_limit_and_worker_recovers():
    body = ("    static int add(int a, int b) {\n        List<long[]> keep = new ArrayList<>();\n"
            "        while (true) { keep.add(new long[1 << 20]); }\n    }\n}\n")
    with JavaBackend(1) as be:
        lim = Limits(test_timeout_s=5.0, program_timeout_s=10.0, memory_mb=256)
        fb = be.run([(_job(prog(body), lim), None)])[0]
        assert fb.status is Status.RESOURCE_LIMIT and fb.error_type == "OutOfMemoryError"
        assert fb.error_scope is ErrorScope.GLOBAL
        assert be.run([(_job(prog(CASES[0][1]), lim), None)])[0].status is Status.PASSED


def test_output_flood_is_resource_limit(executor):
    body = ("    static int add(int a, int b) {\n        while (true) { System.out.println(\"spam spam spam spam\"); }\n"
            "    }\n}\n")
    fb = run1(executor, body, limits=Limits(test_timeout_s=3.0, program_timeout_s=6.0, output_bytes=10_000))
    assert fb.status is Status.RESOURCE_LIMIT and fb.error_type == "OutputLimitExceeded"


@pytest.mark.parametrize("stmt,what", [
    ('new java.net.Socket("127.0.0.1", 9);', "network"),
    ('new java.io.FileWriter("/tmp/tcf-pwned.txt").close();', "file write"),
    ('new ProcessBuilder("true").start();', "process"),
])
def test_sandbox_denies(executor, stmt, what):
    body = f"    static int add(int a, int b) {{\n        try {{ {stmt} }} catch (java.io.IOException e) {{ }}\n        return a + b;\n    }}\n}}\n"
    fb = run1(executor, body)
    assert fb.status is Status.RUNTIME_ERROR and fb.error_type == "SecurityException", (what, fb)
    assert fb.error_line == 5


def test_stdin_is_empty_not_the_protocol(executor):
    body = "    static int add(int a, int b) {\n        Scanner sc = new Scanner(System.in);\n        return sc.hasNextInt() ? -1 : a + b;\n    }\n}\n"
    assert run1(executor, body).status is Status.PASSED


def test_compile_only_without_tests(executor):
    ok, bad = executor.run([Program(HEADER + CASES[0][1], None, language="java"),
                            Program(HEADER + CASES[1][1], None, language="java")])
    assert ok.status is Status.PASSED and ok.tests_total == 0
    assert bad.status is Status.COMPILE_ERROR and bad.error_line == 5


def test_public_class_is_compiled_under_its_own_name(executor):
    fb = executor.run([Program("public class Add {\n    static int add(int a, int b) { return a + b; }\n}\n", SPEC, language="java")])[0]
    assert fb.status is Status.PASSED, fb


def _job(program: Program, limits: Limits) -> dict:
    from dataclasses import asdict

    return {"code": program.code, "tests": program.tests, "truncated": program.truncated, "coverage": False,
            "limits": asdict(limits), "num_tests": count_java_checks(program.tests["test"]) if program.tests else 0,
            "language": "java"}


def test_killed_worker_mid_batch_is_the_programs_outcome_and_later_batches_work():
    """A candidate JVM that dies mid-program (here: kill -9 from outside) is that program's runtime_error.

    Changed with the trusted oracle (issue 11): it was harness_error, but nothing a program's JVM does
    (crash, exit, abort) may yield an unscored harness_error; the rest of the batch and later batches run.
    """
    slow = "    static int add(int a, int b) {\n        try { Thread.sleep(1500); } catch (InterruptedException e) { }\n        return a + b;\n    }\n}\n"
    lim = Limits(test_timeout_s=5.0, program_timeout_s=10.0)
    with JavaBackend(2) as be:
        be.run([(_job(prog(slow.replace("1500", str(300 + i))), lim), None) for i in range(2)])  # two at once: two JVMs
        victims = be.worker_pids()
        assert len(victims) == 2
        killer = threading.Timer(0.8, lambda: os.kill(victims[0], 9))
        killer.start()
        items = [(_job(prog(slow.replace("1500", str(1500 + i))), lim), None) for i in range(4)]
        fbs = be.run(items)
        killer.join()
        statuses = [fb.status for fb in fbs]
        assert statuses.count(Status.RUNTIME_ERROR) == 1, statuses
        assert statuses.count(Status.PASSED) == 3
        bad = next(fb for fb in fbs if fb.status is Status.RUNTIME_ERROR)
        assert bad.tests_total == 3 and bad.error_type == "JVMDied" and "died" in bad.error_message
        assert bad.error_scope is ErrorScope.IGNORE
        assert be.stats["worker_restarts"] >= 1
        again = be.run([(_job(prog(CASES[0][1].replace("a + b", "b + a")), lim), None) for _ in range(3)])
        assert all(fb.status is Status.PASSED for fb in again)
        assert victims[0] not in be.worker_pids()


def test_executor_routes_java_and_caches(executor):
    p = prog("    static int add(int a, int b) {\n        return b + a;\n    }\n}\n")
    a = executor.run([p, p])
    b = executor.run([p])[0]
    assert a[0].passed and a[1].passed and b.cached


def test_fallback_to_plain_javac(monkeypatch):
    import trl_codefeedback.execution.java.pool as P

    def broken():
        raise RuntimeError("simulated: service cannot start")

    monkeypatch.setattr(P, "service_classes", broken)
    strict = P.JavaBackend(1)
    with pytest.raises(SandboxUnavailableError, match="simulated: service cannot start"):
        strict.run([(_job(prog(CASES[0][1]), FAST), None)])  # fails closed: the fallback has no sandbox
    be = P.JavaBackend(1, isolate="weak")
    try:
        with pytest.warns(RuntimeWarning, match="falling back"):
            fbs = be.run([(_job(prog(CASES[0][1]), FAST), None)])
        assert be.mode == "javac" and fbs[0].status is Status.PASSED and fbs[0].tests_passed == 3
        wrong, comp, exc = be.run([(_job(prog(b), FAST), None) for b in (
            "    static int add(int a, int b) {\n        return a == 2 ? 5 : a + b;\n    }\n}\n", CASES[1][1], CASES[4][1])])
        assert wrong.status is Status.FAILED and wrong.tests_passed == 1  # first failure stops a plain `java Main`
        assert comp.status is Status.COMPILE_ERROR and comp.error_line == 5
        assert exc.status is Status.RUNTIME_ERROR and exc.error_type == "ArrayIndexOutOfBoundsException" and exc.error_line == 6
    finally:
        be.close()


def test_split_counts_and_scope_table():
    assert count_java_checks(TEST) == 3
    plan = split_java_main(TEST)
    assert plan.checks == ("__tcf_check_0", "__tcf_check_1", "__tcf_check_2")
    shared = TEST.replace("int x1 = Add.add(2, 2);", "int x1 = Add.add(2, 2) + x0 - 3;")
    assert count_java_checks(shared) == 2  # checks sharing a local are merged, so the split compiles
    assert count_java_checks("class Main { public static void main(String[] a) { System.out.println(1); } }") == 1
    assert java_error_scope("premature.eof", "", 9, "x\n" * 9, False, compile_code="compiler.err.premature.eof") == "global"
    assert java_error_scope("expected", "';' expected", 9, "x\n" * 9, True, compile_code="compiler.err.expected") == "global"
    assert java_error_scope("expected", "';' expected", 3, "x\n" * 9, True, compile_code="compiler.err.expected") == "line"
    assert java_error_scope("Timeout", "", None, "", False) == "global"
    assert java_error_scope("NullPointerException", "", None, "", False) == "ignore"


def test_unstoppable_loop_recycles_the_worker():
    """A loop that swallows ThreadDeath cannot be stopped: timeout for the program, a fresh worker after it."""
    body = ("    static int add(int a, int b) {\n        while (true) {\n            try { while (true) { a++; } }\n"
            "            catch (Throwable t) { }\n        }\n    }\n}\n")
    with JavaBackend(1) as be:
        be.run([(_job(prog(CASES[0][1]), FAST), None)])
        [before] = be.worker_pids()
        fb = be.run([(_job(prog(body), FAST), None)])[0]
        assert fb.status is Status.TIMEOUT and fb.error_scope is ErrorScope.GLOBAL
        assert be.run([(_job(prog(CASES[0][1]), FAST), None)])[0].status is Status.PASSED
        assert be.worker_pids() and be.worker_pids()[0] != before


def test_worker_jvms_die_with_their_parent(tmp_path):
    """A trainer that dies without close() leaves no JVM behind (parent-death signal, set after the uid change)."""
    import subprocess
    import sys

    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys\n"
        "from dataclasses import asdict\n"
        "from trl_codefeedback.execution import Limits\n"
        "from trl_codefeedback.execution.java import JavaBackend\n"
        "import threading, time\n"
        "be = JavaBackend(1)\n"
        "be.run([({'code': 'class A {}', 'tests': None, 'truncated': False, 'coverage': False,"
        " 'limits': asdict(Limits()), 'num_tests': 0, 'language': 'java'}, None)])\n"
        "spin = {'code': sys.argv[1], 'tests': {'kind': 'java_main', 'test': sys.argv[2]}, 'truncated': False,"
        " 'coverage': False, 'limits': asdict(Limits(test_timeout_s=60, program_timeout_s=60)), 'num_tests': 3,"
        " 'language': 'java'}\n"
        "threading.Thread(target=be.run, args=([(spin, None)],), daemon=True).start()\n"
        "time.sleep(1.5)\n"  # the worker is now busy in the loop: it will not see its stdin close
        "print(be.worker_pids()[0], flush=True)\n"
        "os._exit(0)\n"
    )
    spin_code = HEADER + "    static int add(int a, int b) {\n        while (true) { a++; }\n    }\n}\n"
    out = subprocess.run([sys.executable, str(script), spin_code, TEST], capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5  # well before the program's own 60 s limit
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.1)
    gone = not os.path.exists(f"/proc/{pid}")
    if not gone:
        with open(f"/proc/{pid}/stat") as f:
            gone = f.read().rsplit(")", 1)[1].split()[0] == "Z"
    assert gone, "the worker JVM outlived its parent"
