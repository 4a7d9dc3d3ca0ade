"""One dict of evaluation numbers from the Feedback records of every task.

Example:
    >>> from trl_codefeedback.execution.feedback import Feedback
    >>> s = summarize({"t1": [Feedback("passed"), Feedback("failed")]}, ks=(1, 2))
    >>> s["pass@1"], s["pass@2"], s["execution_rate"], s["status_counts"]["failed"]
    (0.5, 1.0, 1.0, 1)
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from trl_codefeedback.execution.feedback import Feedback, Status
from trl_codefeedback.metrics.pass_at_k import pass_at_k_per_task
from trl_codefeedback.metrics.rates import compile_rate, execution_rate, status_counts


def summarize(feedbacks_by_task: Mapping[str, Sequence[Feedback]], ks: Iterable[int] = (1, 10, 100)) -> dict[str, Any]:
    """pass@k (for each k no larger than every task's sample count), compile / execution rates and counts.

    Harness errors are never the model's fault: they are dropped from each task's samples
    before pass@k (a task left with no samples is left out of pass@k) and from the rates'
    denominators, and counted in ``num_harness_errors``. Keys: ``pass@<k>``..., ``compile_rate``, ``execution_rate``, ``status_counts``,
    ``num_tasks``, ``num_programs``, ``num_harness_errors``.
    """
    all_fbs = [fb for fbs in feedbacks_by_task.values() for fb in fbs]
    scored = {t: [fb.passed for fb in fbs if fb.status is not Status.HARNESS_ERROR]
              for t, fbs in feedbacks_by_task.items()}
    scored = {t: v for t, v in scored.items() if v}
    out: dict[str, Any] = pass_at_k_per_task(scored, ks) if scored else {}
    counts = status_counts(all_fbs)
    out.update(
        compile_rate=compile_rate(all_fbs),
        execution_rate=execution_rate(all_fbs),
        status_counts=counts,
        num_tasks=len(feedbacks_by_task),
        num_programs=len(all_fbs),
        num_harness_errors=counts[Status.HARNESS_ERROR.value],
    )
    return out
