"""Reward values for execution feedback, as typed dataclasses (one place, configurable).

RLTF (Liu et al. 2023) coarse values: passes all tests +1.0, runs but fails a test
-0.3, runtime error or timeout -0.6, syntax/compile error -1.0. Adaptive mode
replaces the value of a *failed* program (ran, wrong answer) with
``failed + adaptive_scale * passed / total`` (paper: -0.3 + 1.3 * ratio).

Example:
    >>> v = RLTFRewardValues()
    >>> v.value(Feedback(status=Status.FAILED, tests_passed=1, tests_total=2), mode="adaptive")
    0.35
    >>> v.value(Feedback(status=Status.HARNESS_ERROR)) is None
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl_codefeedback.execution.feedback import Feedback, Status

MODES = ("coarse", "adaptive")


@dataclass(frozen=True)
class RLTFRewardValues:
    """Scalar reward per execution status (RLTF paper defaults)."""

    passed: float = field(default=1.0, metadata={"help": "Reward of a program that passes every test."})
    failed: float = field(
        default=-0.3, metadata={"help": "Reward of a program that runs but fails a test (base of the adaptive reward)."}
    )
    runtime_error: float = field(default=-0.6, metadata={"help": "Reward of a program that raises at run time."})
    timeout: float = field(default=-0.6, metadata={"help": "Reward of a program that runs past its time limit."})
    resource_limit: float = field(
        default=-0.6, metadata={"help": "Reward of a program that exceeds its memory or output cap."}
    )
    compile_error: float = field(
        default=-1.0,
        metadata={"help": "Reward of a program that does not compile; also of a completion holding no code."},
    )
    adaptive_scale: float = field(
        default=1.3,
        metadata={"help": "Adaptive mode: a failed program gets `failed + adaptive_scale * passed / total`."},
    )

    def value(self, feedback: Feedback, mode: str = "coarse") -> float | None:
        """The reward of one :class:`Feedback`; ``None`` for a harness error (not the model's fault)."""
        if mode not in MODES:
            raise ValueError(f"unknown reward mode {mode!r}; expected one of {list(MODES)}")
        status = feedback.status
        if status is Status.HARNESS_ERROR:
            return None
        if status is Status.FAILED and mode == "adaptive":
            return round(self.failed + self.adaptive_scale * feedback.pass_ratio, 10)
        return {
            Status.PASSED: self.passed,
            Status.FAILED: self.failed,
            Status.RUNTIME_ERROR: self.runtime_error,
            Status.TIMEOUT: self.timeout,
            Status.RESOURCE_LIMIT: self.resource_limit,
            Status.COMPILE_ERROR: self.compile_error,
        }[status]


@dataclass(frozen=True)
class CompilerRewardValues:
    """Scalar reward of the compile-only check (RLCF's compiler feedback)."""

    compiles: float = field(default=1.0, metadata={"help": "Reward of a program that compiles."})
    compile_error: float = field(
        default=-1.0,
        metadata={"help": "Reward of a program that does not compile; also of a completion holding no code."},
    )

    def value(self, feedback: Feedback) -> float | None:
        """``compiles`` / ``compile_error``; ``None`` for a harness error."""
        if feedback.status is Status.HARNESS_ERROR:
            return None
        return self.compile_error if feedback.status is Status.COMPILE_ERROR else self.compiles
