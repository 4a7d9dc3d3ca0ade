"""How HumanEval-style ``check(candidate)`` functions are split into per-test units.

The logic lives in the (stdlib-only) worker script, which must not import the package;
this module re-exports it for the parent side.

Example:
    >>> count_check_units("def check(candidate):\\n    assert candidate(1) == 1\\n    assert candidate(2) == 2\\n")
    2
"""

from trl_codefeedback.execution.python_worker import count_check_units, split_check_units

__all__ = ["count_check_units", "split_check_units"]
