import math

import pytest

from trl_codefeedback.execution.feedback import Feedback, Status
from trl_codefeedback.metrics import compile_rate, execution_rate, status_counts, summarize


def fb(status: str) -> Feedback:
    return Feedback(status=Status(status), tests_total=3)


def test_rates_exclude_harness_errors():
    fbs = [fb("passed"), fb("failed"), fb("runtime_error"), fb("compile_error"), fb("timeout"),
           fb("harness_error"), fb("harness_error")]
    assert compile_rate(fbs) == pytest.approx(4 / 5)  # compile_error is the only non-compiling of 5 scored
    assert execution_rate(fbs) == pytest.approx(2 / 5)  # passed + failed
    counts = status_counts(fbs)
    assert counts["harness_error"] == 2 and counts["passed"] == 1 and counts["resource_limit"] == 0
    assert set(counts) == {s.value for s in Status}


def test_rates_of_nothing_are_nan():
    assert math.isnan(compile_rate([])) and math.isnan(execution_rate([fb("harness_error")]))


def test_summarize():
    by_task = {
        "t1": [fb("passed"), fb("failed"), fb("harness_error")],
        "t2": [fb("compile_error"), fb("runtime_error")],
        "t3": [fb("harness_error")],  # no scored sample: left out of pass@k
    }
    s = summarize(by_task, ks=(1, 2, 10))
    assert s["pass@1"] == pytest.approx((0.5 + 0.0) / 2)
    assert s["pass@2"] == pytest.approx((1.0 + 0.0) / 2)
    assert "pass@10" not in s
    assert s["compile_rate"] == pytest.approx(3 / 4) and s["execution_rate"] == pytest.approx(2 / 4)
    assert (s["num_tasks"], s["num_programs"], s["num_harness_errors"]) == (3, 6, 2)
    assert s["status_counts"]["compile_error"] == 1
