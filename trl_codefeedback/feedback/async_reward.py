"""Execution rewards as coroutines, so TRL runs them concurrently with other async rewards.

TRL's ``GRPOTrainer`` awaits every ``async`` reward function of a step together
(``asyncio.gather`` on its event-loop thread) after the synchronous ones. :class:`AsyncReward`
wraps an execution reward (``UnitTestReward(...).as_async()``, ``CompilerReward``; any reward
callable with ``AsyncReward(reward)``) and runs it in a worker thread: the sandboxed execution then overlaps an LLM judge, a remote scorer or any
other async reward of the same step, instead of running before them. Scores, logging and the
``Feedback`` records are the wrapped reward's own; our token-level trainers find the wrapped reward
for their per-token penalties.

Example:
    >>> from trl_codefeedback.feedback import UnitTestReward
    >>> reward = UnitTestReward(mode="adaptive").as_async()
    >>> reward.__name__
    'unit_test_reward'
    >>> # GRPOTrainer(..., reward_funcs=[reward, my_async_llm_judge], ...)
"""

from __future__ import annotations

import asyncio
from typing import Any


class AsyncReward:
    """``await reward(prompts=..., completions=..., **columns)`` runs ``reward`` in a thread."""

    def __init__(self, reward: Any):
        if not callable(reward):
            raise TypeError(f"AsyncReward wraps a reward callable, got {type(reward).__name__}")
        self.reward = reward
        self.__name__ = getattr(reward, "__name__", type(reward).__name__)

    async def __call__(self, prompts: list[Any] | None = None, completions: list[Any] | None = None, **kwargs: Any) -> list[float | None]:
        return await asyncio.to_thread(self.reward, prompts=prompts, completions=completions, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # last_results, last_feedback, attach_trainer... are the wrapped reward's.
        if name == "reward":
            raise AttributeError(name)
        return getattr(self.reward, name)

    def __repr__(self) -> str:
        return f"AsyncReward({self.reward!r})"
