"""Reference programs through the Java backend: every MBJP canonical solution, MathQA-Java prompts."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter

import pytest

from trl_codefeedback.data import load_mathqa_java, load_mbjp
from trl_codefeedback.execution import Program, Status
from trl_codefeedback.execution.specs import parse_test_spec

pytestmark = pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None, reason="needs a JDK")

# MBJP v1.2 canonical solutions that are broken upstream (checked by hand), with the status we give them.
MBJP_UPSTREAM_BROKEN = {
    # reference does not compile: a boxed / Number type where the signature wants another
    "MBJP/180": (Status.COMPILE_ERROR, "java.lang.Number cannot be converted to double"),
    "MBJP/198": (Status.COMPILE_ERROR, "int cannot be converted to java.lang.Double"),
    "MBJP/214": (Status.COMPILE_ERROR, "int cannot be converted to java.lang.Double"),
    "MBJP/300": (Status.COMPILE_ERROR, "int cannot be converted to java.lang.Double"),
    "MBJP/397": (Status.COMPILE_ERROR, "int cannot be converted to java.lang.Double"),
    "MBJP/432": (Status.COMPILE_ERROR, "java.lang.Number cannot be converted to double"),
    "MBJP/519": (Status.COMPILE_ERROR, "int cannot be converted to java.lang.Double"),
    "MBJP/535": (Status.COMPILE_ERROR, "int cannot be converted to java.lang.Double"),
    "MBJP/622": (Status.COMPILE_ERROR, "java.lang.Integer cannot be converted to java.lang.Double"),
    "MBJP/738": (Status.COMPILE_ERROR, "int cannot be converted to java.lang.Double"),
    "MBJP/904": (Status.COMPILE_ERROR, "bad operand types for binary operator '%'"),
    # reference calls System.exit(0) before returning: mxeval's `java Main` exits 0 and counts it as passed
    "MBJP/106": (Status.RUNTIME_ERROR, "System.exit"),
    "MBJP/553": (Status.RUNTIME_ERROR, "System.exit"),
    "MBJP/579": (Status.RUNTIME_ERROR, "System.exit"),
    "MBJP/835": (Status.RUNTIME_ERROR, "System.exit"),
    "MBJP/871": (Status.RUNTIME_ERROR, "System.exit"),
    # reference reads numbers from System.in (empty), then calls System.exit(0)
    "MBJP/325": (Status.RUNTIME_ERROR, "System.exit"),
}


@pytest.fixture(scope="module")
def mbjp():
    return load_mbjp()


@pytest.mark.slow
def test_every_mbjp_canonical_solution_passes(executor, mbjp):
    rows = [r for r in mbjp if r["reference"]]
    assert len(rows) == 874
    t0 = time.monotonic()
    fbs = executor.run([Program(r["reference"], r["tests"], language="java") for r in rows])
    elapsed = time.monotonic() - t0
    bad = {r["task_id"]: fb for r, fb in zip(rows, fbs) if not fb.passed}
    assert not [t for t, fb in bad.items() if fb.status is Status.HARNESS_ERROR]
    assert set(bad) == set(MBJP_UPSTREAM_BROKEN), {t: (fb.status, fb.error_message) for t, fb in bad.items()}
    for task_id, (status, fragment) in MBJP_UPSTREAM_BROKEN.items():
        assert bad[task_id].status is status and fragment in bad[task_id].error_message, (task_id, bad[task_id])
        assert bad[task_id].error_line is not None  # the error is located in the candidate code
    for r, fb in zip(rows, fbs):
        if fb.passed:
            assert fb.tests_passed == fb.tests_total == parse_test_spec(r["tests"]).num_tests
    assert Counter(fb.tests_total for fb in fbs) == Counter({3: 867, 2: 7})
    print(f"\nMBJP canonical: {len(rows)} programs in {elapsed:.1f} s ({len(rows) / elapsed:.0f}/s)")


@pytest.mark.slow
def test_mathqa_java_prompts_compile_with_a_trivial_body(executor):
    ds = load_mathqa_java()
    assert len(ds) == 1883
    fbs = executor.run([Program(r["prompt"] + "        return 0.0;\n    }\n}\n", r["tests"], language="java") for r in ds])
    counts = Counter(fb.status for fb in fbs)
    assert set(counts) <= {Status.PASSED, Status.FAILED}, counts  # compiled and ran; the harness classified it
    assert counts[Status.FAILED] > 1500  # 0.0 is rarely the answer
    for fb in fbs:
        assert fb.tests_total == 1 and fb.error_type in (None, "WrongAnswer")


def test_mbjp_broken_reference_variant(executor, mbjp):
    """A canonical solution with one check broken: pass ratio exact on real MBJP data."""
    row = next(r for r in mbjp if r["task_id"] == "MBJP/1")
    assert "return T[m][n];" in row["reference"]
    wrong = row["reference"].replace("return T[m][n];", "return T[m][n] == 12 ? 0 : T[m][n];")
    fb = executor.run([Program(wrong, row["tests"], language="java")])[0]
    assert fb.status is Status.FAILED and (fb.tests_passed, fb.tests_total) == (2, 3)
    assert [o.value for o in fb.test_outcomes] == ["pass", "fail", "pass"]
    spec = json.loads(row["tests"])
    assert spec["kind"] == "java_main"
