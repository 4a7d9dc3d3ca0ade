"""CodeFeedbackPPOTrainer with two processes (accelerate, gloo on CPU): shared-base LoRA critic under DDP."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")

pytestmark = pytest.mark.slow

sys.path.insert(0, str(Path(__file__).parent))
from _helpers import run_two_processes  # noqa: E402

SCRIPT = r'''
import json, os, sys, warnings
sys.path.insert(0, {helpers!r})
import torch
from datasets import Dataset
from peft import LoraConfig
from trl_codefeedback.feedback import UnitTestReward
from trl_codefeedback.trainers import CodeFeedbackPPOConfig, CodeFeedbackPPOTrainer
from _helpers import code_rows, config_kwargs, length_reward

checks = []

class Checking(CodeFeedbackPPOTrainer):
    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        checks.append(dict(
            rank=self.accelerator.process_index, world=self.accelerator.num_processes, local_rows=len(inputs),
            shapes=[list(out[k].shape) for k in ("advantages", "returns", "old_values", "ppo_rewards", "completion_ids")],
            results=len(self._execution_reward.last_results),
        ))
        return out

setup = sys.argv[3]
kw = dict(per_device_train_batch_size=2, num_generations=1, max_completion_length=16, num_ppo_epochs=2)
trainer = Checking(
    model=sys.argv[1],
    reward_funcs=[UnitTestReward(mode="adaptive"), length_reward],
    args=CodeFeedbackPPOConfig(**config_kwargs(sys.argv[2], **kw)),
    train_dataset=Dataset.from_list(code_rows(8)),
    peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM") if setup == "lora" else None,
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    trainer.train()
rank = trainer.accelerator.process_index
model = trainer.accelerator.unwrap_model(trainer.model)
head = model.cf_value_head if setup == "lora" else model.cf_critic.head
logs = [k for e in trainer.state.log_history for k in e]
with open(os.path.join(sys.argv[2], f"checks_{{rank}}.json"), "w") as f:
    json.dump({{"checks": checks, "logs": logs, "steps": trainer.state.global_step,
               "head": head.weight.detach().flatten()[:8].tolist(), "ddp": type(trainer.model_wrapped).__name__}}, f)
trainer.accelerator.end_training()  # as the recipes do: no gloo teardown abort at exit
'''


@pytest.mark.parametrize("setup", ["lora", "full"])
def test_two_processes(tiny_model_path, tmp_path, setup):
    per_rank = run_two_processes(SCRIPT, tmp_path, str(tiny_model_path), str(tmp_path), setup)
    for rank, data in enumerate(per_rank):
        assert data["steps"] == 2
        assert data["ddp"] == "DistributedDataParallel"
        assert data["checks"], "no rollout was checked"
        for c in data["checks"]:
            assert c["rank"] == rank and c["world"] == 2
            assert c["local_rows"] == c["results"] == 2
            assert all(shape == c["shapes"][-1] for shape in c["shapes"])  # per-token tensors are this process's rows
    # DDP kept the critic in sync: the value heads are identical after the updates, and moved from 0
    assert per_rank[0]["head"] == per_rank[1]["head"] and any(per_rank[0]["head"])
    assert "ppo/value_loss" in per_rank[0]["logs"]
