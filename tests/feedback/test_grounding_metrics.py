"""rlcf_metrics: RLCF's compile rate, execution rate and pass@1."""

from trl_codefeedback.execution.feedback import Feedback
from trl_codefeedback.metrics import rlcf_metrics


def test_rlcf_metrics():
    out = rlcf_metrics(
        {
            "a": [Feedback("passed"), Feedback("compile_error"), Feedback("harness_error")],
            "b": [Feedback("runtime_error"), Feedback("failed")],
            "c": [Feedback("timeout"), Feedback("passed")],
        }
    )
    assert out["compile_rate"] == 5 / 6
    assert out["execution_rate"] == 3 / 6
    assert out["pass@1"] == (0.5 + 0.0 + 0.5) / 3
    assert out["num_harness_errors"] == 1 and out["num_programs"] == 7 and out["num_tasks"] == 3
    assert "pass@2" in rlcf_metrics({"t": [Feedback("passed")] * 2}, ks=(1, 2))
