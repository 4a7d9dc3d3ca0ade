"""RLCF's evaluation numbers (Jain et al. 2023): compile rate, execution rate and pass@1.

Example:
    >>> from trl_codefeedback.execution.feedback import Feedback
    >>> rlcf_metrics({"MBJP/1": [Feedback("passed"), Feedback("compile_error")],
    ...               "MBJP/2": [Feedback("runtime_error"), Feedback("failed")]})
    {'compile_rate': 0.75, 'execution_rate': 0.5, 'pass@1': 0.25, 'num_tasks': 2, 'num_programs': 4, 'num_harness_errors': 0}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from trl_codefeedback.execution.feedback import Feedback
from trl_codefeedback.metrics.summary import summarize


def rlcf_metrics(feedbacks_by_task: Mapping[str, Sequence[Feedback]], ks: Iterable[int] = (1,)) -> dict[str, float]:
    """Compile rate, execution rate (ran without error: passed or wrong answer) and pass@k per task.

    The rates are over all programs; pass@k is the unbiased estimator averaged over tasks
    (:func:`~trl_codefeedback.metrics.summary.summarize`: harness errors are left out of both
    and counted in ``num_harness_errors``).
    """
    s = summarize(feedbacks_by_task, ks=ks)
    out = {"compile_rate": s["compile_rate"], "execution_rate": s["execution_rate"]}
    out.update({k: v for k, v in s.items() if k.startswith("pass@")})
    out.update(num_tasks=s["num_tasks"], num_programs=s["num_programs"], num_harness_errors=s["num_harness_errors"])
    return out
