"""`trl-codefeedback execute` with Java rows (same CLI, "language": "java", tests of kind java_main)."""

import json
import shutil

import pytest

from trl_codefeedback.cli import main
from trl_codefeedback.data import load_mbjp

pytestmark = pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK")


def test_execute_java_rows(tmp_path):
    row = load_mbjp()[0]
    tests = json.loads(row["tests"])
    rows = [
        {"language": "java", "code": row["reference"], "tests": tests, "task": "ok"},
        {"language": "java", "code": row["reference"].replace("return T[m][n];", "return T[m][n] + x;"), "tests": tests, "task": "bad"},
        {"language": "java", "code": row["reference"], "tests": None, "task": "compile-only"},
    ]
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["execute", str(inp), "-o", str(out), "--workers", "1", "-q"]) == 0
    res = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["status"] for r in res] == ["passed", "compile_error", "passed"]
    assert res[0]["tests_passed"] == res[0]["tests_total"] == 3
    assert res[1]["error_type"] == "cant.resolve.location" and res[1]["error_scope"] == "line"
    assert row["reference"].splitlines()[res[1]["error_line"] - 1].strip() == "return T[m][n];"
