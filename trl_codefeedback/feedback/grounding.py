"""RLCF grounding function: compiler / execution checks gated before a discriminator score.

:class:`GroundingReward` runs each completion's program against its row's tests (any language
the executor supports: Python, Java), then

* a program that does not compile (or a completion with no code) gets ``compile_error``;
  the discriminator is not consulted (the gate);
* a program that compiles gets its execution value plus ``discriminator_weight`` times the
  discriminator's score ``d`` in ``[0, 1]`` against the row's reference (for the trained scorer
  ``sigmoid(f(x ∘ y) - f(x ∘ ref))``: 0.5 when it cannot tell the program from the reference).

Default table (:class:`GroundingRewardValues`, ``gate="compile"``, ``d`` = discriminator score):

====================================  =========================  ==============
case                                  reward                     range
====================================  =========================  ==============
no code / compile error               ``compile_error`` = -1.0   -1.0
runtime error, timeout, memory cap    -0.5 + 0.5 * d             [-0.5, 0.0]
runs, fails a test                     0.0 + 0.5 * d             [0.0, 0.5]
passes every test                      1.0 + 0.5 * d             [1.0, 1.5]
harness error (ours)                  ``None`` (TRL skips it)
====================================  =========================  ==============

Where the values come from: RLCF (Jain et al. 2023) gates on the compiler: programs that fail
the compiler's checks get a fixed penalty and only programs that pass them are scored further,
by execution and by a discriminator comparing them with the reference. We could not read the
paper's exact constants (only its abstract was available to us), so the constants above are
our documented choice: one step of 0.5 to 1.0 per execution level and
``discriminator_weight = 0.5`` no larger than the smallest step, so that the discriminator
orders programs *within* an execution level and never lifts a program above a better-executing
one. Change any field of :class:`GroundingRewardValues` (e.g. ``gate="execute"`` scores only
programs that run without error with the discriminator; ``gate="none"`` adds ``w * d`` to
compile errors too).

Example:
    >>> from trl_codefeedback.execution.feedback import Feedback, Status
    >>> v = GroundingRewardValues()
    >>> v.value(Feedback(status=Status.PASSED), discriminator_score=0.5)
    1.25
    >>> v.value(Feedback(status=Status.COMPILE_ERROR), discriminator_score=0.9)
    -1.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from trl_codefeedback.execution.feedback import Feedback, Status
from trl_codefeedback.feedback.base import ScoredCompletion, _column_or
from trl_codefeedback.feedback.discriminator import DiscriminatorReward
from trl_codefeedback.feedback.unit_test import UnitTestReward

GATES = ("compile", "execute", "none")


@dataclass(frozen=True)
class GroundingRewardValues:
    """Weights and gating rule of the RLCF grounding function (see the module's table)."""

    passed: float = field(default=1.0, metadata={"help": "Execution value of a program that passes every test."})
    failed: float = field(default=0.0, metadata={"help": "Execution value of a program that runs but fails a test."})
    runtime_error: float = field(default=-0.5, metadata={"help": "Execution value of a program that raises at run time."})
    timeout: float = field(default=-0.5, metadata={"help": "Execution value of a program that runs past its time limit."})
    resource_limit: float = field(
        default=-0.5, metadata={"help": "Execution value of a program that exceeds its memory or output cap."}
    )
    compile_error: float = field(
        default=-1.0,
        metadata={"help": "Reward of a program that does not compile; also of a completion holding no code."},
    )
    execution_weight: float = field(default=1.0, metadata={"help": "Multiplier of the execution value."})
    discriminator_weight: float = field(
        default=0.5, metadata={"help": "Multiplier of the discriminator score d in [0, 1] (0 disables the discriminator)."}
    )
    gate: str = field(
        default="compile",
        metadata={
            "help": "Which programs the discriminator scores: 'compile' (every program that compiles, RLCF), "
            "'execute' (only programs that run without error), 'none' (all, compile errors included)."
        },
    )

    def __post_init__(self) -> None:
        if self.gate not in GATES:
            raise ValueError(f"unknown gate {self.gate!r}; expected one of {list(GATES)}")

    def execution_value(self, feedback: Feedback) -> float | None:
        """The execution part alone (``compile_error`` for a compile error, ``None`` for a harness error)."""
        return {
            Status.PASSED: self.passed,
            Status.FAILED: self.failed,
            Status.RUNTIME_ERROR: self.runtime_error,
            Status.TIMEOUT: self.timeout,
            Status.RESOURCE_LIMIT: self.resource_limit,
            Status.COMPILE_ERROR: self.compile_error,
            Status.HARNESS_ERROR: None,
        }[feedback.status]

    def gated(self, feedback: Feedback) -> bool:
        """Whether the discriminator scores this program."""
        if feedback.status is Status.HARNESS_ERROR or self.discriminator_weight == 0:
            return False
        if self.gate == "compile":
            return feedback.compiled
        if self.gate == "execute":
            return feedback.executed
        return True

    def value(self, feedback: Feedback, discriminator_score: float | None = None) -> float | None:
        """The grounding reward of one program; ``None`` for a harness error."""
        base = self.execution_value(feedback)
        if base is None:
            return None
        if feedback.status is Status.COMPILE_ERROR and self.gate != "none":
            return base
        reward = self.execution_weight * base if feedback.status is not Status.COMPILE_ERROR else base
        if discriminator_score is not None and self.gated(feedback):
            reward += self.discriminator_weight * discriminator_score
        return round(reward, 10)


class GroundingReward(UnitTestReward):
    """RLCF's grounding function as a TRL reward: compile gate, execution outcome and discriminator.

    Args:
        discriminator: a :class:`DiscriminatorReward` (``None``: execution checks only, ``d`` = 0 term).
        values: :class:`GroundingRewardValues` (weights, gate; defaults in the module table).
        tests_column: dataset column with each row's test spec.
        **kwargs: see :class:`~trl_codefeedback.feedback.base.ExecutionReward` (language,
            code_prefix_column, executor, limits, name...).

    The reference program comes from the discriminator's ``reference_column`` (``"reference"``);
    a missing column raises ``KeyError`` naming it and the available ones before anything runs.
    Each call records every program (compiling or not) in ``discriminator.rollouts`` for
    :class:`~trl_codefeedback.feedback.discriminator_training.DiscriminatorRefreshCallback`, and
    logs, through TRL's ``log_metric``: status fractions, ``compile_rate``, ``execution_rate``,
    ``pass_rate``, ``discriminator_score`` and the discriminator's latest training metrics.

    Example:
        >>> disc = DiscriminatorReward(scorer_path)                          # doctest: +SKIP
        >>> reward = GroundingReward(discriminator=disc, language="java")    # doctest: +SKIP
        >>> GRPOTrainer(model, reward_funcs=[reward], train_dataset=load_mbjp(), ...,
        ...             callbacks=[DiscriminatorRefreshCallback(disc, every_n_steps=10)])  # doctest: +SKIP
    """

    default_name = "grounding_reward"

    def __init__(
        self,
        discriminator: DiscriminatorReward | None = None,
        values: GroundingRewardValues | None = None,
        tests_column: str = "tests",
        **kwargs: Any,
    ) -> None:
        super().__init__(mode="coarse", tests_column=tests_column, **kwargs)
        self.discriminator = discriminator
        self.grounding = values or GroundingRewardValues()
        self.last_discriminator_scores: list[float | None] = []

    def attach_trainer(self, trainer: Any) -> GroundingReward:
        super().attach_trainer(trainer)
        if self.discriminator is not None:
            self.discriminator.attach_trainer(trainer)
        return self

    def _score(self, feedback: Feedback) -> float | None:
        return self.grounding.value(feedback)  # execution part; the discriminator term is added in __call__

    def __call__(
        self, prompts: list[Any] | None = None, completions: list[Any] | None = None, **kwargs: Any
    ) -> list[float | None]:
        completions = list(completions or [])
        n = len(completions)
        disc = self.discriminator
        refs = disc.references(kwargs, n, owner=self.__name__) if disc is not None else None  # validate first
        log_metric = kwargs.pop("log_metric", None)  # log once everything is scored
        super().__call__(prompts, completions, **kwargs)
        results = self.last_results
        scores: list[float | None] = [None] * n
        if disc is not None and refs is not None:
            prompt_list = list(prompts) if prompts is not None else [""] * n
            programs = [r.extracted.code for r in results]  # the model's code; the prefix is stripped from the reference
            refs = disc.strip_prefix(refs, _column_or(kwargs, self.code_prefix_column, n, ""))
            idx = [i for i, r in enumerate(results) if self.grounding.gated(r.feedback)]
            if idx:
                got = disc.score([prompt_list[i] for i in idx], [programs[i] for i in idx], [refs[i] for i in idx])
                for i, s in zip(idx, got):
                    scores[i] = s
            scored = [i for i, r in enumerate(results) if r.feedback.status is not Status.HARNESS_ERROR]
            disc.record([prompt_list[i] for i in scored], [programs[i] for i in scored], [refs[i] for i in scored])
        self.last_discriminator_scores = scores
        self.last_results = [
            replace(r, reward=self.grounding.value(r.feedback, scores[i])) for i, r in enumerate(results)
        ]
        if callable(log_metric) and results:
            self._log_grounding(self.last_results, scores, log_metric)
        return [r.reward for r in self.last_results]

    def _log_grounding(
        self, results: list[ScoredCompletion], scores: list[float | None], log_metric: Callable[[str, float], None]
    ) -> None:
        self._log_metrics(results, log_metric)
        fbs = [r.feedback for r in results if r.feedback.status is not Status.HARNESS_ERROR]
        if fbs:
            log_metric(f"{self.__name__}/compile_rate", sum(f.compiled for f in fbs) / len(fbs))
            log_metric(f"{self.__name__}/execution_rate", sum(f.executed for f in fbs) / len(fbs))
            log_metric(f"{self.__name__}/pass_rate", sum(f.passed for f in fbs) / len(fbs))
        got = [s for s in scores if s is not None]
        if got:
            log_metric(f"{self.__name__}/discriminator_score", sum(got) / len(got))
        if self.discriminator is not None:
            self.discriminator.log(log_metric)
