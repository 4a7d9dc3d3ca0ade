"""Building blocks of the hostile-Java tests: MBJP-shaped tests, programs and the backend's job dicts.

Example:
    >>> "compare(x0, v0)" in one_check("int x0 = Sol.g(1);", "int v0 = 4242;")
    True
"""

from __future__ import annotations

from dataclasses import asdict

from trl_codefeedback.execution import Limits, Program
from trl_codefeedback.execution.java import count_java_checks

COMPARE = """    public static boolean compare(Object obj1, Object obj2) {
        if (obj1 == null && obj2 == null){ return true; } else if (obj1 == null || obj2 == null){ return false; } else { return obj1.equals(obj2); }
    }
"""
LIM = Limits(test_timeout_s=2.0, program_timeout_s=6.0)


def one_check(decl: str, expected: str) -> str:
    """An MBJP-shaped test with one check: ``decl`` declares x0 from the program, ``expected`` declares v0."""
    return ("class Main {\n" + COMPARE + "    public static void main(String[] args) throws Exception {\n"
            f"        {decl}\n        {expected}\n"
            "        if (!(compare(x0, v0))) {\n            throw new java.lang.Exception(\"Exception -- test case 0 did not pass. x0 = \" + x0);\n"
            "        }\n    }\n}\n")


def java(code: str, test: str) -> Program:
    return Program(code, {"kind": "java_main", "test": test}, language="java")


def job(p: Program, limits: Limits = LIM) -> dict:
    """The dict the executor hands the Java backend for ``p``."""
    return {"code": p.code, "tests": p.tests, "truncated": p.truncated, "coverage": False, "limits": asdict(limits),
            "num_tests": count_java_checks(p.tests["test"]) if p.tests else 0, "language": "java"}
