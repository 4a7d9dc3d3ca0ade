"""Evaluation metrics: pass@k, compile / execution rates, a summary, and an ``evaluate`` module.

Example:
    >>> from trl_codefeedback.metrics import pass_at_k_per_task
    >>> pass_at_k_per_task({"t": [True, False]}, ks=(1,))
    {'pass@1': 0.5}
"""

from pathlib import Path

from trl_codefeedback.metrics.pass_at_k import pass_at_k, pass_at_k_per_task
from trl_codefeedback.metrics.rates import compile_rate, execution_rate, status_counts
from trl_codefeedback.metrics.summary import summarize
from trl_codefeedback.metrics.rlcf import rlcf_metrics


def metric_path() -> str:
    """Folder of the ``evaluate`` metric module: ``evaluate.load(metric_path())``."""
    return str(Path(__file__).resolve().parent / "code_feedback_metric")


__all__ = [
    "pass_at_k",
    "pass_at_k_per_task",
    "compile_rate",
    "execution_rate",
    "status_counts",
    "summarize",
    "metric_path",
    "rlcf_metrics",
]
