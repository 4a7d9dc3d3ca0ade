"""The Feedback record: what running one program produced.

One :class:`Feedback` per program, whatever the language or test kind. Rewards,
token-level trainers, metrics and the CLI all read this record and nothing else.

Example:
    >>> fb = Feedback(status=Status.PASSED, tests_passed=3, tests_total=3)
    >>> fb.pass_ratio
    1.0
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """Outcome of one program. ``HARNESS_ERROR`` is our fault, never the model's."""

    PASSED = "passed"
    FAILED = "failed"  # ran, but a test failed (wrong answer)
    RUNTIME_ERROR = "runtime_error"
    COMPILE_ERROR = "compile_error"
    TIMEOUT = "timeout"
    RESOURCE_LIMIT = "resource_limit"  # memory or output cap
    HARNESS_ERROR = "harness_error"

    def __str__(self) -> str:  # so f-strings and json show "passed", not "Status.PASSED"
        return self.value


class ErrorScope(str, enum.Enum):
    """RLTF's fine-grained feedback scope: which tokens the error is blamed on."""

    LINE = "line"  # the tokens of ``error_line``
    GLOBAL = "global"  # the whole program
    IGNORE = "ignore"  # no fine-grained penalty

    def __str__(self) -> str:
        return self.value


class TestOutcome(str, enum.Enum):
    """Outcome of one test of a program."""

    PASS = "pass"
    FAIL = "fail"  # wrong answer
    ERROR = "error"  # exception
    TIMEOUT = "timeout"
    RESOURCE = "resource"  # memory / output cap
    NOT_RUN = "not_run"  # an earlier failure stopped the program before this test

    def __str__(self) -> str:
        return self.value

    __test__ = False  # keep pytest from collecting this class


@dataclass
class Feedback:
    """Result of executing one candidate program against its tests.

    Attributes:
        status: overall outcome (see :class:`Status`).
        tests_passed: number of tests that passed.
        tests_total: number of tests the spec holds (0 when it could not be parsed).
        error_type: e.g. ``"IndexError"``, ``"SyntaxError"``, ``"Timeout"``.
        error_message: the error's message, truncated.
        error_line: 1-based line in the *candidate code*, or ``None`` when the
            error is not located in it.
        error_scope: RLTF scope of the error, ``None`` when the program passed.
        duration_s: wall time spent on the program (0.0 for a cache hit's own cost).
        cpu_time_s: CPU time of all the program's processes (Python) or threads (Java); None
            where not measured (a compile error in Java). A cache hit keeps the first run's figure.
            Exact, except in user-namespace mode (non-root), where a program killed at the end
            of its tests reports its last reading (taken when a test ran for over 50 ms).
        test_outcomes: one :class:`TestOutcome` value per test, in order.
        covered_lines: candidate lines executed (only when coverage was requested).
        cached: True when the record came from the executor's cache.
    """

    status: Status
    tests_passed: int = 0
    tests_total: int = 0
    error_type: str | None = None
    error_message: str | None = None
    error_line: int | None = None
    error_scope: ErrorScope | None = None
    duration_s: float = 0.0
    cpu_time_s: float | None = None
    test_outcomes: list[TestOutcome] = field(default_factory=list)
    covered_lines: list[int] | None = None
    cached: bool = False

    def __post_init__(self) -> None:
        self.status = Status(self.status)
        if self.error_scope is not None:
            self.error_scope = ErrorScope(self.error_scope)
        self.test_outcomes = [TestOutcome(o) for o in self.test_outcomes]

    @property
    def pass_ratio(self) -> float:
        """Fraction of tests passed (0.0 when there are no tests)."""
        return self.tests_passed / self.tests_total if self.tests_total else 0.0

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    @property
    def compiled(self) -> bool:
        """True unless the program failed to compile (harness errors count as unknown -> False)."""
        return self.status not in (Status.COMPILE_ERROR, Status.HARNESS_ERROR)

    @property
    def executed(self) -> bool:
        """True when the program ran without error: passed or wrong answer (RLCF's execution rate)."""
        return self.status in (Status.PASSED, Status.FAILED)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (enums as their string values)."""
        d = asdict(self)
        d["status"] = self.status.value
        d["error_scope"] = self.error_scope.value if self.error_scope is not None else None
        d["test_outcomes"] = [o.value for o in self.test_outcomes]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Feedback":
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def harness_error(cls, message: str, tests_total: int = 0, duration_s: float = 0.0) -> "Feedback":
        """A record for a failure of ours (worker died, spawn failed...). Never scored as the model's."""
        return cls(
            status=Status.HARNESS_ERROR,
            tests_total=tests_total,
            error_type="HarnessError",
            error_message=message[:2000],
            duration_s=duration_s,
        )
