"""Hostile Java programs from the red team's second round: line terminators, the trusted side's
work on candidate values, code that outlives its program, /proc through other spellings, and
collections whose contents changed after insertion. None may pass, cause a harness_error, or
affect another program.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict

import pytest

from trl_codefeedback.execution import Limits, Program, Status
from trl_codefeedback.execution.java import JavaBackend, build_java_source, count_java_checks

pytestmark = pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None, reason="needs a JDK")

COMPARE = """    public static boolean compare(Object obj1, Object obj2) {
        if (obj1 == null && obj2 == null){ return true; } else if (obj1 == null || obj2 == null){ return false; } else { return obj1.equals(obj2); }
    }
"""


def one_check(decl: str, expected: str) -> str:
    """An MBJP-shaped test with one check: ``decl`` declares x0 from the program, ``expected`` declares v0."""
    return ("class Main {\n" + COMPARE + "    public static void main(String[] args) throws Exception {\n"
            f"        {decl}\n        {expected}\n"
            "        if (!(compare(x0, v0))) {\n            throw new java.lang.Exception(\"Exception -- test case 0 did not pass. x0 = \" + x0);\n"
            "        }\n    }\n}\n")


INT_TEST = one_check("int x0 = Sol.g(1);", "int v0 = 4242;")
LIST_TEST = one_check("List<Integer> x0 = Sol.f(3);", "List<Integer> v0 = Arrays.asList(3, 1, 4);")
HONEST_INT = "import java.util.*;\nclass Sol {\n    static int g(int n) {\n        return 4242;\n    }\n}\n"
HONEST_LIST = "import java.util.*;\nclass Sol {\n    static List<Integer> f(int n) {\n        return Arrays.asList(3, 1, 4);\n    }\n}\n"
LIM = Limits(test_timeout_s=2.0, program_timeout_s=6.0)


def java(code: str, test: str) -> Program:
    return Program(code, {"kind": "java_main", "test": test}, language="java")


def job(p: Program, limits: Limits = LIM) -> dict:
    return {"code": p.code, "tests": p.tests, "truncated": p.truncated, "coverage": False, "limits": asdict(limits),
            "num_tests": count_java_checks(p.tests["test"]) if p.tests else 0, "language": "java"}


@pytest.fixture(scope="module")
def backend():
    with JavaBackend(1) as be:
        yield be


def run(be: JavaBackend, *programs: Program, limits: Limits = LIM):
    out = be.run([(job(p, limits), p) for p in programs])
    return out if len(programs) > 1 else out[0]


def not_passed(fb):
    assert fb.status is not Status.PASSED, fb
    assert fb.status is not Status.HARNESS_ERROR, fb
    assert fb.tests_passed == 0, fb


# ---------------------------------------------------------------- 1. line terminators


@pytest.mark.parametrize("eol", ["\r", "\r\n", "\n"], ids=["CR", "CRLF", "LF"])
def test_shadowing_check_holds_for_every_line_terminator(backend, eol):
    code = eol.join(["import java.util.*;", "class Math { static int x() { return 4242; } }", "class Sol {",
                     "    static int g(int n) {", "        return Math.x();", "    }", "}", ""])
    fb = run(backend, java(code, INT_TEST))
    not_passed(fb)
    assert fb.status is Status.COMPILE_ERROR and fb.error_type == "shadows.jdk.type", fb
    assert fb.error_line == 2 and fb.error_scope.value == "line", fb


@pytest.mark.parametrize("eol", ["\r", "\r\n", "\n"], ids=["CR", "CRLF", "LF"])
def test_compile_and_runtime_error_lines_count_lines_as_javac(backend, eol):
    code = eol.join(["import java.util.*;", "class Sol {", "    static int g(int n) {", "        return undefinedVar;", "    }", "}", ""])
    fb = run(backend, java(code, INT_TEST))
    assert fb.status is Status.COMPILE_ERROR and fb.error_type == "cant.resolve.location", fb
    assert fb.error_line == 4 and fb.error_scope.value == "line" and "(line 4," in fb.error_message, fb
    code = eol.join(["import java.util.*;", "class Sol {", "    static int g(int n) {", "        int[] a = new int[1];",
                     "        return a[n + 3];", "    }", "}", ""])
    fb = run(backend, java(code, INT_TEST))
    assert fb.status is Status.RUNTIME_ERROR and fb.error_type == "ArrayIndexOutOfBoundsException", fb
    assert fb.error_line == 5 and fb.error_scope.value == "line", fb


def test_public_class_found_with_cr_line_endings():
    assert build_java_source("import java.util.*;\rpublic class Add {}\r", "class Main {}") == \
        ("import java.util.*;\npublic class Add {}\nclass Main {}", 2, "Add")
    # Only raw terminators: \u000d escapes and other Unicode separators are not javac line ends.
    assert build_java_source("a\u2028b\x0cc", None) == ("a\u2028b\x0cc\n", 1, "Main")
