"""What the executor runs: a :class:`Program` under :class:`Limits`.

Example:
    >>> p = Program(code="def f(x):\\n    return x + 1\\n",
    ...             tests={"kind": "asserts", "asserts": ["assert f(1) == 2"]})
    >>> p.language
    'python'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LANGUAGES = ("python", "java")


class UnknownLanguageError(ValueError):
    """A program or reward asked for a language the executor has no backend for."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one program. Named constants, one place (evalplus style).

    Time limits count the program's own CPU time (all its processes and threads, read from the
    kernel outside the program), so a verdict does not change with how busy the machine is; the
    wall clock is capped at ``wall_time_factor`` times each limit, so a sleeping or blocked program
    still ends (verdicts hold up to that much oversubscription). Java programs: the same, CPU time
    read inside the candidate JVM.

    Attributes:
        test_timeout_s: CPU-time limit of one test, in seconds.
        program_timeout_s: CPU-time limit of the whole program (all tests); the process is
            killed when it runs past it.
        wall_time_factor: the wall-clock cap of a test (of the program) is this many times its
            CPU-time limit; the timeout's message says which limit fired.
        memory_mb: address-space limit of the program's process.
        output_bytes: cap on what the program may print (per test); more -> resource_limit.
        max_processes: processes the program may have at once (fork bombs stop here).
    """

    test_timeout_s: float = 3.0
    program_timeout_s: float = 10.0
    memory_mb: int = 1024
    output_bytes: int = 1 << 20
    max_processes: int = 32
    wall_time_factor: float = 4.0

    def __post_init__(self) -> None:
        if self.test_timeout_s <= 0 or self.program_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if self.wall_time_factor < 1.0:
            raise ValueError("wall_time_factor must be at least 1 (the wall clock caps the CPU-time limits)")
        if self.memory_mb < 64:
            raise ValueError("memory_mb below 64 leaves no room for the interpreter")


def language_name(value: Any) -> Any:
    """``"Python"`` / ``" java "`` -> ``"python"`` / ``"java"``; anything but a string is returned as
    it is (and refused where languages are checked)."""
    return value.strip().lower() if isinstance(value, str) else value


@dataclass(frozen=True)
class Program:
    """One candidate program and its tests.

    Attributes:
        code: the candidate code (for completion-style prompts: prompt + completion).
        tests: a test spec (dict or JSON text, see :mod:`trl_codefeedback.execution.specs`).
        language: ``"python"`` or ``"java"``.
        truncated: the completion was cut at the generation length limit; a syntax
            error on its last line is then blamed on the whole program (scope global).
        coverage: record which candidate lines ran (``Feedback.covered_lines``).
    """

    code: str
    tests: Any
    language: str = "python"
    truncated: bool = False
    coverage: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "language", language_name(self.language))
