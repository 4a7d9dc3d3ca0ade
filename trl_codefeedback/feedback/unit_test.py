"""RLTF unit-test reward: run each completion against its row's tests, score by outcome.

Example:
    >>> from datasets import Dataset
    >>> from trl import GRPOConfig, GRPOTrainer
    >>> from trl_codefeedback.feedback import UnitTestReward
    >>> reward = UnitTestReward(mode="adaptive")
    >>> reward(
    ...     prompts=["Write f(x) returning x + 1."],
    ...     completions=["```python\\ndef f(x):\\n    return x + 1\\n```"],
    ...     tests=['{"kind": "asserts", "asserts": ["assert f(1) == 2"]}'],
    ... )                                                                # doctest: +SKIP
    [1.0]
    >>> trainer = GRPOTrainer(model, reward_funcs=[reward], train_dataset=ds, args=GRPOConfig(...))  # doctest: +SKIP
    >>> # truncated completions are detected from TRL's completion_ids and the calling trainer's limit
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trl_codefeedback.execution.feedback import Feedback, Status
from trl_codefeedback.feedback.base import ExecutionReward, ScoredCompletion, _required_column
from trl_codefeedback.feedback.config import MODES, RLTFRewardValues


class UnitTestReward(ExecutionReward):
    """Reward from unit-test execution (RLTF coarse or adaptive feedback), usable in TRL's ``reward_funcs``.

    Args:
        mode: ``"coarse"`` (one value per status) or ``"adaptive"`` (a failed program earns
            ``failed + adaptive_scale * passed / total``).
        values: the reward per status (:class:`RLTFRewardValues`, RLTF paper defaults).
        tests_column: dataset column holding each row's test spec (JSON text or dict).
        **kwargs: see :class:`~trl_codefeedback.feedback.base.ExecutionReward` (language,
            code_prefix_column, truncated_column, max_completion_length, eos_token_ids, limits,
            executor, name).

    A completion with no code scores ``values.compile_error`` (status compile_error,
    error_type ``"EmptyCompletion"``); a harness error scores ``None`` (TRL skips it) and
    is logged with a warning.
    """

    default_name = "unit_test_reward"

    def __init__(
        self,
        mode: str = "coarse",
        values: RLTFRewardValues | None = None,
        tests_column: str = "tests",
        **kwargs: Any,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown reward mode {mode!r}; expected one of {list(MODES)}")
        super().__init__(**kwargs)
        self.mode = mode
        self.values = values or RLTFRewardValues()
        self.tests_column = tests_column

    def required_columns(self) -> dict[str, str]:
        return {self.tests_column: "the test specs"}

    def _row_tests(self, kwargs: dict[str, Any], n: int, label: Callable[[int], str] = str) -> list[Any]:
        column = _required_column(
            kwargs, self.tests_column, n, owner=self.__name__, what="the test specs", option="tests_column", cls=type(self).__name__
        )
        for i, spec in enumerate(column):
            if spec is None:
                raise ValueError(f"{self.__name__}: {label(i)}: column {self.tests_column!r} holds no tests (None)")
        return column  # each spec is parsed, and checked against the row's language, by ExecutionReward._rows

    def _score(self, feedback: Feedback) -> float | None:
        return self.values.value(feedback, mode=self.mode)

    def _log_metrics(self, results: list[ScoredCompletion], log_metric: Callable[[str, float], None]) -> None:
        super()._log_metrics(results, log_metric)
        scored = [r for r in results if r.feedback.status is not Status.HARNESS_ERROR]
        if scored:
            log_metric(f"{self.__name__}/pass_ratio", sum(r.feedback.pass_ratio for r in scored) / len(scored))
