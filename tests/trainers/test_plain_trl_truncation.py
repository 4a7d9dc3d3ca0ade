"""With TRL's own GRPOTrainer (no attach_trainer call) the reward still detects truncated completions."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from trl_codefeedback.feedback import UnitTestReward  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _helpers import code_rows, config_kwargs  # noqa: E402

pytestmark = pytest.mark.slow


def test_plain_grpo_trainer_reward_sees_the_truncated_completions(tiny_model_path, tmp_path):
    reward = UnitTestReward(mode="adaptive")
    trainer = GRPOTrainer(
        model=str(tiny_model_path),
        reward_funcs=[reward],
        args=GRPOConfig(**config_kwargs(tmp_path, max_completion_length=6, max_steps=1)),
        train_dataset=Dataset.from_list(code_rows(4)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "length limit is unknown" warning
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="torch")
        trainer.train()
    assert reward.max_completion_length == 6 and reward.eos_token_ids == frozenset(trainer.eos_token_ids)
    logged = next(h for h in trainer.state.log_history if "completions/clipped_ratio" in h)
    # a random model rarely stops within 6 tokens: most completions are cut, and the reward says so
    assert logged["completions/clipped_ratio"] > 0
    assert logged["unit_test_reward/truncated"] == pytest.approx(logged["completions/clipped_ratio"])
    assert any(r.truncated for r in reward.last_results)


def test_without_a_trainer_the_reward_warns_once_that_truncation_is_not_detected():
    reward = UnitTestReward()
    call = dict(prompts=["p"], completions=["x = (1,"], completion_ids=[[1, 2, 3]], tests=['{"kind": "asserts", "asserts": ["assert True"]}'])
    with pytest.warns(RuntimeWarning, match="generation length limit is unknown.*attach_trainer"):
        reward(**call)
    assert reward.last_results[0].truncated is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reward(**call)  # once only


def test_an_explicit_limit_needs_no_trainer():
    reward = UnitTestReward(max_completion_length=3, eos_token_ids=[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reward(prompts=["p", "p"], completions=["x = (1,", "x = 1"], completion_ids=[[5, 6, 7], [5, 0]],
               tests=['{"kind": "asserts", "asserts": ["assert True"]}'] * 2)
    assert [r.truncated for r in reward.last_results] == [True, False]
    assert reward.last_results[0].feedback.error_scope.value == "global"  # RLTF: cut mid-line is not the line's fault
