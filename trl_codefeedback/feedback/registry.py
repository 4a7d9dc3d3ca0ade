"""Rewards by name, so recipes can pick them in YAML (as open-r1 does).

Example:
    >>> funcs = get_reward_funcs(["unit_test_adaptive", "compiler"])
    >>> [f.__name__ for f in funcs]
    ['unit_test_adaptive', 'compiler']
"""

from __future__ import annotations

from typing import Any, Callable

from trl_codefeedback.feedback.compiler import CompilerReward
from trl_codefeedback.feedback.unit_test import UnitTestReward

REWARD_REGISTRY: dict[str, Callable[..., Any]] = {
    "unit_test": lambda **kw: UnitTestReward(mode="coarse", name="unit_test", **kw),
    "unit_test_adaptive": lambda **kw: UnitTestReward(mode="adaptive", name="unit_test_adaptive", **kw),
    "compiler": lambda **kw: CompilerReward(name="compiler", **kw),
}


def register_reward(name: str, factory: Callable[..., Any]) -> None:
    """Add a reward factory (called with the shared keyword arguments) under ``name``."""
    REWARD_REGISTRY[name] = factory


def get_reward_funcs(names: list[str], **kwargs: Any) -> list[Any]:
    """Instantiate the named rewards with shared keyword arguments (e.g. ``language``, ``limits``)."""
    unknown = [n for n in names if n not in REWARD_REGISTRY]
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; available: {sorted(REWARD_REGISTRY)}")
    return [REWARD_REGISTRY[n](**kwargs) for n in names]
