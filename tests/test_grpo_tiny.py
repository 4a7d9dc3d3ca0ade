"""End to end: TRL's GRPOTrainer trains a tiny local model with UnitTestReward on MBPP rows (CPU)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from trainers._helpers import config_kwargs, length_reward  # noqa: E402  (tests/trainers/_helpers.py)
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from trl_codefeedback.feedback import UnitTestReward  # noqa: E402

pytestmark = pytest.mark.slow

N_ROWS = 4


def mbpp_rows(data_dir: Path, n: int = N_ROWS, conversational: bool = False) -> Dataset:
    """A few MBPP rows in the dataset contract (prompt, tests, reference, code_prefix, task_id, language)."""
    rows = []
    with (data_dir / "mbpp" / "mbpp.jsonl").open() as f:
        for line in f:
            r = json.loads(line)
            prompt = f"{r['text']}\n{r['test_list'][0]}\n"
            rows.append(
                {
                    "prompt": [{"role": "user", "content": prompt}] if conversational else prompt,
                    "tests": json.dumps({"kind": "asserts", "setup": r["test_setup_code"], "asserts": r["test_list"]}),
                    "reference": r["code"],
                    "code_prefix": "",
                    "task_id": f"MBPP/{r['task_id']}",
                    "language": "python",
                }
            )
            if len(rows) == n:
                break
    return Dataset.from_list(rows)



def _train(model_path: Path, dataset: Dataset, out: Path, peft_config=None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    reward = UnitTestReward(mode="adaptive")
    args = GRPOConfig(**config_kwargs(out))
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward, length_reward],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    reward.attach_trainer(trainer)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        trainer.train()
    return trainer, reward, before


def _check_trained(trainer, reward, before):
    assert trainer.state.global_step == 2
    logs = {k for entry in trainer.state.log_history for k in entry}
    assert "rewards/unit_test_reward/mean" in logs
    assert "unit_test_reward/compile_error" in logs  # from our log_metric hook
    assert "unit_test_reward/pass_ratio" in logs
    assert len(reward.last_feedback) == 4
    assert all(r.reward is not None for r in reward.last_results)  # no harness errors
    after = dict(trainer.model.named_parameters())
    changed = [n for n, p in before.items() if not torch.equal(p, after[n].detach())]
    assert changed, "no trainable parameter changed"
    return changed


def test_grpo_trains_with_unit_test_reward(tiny_model_path, data_dir, tmp_path):
    trainer, reward, before = _train(tiny_model_path, mbpp_rows(data_dir), tmp_path)
    _check_trained(trainer, reward, before)
    assert reward.max_completion_length == 32  # attach_trainer read it


def test_grpo_lora_conversational(tiny_model_path, data_dir, tmp_path):
    peft = pytest.importorskip("peft")
    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer, reward, before = _train(tiny_model_path, mbpp_rows(data_dir, conversational=True), tmp_path, lora)
    assert all("lora_" in n for n in before), "only LoRA weights should be trainable"
    changed = _check_trained(trainer, reward, before)
    assert any("lora_" in n for n in changed)
