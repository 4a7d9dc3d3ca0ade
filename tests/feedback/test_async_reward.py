"""Execution rewards in async form: concurrent with other async rewards, same scores, found by our trainer."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from datasets import Dataset

from trl_codefeedback.feedback import AsyncReward, UnitTestReward

SLOW = {"kind": "asserts", "asserts": ["import time\ntime.sleep(0.4)\nassert f() == 1"]}


def _call_kwargs(n: int, tag: int = 0) -> dict:
    # ``tag`` makes every program new (no cache hit): each really runs for 0.4 s.
    return dict(prompts=["p"] * n, completions=[f"def f():\n    return 1  # {tag}-{i}\n" for i in range(n)], tests=[SLOW] * n)


def test_async_form_gives_the_same_scores_and_is_recognised_by_trl():
    from trl.trainer.utils import is_async_callable

    reward = UnitTestReward()
    wrapped = reward.as_async()
    assert isinstance(wrapped, AsyncReward) and is_async_callable(wrapped) and not is_async_callable(reward)
    assert wrapped.__name__ == reward.__name__
    kwargs = dict(prompts=["p", "p"], completions=["def f():\n    return 1\n", "def f():\n    return 2\n"],
                  tests=[{"kind": "asserts", "asserts": ["assert f() == 1"]}] * 2)
    assert asyncio.run(wrapped(**kwargs)) == reward(**kwargs)
    assert wrapped.last_results is reward.last_results  # the wrapped reward's state


def test_execution_overlaps_another_async_reward():
    wrapped = UnitTestReward().as_async()

    async def judge(prompts=None, completions=None, **kwargs):  # e.g. an LLM judge over the network
        await asyncio.sleep(1.0)
        return [0.0] * len(completions)

    async def both(tag: int):
        return await asyncio.gather(wrapped(**_call_kwargs(2, tag)), judge(**_call_kwargs(2, tag)))

    asyncio.run(both(0))  # the pool starts
    t0 = time.perf_counter()
    rewards, judged = asyncio.run(both(1))
    elapsed = time.perf_counter() - t0
    assert rewards == [1.0, 1.0] and judged == [0.0, 0.0]
    # In sequence: 1.0 s (judge) + 0.4 s (the two programs, one per worker) at least.
    assert elapsed < 1.0 + 0.4 * 0.75, f"execution did not overlap the judge: {elapsed:.2f} s"


@pytest.mark.slow
def test_token_level_trainer_uses_the_wrapped_reward(tiny_model_path, tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "trainers"))
    from _helpers import code_rows, config_kwargs

    from trl_codefeedback.trainers import CodeFeedbackGRPOConfig, CodeFeedbackGRPOTrainer

    reward = UnitTestReward(mode="adaptive")
    trainer = CodeFeedbackGRPOTrainer(
        model=str(tiny_model_path),
        reward_funcs=[reward.as_async()],
        args=CodeFeedbackGRPOConfig(**config_kwargs(tmp_path, max_steps=1)),
        train_dataset=Dataset.from_list(code_rows(4)),
    )
    assert trainer._find_execution_reward() is reward
    trainer.train()
    logged = next(h for h in trainer.state.log_history if "unit_test_reward/pass_ratio" in h)
    assert "codefeedback/penalized_token_frac" in logged
    assert reward.last_results  # the step's rewards came from really running the completions
