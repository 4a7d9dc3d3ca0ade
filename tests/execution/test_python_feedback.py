"""Deliberately broken programs get the right status, error_type, error_line and error_scope."""

import pytest

from trl_codefeedback.execution import ErrorScope, Program, Status, TestOutcome

ADD_TESTS = {"kind": "asserts", "asserts": ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(0, 0) == 0"]}


def run1(executor, code, tests=ADD_TESTS, **kw):
    return executor.run([Program(code, tests, **kw)])[0]


CASES = [
    # (name, code, status, error_type, error_line, scope)
    ("pass", "def add(a, b):\n    return a + b\n", Status.PASSED, None, None, None),
    ("wrong answer", "def add(a, b):\n    return a - b + 2 * b * (a == 0)\n", Status.FAILED, "AssertionError", None, None),
    ("syntax error line 2", "def add(a, b):\n    return a +* b\n", Status.COMPILE_ERROR, "SyntaxError", 2, ErrorScope.LINE),
    ("name error line 3", "def add(a, b):\n    c = a\n    return c + d\n", Status.RUNTIME_ERROR, "NameError", 3, ErrorScope.LINE),
    ("index error line 2", "def add(a, b):\n    return [a][b + 5]\n", Status.RUNTIME_ERROR, "IndexError", 2, ErrorScope.LINE),
    ("type error", "def add(a, b):\n    x = 1\n    return a + 'b'\n", Status.RUNTIME_ERROR, "TypeError", 3, ErrorScope.LINE),
    ("import error", "import not_a_module_xyz\ndef add(a, b):\n    return a + b\n", Status.RUNTIME_ERROR, "ModuleNotFoundError", 1, ErrorScope.LINE),
    ("indentation error", "def add(a, b):\nreturn a + b\n", Status.COMPILE_ERROR, "IndentationError", 2, ErrorScope.IGNORE),
    ("tab error", "def add(a, b):\n        x = 1\n\treturn a + b\n", Status.COMPILE_ERROR, "TabError", 3, ErrorScope.IGNORE),
    ("unterminated docstring", 'def add(a, b):\n    """doc\n    return a + b\n', Status.COMPILE_ERROR, "SyntaxError", 2, ErrorScope.IGNORE),
    ("recursion", "def add(a, b):\n    return add(a, b)\n", Status.RUNTIME_ERROR, "RecursionError", 2, ErrorScope.GLOBAL),
    ("timeout", "def add(a, b):\n    while True:\n        pass\n", Status.TIMEOUT, "Timeout", None, ErrorScope.GLOBAL),
    ("error in helper called by add", "def helper(x):\n    return x[10]\n\ndef add(a, b):\n    return helper([a]) + b\n", Status.RUNTIME_ERROR, "IndexError", 2, ErrorScope.LINE),
    ("assert inside candidate", "def add(a, b):\n    assert a > 100, 'nope'\n    return a + b\n", Status.RUNTIME_ERROR, "AssertionError", 2, ErrorScope.LINE),
    ("module-level error", "x = 1 / 0\ndef add(a, b):\n    return a + b\n", Status.RUNTIME_ERROR, "ZeroDivisionError", 1, ErrorScope.LINE),
]


@pytest.mark.parametrize("name,code,status,error_type,line,scope", CASES, ids=[c[0] for c in CASES])
def test_broken_variants(executor, name, code, status, error_type, line, scope):
    fb = run1(executor, code)
    assert fb.status is status, (fb.error_type, fb.error_message)
    assert fb.error_type == error_type
    if status is not Status.TIMEOUT:
        assert fb.error_line == line
    assert fb.error_scope == scope
    assert fb.tests_total == 3


def test_timeout_is_decided_outside_the_program_and_blames_the_whole_program(executor):
    # The deadline is enforced by the trusted side, which kills the program: there is no line
    # to report (the program cannot be trusted to say where it was), and the scope is global.
    fb = run1(executor, "def add(a, b):\n    while True:\n        pass\n")
    assert fb.status is Status.TIMEOUT
    assert fb.error_line is None and fb.error_scope.value == "global"
    assert fb.test_outcomes[0].value == "timeout" and fb.test_outcomes[1].value == "not_run"
    assert fb.duration_s < 5


def test_pass_ratio_is_exact_per_test(executor):
    # right for (1,2) and (0,0) only
    fb = run1(executor, "def add(a, b):\n    return 3 if a == 1 else 0\n")
    assert fb.status is Status.FAILED
    assert (fb.tests_passed, fb.tests_total) == (2, 3)
    assert fb.test_outcomes == [TestOutcome.PASS, TestOutcome.FAIL, TestOutcome.PASS]


def test_runtime_error_on_one_test_others_still_counted(executor):
    fb = run1(executor, "def add(a, b):\n    if a == 2:\n        raise ValueError('two')\n    return a + b\n")
    assert fb.status is Status.RUNTIME_ERROR and fb.error_line == 3
    assert fb.test_outcomes == [TestOutcome.PASS, TestOutcome.ERROR, TestOutcome.PASS]
    assert fb.tests_passed == 2


def test_truncated_completion_syntax_error_at_last_line_is_global(executor):
    code = "def add(a, b):\n    x = [a,\n         b"
    fb = run1(executor, code, truncated=True)
    assert fb.status is Status.COMPILE_ERROR and fb.error_scope is ErrorScope.GLOBAL
    not_truncated = run1(executor, code, truncated=False)
    assert not_truncated.error_scope is ErrorScope.LINE


def test_truncated_but_error_earlier_stays_line(executor):
    code = "def add(a, b):\n    return a +* b\n\ndef other():\n    return 1"
    fb = run1(executor, code, truncated=True)
    assert fb.error_line == 2 and fb.error_scope is ErrorScope.LINE


def test_crlf_code_lines(executor):
    fb = run1(executor, "def add(a, b):\r\n    c = 1\r\n    return a + q\r\n")
    assert fb.error_type == "NameError" and fb.error_line == 3


def test_compile_only(executor):
    ok, bad = executor.run([Program("x = 1\n", None), Program("x = (\n", None)])
    assert ok.status is Status.PASSED and ok.tests_total == 0
    assert bad.status is Status.COMPILE_ERROR and bad.error_line == 1


def test_check_kind_humaneval_style(executor):
    tests = {"kind": "check", "entry_point": "inc", "test": "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(5) == 6\n    for i in range(3):\n        assert candidate(i) == i + 1\n"}
    good = run1(executor, "def inc(x):\n    return x + 1\n", tests)
    assert good.passed and good.tests_total == 3
    half = run1(executor, "def inc(x):\n    return 2 if x == 1 else 0\n", tests)
    assert (half.status, half.tests_passed) == (Status.FAILED, 1)
    missing = run1(executor, "def other(x):\n    return x\n", tests)
    assert missing.status is Status.RUNTIME_ERROR and missing.error_type == "NameError"


def test_stdio_kind(executor):
    tests = {"kind": "stdio", "cases": [{"input": "2 3\n", "output": "5\n"}, {"input": "10 -1\n", "output": "9"}, {"input": "1 1\n", "output": "3"}]}
    fb = run1(executor, "a, b = map(int, input().split())\nprint(a + b)\n", tests)
    assert (fb.status, fb.tests_passed, fb.tests_total) == (Status.FAILED, 2, 3)
    exits = run1(executor, "import sys\na, b = map(int, sys.stdin.readline().split())\nprint(a + b)\nsys.exit(0)\n", tests)
    assert exits.tests_passed == 2  # exit(0) after printing is a normal end for stdin programs
    floats = run1(executor, "print(0.1 + 0.2)\n", {"kind": "stdio", "cases": [{"input": "", "output": "0.3"}]})
    assert floats.passed


def test_call_kind_apps_style(executor):
    tests = {"kind": "call", "fn_name": "f", "cases": [{"input": [1, 2], "output": [3]}, {"input": [[1], 2], "output": [[1, 2]]}, {"input": [0, 0], "output": 1}]}
    fb = run1(executor, "class Solution:\n    def f(self, a, b):\n        return a + b if isinstance(a, int) else tuple(a + [b])\n", tests)
    assert (fb.tests_passed, fb.tests_total) == (2, 3)
    plain = run1(executor, "from typing import List\ndef f(a, b):\n    return a + b\n", {"kind": "call", "fn_name": "f", "cases": [{"input": [1, 2], "output": 3}]})
    assert plain.passed


def test_coverage_lines(executor):
    code = "def add(a, b):\n    if a > 100:\n        return 0\n    return a + b\n"
    fb = executor.run([Program(code, ADD_TESTS, coverage=True)])[0]
    assert fb.passed
    assert 3 not in fb.covered_lines and {2, 4} <= set(fb.covered_lines)


def test_cache_returns_same_verdict_and_marks_it(executor):
    code = "def add(a, b):\n    return a + b  # cache probe\n"
    first, second = executor.run([Program(code, ADD_TESTS), Program(code, ADD_TESTS)])
    assert first.passed and second.passed
    third = executor.run([Program(code, ADD_TESTS)])[0]
    assert third.cached and third.passed


def test_stdio_compares_stdout_only(executor):
    # What a program writes to stderr (warnings, debugging) is not part of the judged output.
    code = "import sys\nx = int(input())\nprint('debug', x, file=sys.stderr)\nprint(x * 2)\n"
    tests = {"kind": "stdio", "cases": [{"input": "3\n", "output": "6\n"}]}
    assert executor.run([Program(code, tests)])[0].status is Status.PASSED


STDIO_DOUBLE = {"kind": "stdio", "cases": [{"input": "3\n", "output": "6\n"}, {"input": "5\n", "output": "10\n"}]}


def test_stdio_program_whose_work_runs_in_a_thread_passes(executor):
    # A common APPS pattern: a bigger stack for a recursive solution, main() in a thread. CPython
    # waits for non-daemon threads before it exits, so APPS's own evaluation sees their output.
    code = ("import sys, threading\nthreading.stack_size(2**26)\n"
            "def main():\n    print(int(sys.stdin.readline()) * 2)\n"
            "threading.Thread(target=main).start()\n")
    fb = run1(executor, code, STDIO_DOUBLE)
    assert fb.status is Status.PASSED, fb


def test_stdio_program_that_flushes_and_exits_with_0_passes(executor):
    code = "import os, sys\nprint(int(input()) * 2)\nsys.stdout.flush()\nos._exit(0)\n"
    fb = run1(executor, code, STDIO_DOUBLE)
    assert fb.status is Status.PASSED, fb
    failing = run1(executor, "import os, sys\nprint(int(input()) * 2)\nsys.stdout.flush()\nos._exit(3)\n", STDIO_DOUBLE)
    assert failing.status is Status.RUNTIME_ERROR and failing.error_type == "EarlyExit", failing


def test_language_names_are_case_insensitive(executor):
    fb = executor.run([Program("def add(a, b):\n    return a + b\n", ADD_TESTS, language="Python")])[0]
    assert fb.status is Status.PASSED, fb
