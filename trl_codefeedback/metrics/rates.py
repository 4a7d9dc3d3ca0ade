"""Compile rate, execution rate and status counts over :class:`Feedback` records (RLCF's metrics).

``harness_error`` records are our fault (a worker died, a spawn failed), never the model's:
they are left out of every rate's denominator and counted separately.

Example:
    >>> from trl_codefeedback.execution.feedback import Feedback
    >>> fbs = [Feedback("passed"), Feedback("failed"), Feedback("compile_error"), Feedback("harness_error")]
    >>> compile_rate(fbs), execution_rate(fbs)
    (0.6666666666666666, 0.6666666666666666)
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from trl_codefeedback.execution.feedback import Feedback, Status


def _scored(feedbacks: Iterable[Feedback]) -> list[Feedback]:
    return [fb for fb in feedbacks if fb.status is not Status.HARNESS_ERROR]


def compile_rate(feedbacks: Iterable[Feedback]) -> float:
    """Fraction of programs that compiled (``Feedback.compiled``), harness errors excluded; NaN if none left."""
    scored = _scored(feedbacks)
    return sum(fb.compiled for fb in scored) / len(scored) if scored else float("nan")


def execution_rate(feedbacks: Iterable[Feedback]) -> float:
    """Fraction of programs that ran without error (status passed or failed, ``Feedback.executed``),
    harness errors excluded; NaN if none left."""
    scored = _scored(feedbacks)
    return sum(fb.executed for fb in scored) / len(scored) if scored else float("nan")


def status_counts(feedbacks: Iterable[Feedback]) -> dict[str, int]:
    """Number of records per status, every status present (zeros included), harness errors too.

    >>> status_counts([Feedback("passed")])["passed"]
    1
    """
    counts = Counter(fb.status.value for fb in feedbacks)
    return {s.value: counts.get(s.value, 0) for s in Status}
