"""RLCF compiler feedback: does the completion's program compile?

Example:
    >>> from trl_codefeedback.feedback import CompilerReward
    >>> CompilerReward()(prompts=["..."], completions=["def f(:\\n", "x = 1\\n"])  # doctest: +SKIP
    [-1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trl_codefeedback.execution.feedback import Feedback
from trl_codefeedback.feedback.base import ExecutionReward, ScoredCompletion
from trl_codefeedback.feedback.config import CompilerRewardValues


class CompilerReward(ExecutionReward):
    """Compile-only reward (RLCF's compiler check), usable in TRL's ``reward_funcs``.

    Each program is checked with ``Program(tests=None)``: nothing runs but the
    compiler (Python's ``compile``; for Java the worker JVM's in-memory ``javac``).

    Args:
        values: rewards for compiles / does not compile (:class:`CompilerRewardValues`, +1 / -1).
        **kwargs: see :class:`~trl_codefeedback.feedback.base.ExecutionReward`.

    A completion with no code scores ``values.compile_error``; a harness error scores ``None``.
    """

    default_name = "compiler_reward"
    supported_languages = ("python", "java")

    def __init__(self, values: CompilerRewardValues | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.values = values or CompilerRewardValues()

    def _row_tests(self, kwargs: dict[str, Any], n: int, label: Callable[[int], str] = str) -> list[Any]:
        return [None] * n

    def _score(self, feedback: Feedback) -> float | None:
        return self.values.value(feedback)

    def _log_metrics(self, results: list[ScoredCompletion], log_metric: Callable[[str, float], None]) -> None:
        super()._log_metrics(results, log_metric)
        log_metric(f"{self.__name__}/compile_rate", sum(r.feedback.compiled for r in results) / len(results))
