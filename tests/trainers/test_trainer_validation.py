"""The trainers check the data set when they are built, and configuration errors stop training at once.

README (data contract): "A missing tests column, an unknown language or a malformed row raises before
anything runs, naming the column or the row." Our trainers check every row of ``train_dataset``
(and ``eval_dataset``) before the model loads; TRL's own ``GRPOTrainer`` with our rewards, on the
reward's first call. A sandbox that refuses the host ends ``train()`` on the first step instead of
training on nothing (every reward ``None``, loss 0).
"""

from __future__ import annotations

import json

import pytest
from _helpers import code_rows, config_kwargs
from datasets import Dataset

from trl_codefeedback.execution import Executor, TestSpecError
from trl_codefeedback.execution.sandbox import policy
from trl_codefeedback.execution.sandbox.policy import SandboxUnavailableError
from trl_codefeedback.feedback import UnitTestReward
from trl_codefeedback.trainers import (
    CodeFeedbackGRPOConfig,
    CodeFeedbackGRPOTrainer,
    CodeFeedbackPPOConfig,
    CodeFeedbackPPOTrainer,
)

NO_MODEL = "/nonexistent/model"  # the checks run before the model loads: it is never looked at


def _dataset(n=8, bad=None, with_ids=True):
    rows = code_rows(n)
    for i, r in enumerate(rows):
        if with_ids:
            r["task_id"] = f"T/{i}"
    if bad is not None:
        rows[bad]["tests"] = json.dumps({"kind": "check", "test": "def check(c): assert c(1) == 1"})
    return Dataset.from_list(rows)


@pytest.mark.parametrize("trainer_cls, config_cls", [(CodeFeedbackGRPOTrainer, CodeFeedbackGRPOConfig),
                                                     (CodeFeedbackPPOTrainer, CodeFeedbackPPOConfig)])
def test_a_malformed_row_raises_when_the_trainer_is_built(tmp_path, trainer_cls, config_cls):
    with pytest.raises(TestSpecError, match=r"row 6 of train_dataset \(task_id 'T/6'\).*'entry_point'"):
        trainer_cls(model=NO_MODEL, reward_funcs=[UnitTestReward().as_async()],
                    args=config_cls(**config_kwargs(tmp_path)), train_dataset=_dataset(bad=6))


def test_a_missing_tests_column_raises_when_the_trainer_is_built(tmp_path):
    ds = _dataset().rename_column("tests", "test_list")
    with pytest.raises(KeyError, match=r"'tests'.*train_dataset has no such column.*'test_list'"):
        CodeFeedbackGRPOTrainer(NO_MODEL, [UnitTestReward()], CodeFeedbackGRPOConfig(**config_kwargs(tmp_path)), ds)


def test_an_eval_dataset_is_checked_too(tmp_path):
    with pytest.raises(TestSpecError, match=r"row 2 of eval_dataset\['small'\]"):
        CodeFeedbackGRPOTrainer(model=NO_MODEL, reward_funcs=[UnitTestReward()],
                                args=CodeFeedbackGRPOConfig(**config_kwargs(tmp_path)),
                                train_dataset=_dataset(), eval_dataset={"small": _dataset(4, bad=2)})


def test_an_unknown_language_row_raises_when_the_trainer_is_built(tmp_path):
    rows = _dataset().to_list()
    for r in rows:
        r["language"] = "python"
    rows[3]["language"] = "cobol"
    with pytest.raises(ValueError, match=r"cobol.*row 3 of train_dataset \(task_id 'T/3'\)"):
        CodeFeedbackGRPOTrainer(model=NO_MODEL, reward_funcs=[UnitTestReward()],
                                args=CodeFeedbackGRPOConfig(**config_kwargs(tmp_path)), train_dataset=Dataset.from_list(rows))


def test_trl_grpo_trainer_checks_the_whole_data_set_on_the_first_reward_call(tiny_model_path, tmp_path):
    from trl import GRPOConfig, GRPOTrainer

    reward = UnitTestReward()
    trainer = GRPOTrainer(model=str(tiny_model_path), reward_funcs=[reward],
                          args=GRPOConfig(**config_kwargs(tmp_path, max_steps=1, max_completion_length=8)),
                          train_dataset=_dataset(n=40, bad=37))  # a row no early batch holds
    with pytest.raises(TestSpecError, match=r"row 37 of train_dataset \(task_id 'T/37'\)"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_a_refusing_sandbox_stops_training_on_the_first_step(tiny_model_path, tmp_path, monkeypatch):
    monkeypatch.delenv(policy.ENV_VAR, raising=False)
    monkeypatch.setattr(policy, "missing", lambda info: ["network", "filesystem", "processes"])
    with Executor(workers=1) as ex:
        trainer = CodeFeedbackGRPOTrainer(model=str(tiny_model_path), reward_funcs=[UnitTestReward(executor=ex)],
                                          args=CodeFeedbackGRPOConfig(**config_kwargs(tmp_path, max_completion_length=8)),
                                          train_dataset=_dataset())
        with pytest.raises(SandboxUnavailableError, match="unit_test_reward: .*refusing to run"):
            trainer.train()
    assert trainer.state.global_step == 0
