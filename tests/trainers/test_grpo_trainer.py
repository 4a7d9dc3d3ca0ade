"""CodeFeedbackGRPOTrainer end to end on a tiny local model (CPU): full, LoRA, 4-bit + LoRA, 2 processes."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402

from trl_codefeedback.feedback import UnitTestReward  # noqa: E402
from trl_codefeedback.trainers import CodeFeedbackGRPOConfig, CodeFeedbackGRPOTrainer  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _helpers import code_rows, config_kwargs, length_reward, run_two_processes  # noqa: E402

pytestmark = pytest.mark.slow


class RecordingTrainer(CodeFeedbackGRPOTrainer):
    """Keeps the per-token advantages it produced, to check their shape and rows."""

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        self.recorded = getattr(self, "recorded", []) + [
            (out["advantages"].detach().clone(), out["completion_ids"].clone(), out["completion_mask"].clone())
        ]
        return out


def _train(model, tmp_path, peft_config=None, conversational=False, **overrides):
    reward = UnitTestReward(mode="adaptive")
    args = CodeFeedbackGRPOConfig(**config_kwargs(tmp_path, **overrides))
    tokenizer = None
    if not isinstance(model, str):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)
        model = AutoModelForCausalLM.from_pretrained(model)
    trainer = RecordingTrainer(
        model=model,
        reward_funcs=[reward, length_reward],
        args=args,
        train_dataset=Dataset.from_list(code_rows(4, conversational)),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    before = {n: p.detach().float().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        trainer.train()
    return trainer, reward, before


def _check(trainer, reward, before):
    assert trainer.state.global_step == 2
    logs = {k for entry in trainer.state.log_history for k in entry}
    for key in ("unit_test_reward/pass_ratio", "codefeedback/penalized_token_frac", "unit_test_reward/compile_error"):
        assert key in logs, sorted(logs)
    # one name per figure: the reward logs status fractions and the pass ratio, the trainer does not repeat them
    assert not [k for k in logs if k.startswith("codefeedback/status/") or k == "codefeedback/pass_ratio"]
    assert reward.max_completion_length == 32  # attached by the trainer
    for adv, ids, mask in trainer.recorded:
        assert adv.shape == ids.shape == mask.shape
        assert adv.dim() == 2
    after = dict(trainer.model.named_parameters())
    changed = [n for n, p in before.items() if not torch.equal(p, after[n].detach().float())]
    assert changed, "no trainable parameter changed"
    return changed


def test_full_finetune_with_gradient_checkpointing(tiny_model_path, tmp_path):
    trainer, reward, before = _train(
        tiny_model_path, tmp_path, gradient_checkpointing=True, log_completions=True
    )
    _check(trainer, reward, before)
    penalized = sum(int((a != a[:, :1]).any(dim=1).sum()) for a, _, _ in trainer.recorded)
    statuses = [r.feedback.status.value for r in reward.last_results]
    assert len(statuses) == 4
    # completions table: the reward's status / error columns and our penalised-token count
    import pandas as pd

    table = pd.read_parquet(sorted((tmp_path / "completions").glob("*.parquet"))[-1])
    for col in ("unit_test_reward/status", "unit_test_reward/error_line", "unit_test_reward/error_type",
                "codefeedback/penalized_tokens", "codefeedback/sequence_advantage"):
        assert col in table.columns, list(table.columns)
    assert penalized >= 0
    # the table's advantage is what the token-level loss used: the mean per-token advantage of each completion
    adv, _, mask = trainer.recorded[-1]
    token_mean = ((adv * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)).tolist()
    assert table["advantage"].tolist()[-len(token_mean):] == pytest.approx(token_mean, abs=1e-5)
    sequence = table["codefeedback/sequence_advantage"].tolist()[-len(token_mean):]
    rows_with_penalty = 0
    for row_adv, row_mask, seq, shown in zip(adv, mask, sequence, table["advantage"].tolist()[-len(token_mean):]):
        if (row_adv[row_mask.bool()] != seq).any():  # penalised tokens: the table does not show the bare group advantage
            rows_with_penalty += 1
            assert shown != pytest.approx(seq)
    assert rows_with_penalty  # a random tiny model writes broken code: some completion is penalised


def test_lora_conversational(tiny_model_path, tmp_path):
    peft = pytest.importorskip("peft")
    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer, reward, before = _train(tiny_model_path, tmp_path, peft_config=lora, conversational=True)
    assert all("lora_" in n for n in before)
    assert any("lora_" in n for n in _check(trainer, reward, before))


def test_4bit_lora(tiny_model_path, tmp_path):
    peft = pytest.importorskip("peft")
    pytest.importorskip("bitsandbytes")
    from transformers import BitsAndBytesConfig

    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    trainer, reward, before = _train(
        str(tiny_model_path), tmp_path, peft_config=lora,
        model_init_kwargs={"quantization_config": bnb, "dtype": "float32"},
    )
    assert any("4bit" in type(m).__name__ for m in trainer.model.modules()), "model not loaded in 4 bit"
    assert any("lora_" in n for n in _check(trainer, reward, before))


SCRIPT = r'''
import json, os, sys, warnings
sys.path.insert(0, {helpers!r})
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl_codefeedback.feedback import UnitTestReward
from trl_codefeedback.trainers import CodeFeedbackGRPOConfig, CodeFeedbackGRPOTrainer
from _helpers import code_rows, config_kwargs, length_reward

checks = []

class Checking(CodeFeedbackGRPOTrainer):
    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        adv, ids, mask = out["advantages"], out["completion_ids"], out["completion_mask"]
        res = self._execution_reward.last_results
        texts = self.processing_class.batch_decode(ids, skip_special_tokens=True)
        checks.append(dict(
            rank=self.accelerator.process_index, world=self.accelerator.num_processes,
            local_rows=len(inputs), adv_shape=list(adv.shape), ids_shape=list(ids.shape),
            results=len(res), aligned=all(r.extracted.text == t for r, t in zip(res, texts)),
            penalized_rows_have_errors=all(
                r.feedback.status.value not in ("passed", "failed")
                for r, a, m in zip(res, adv, mask) if (a[m.bool()] != a[m.bool()][0]).any()
            ),
        ))
        return out

model_path = sys.argv[1]
tok = AutoTokenizer.from_pretrained(model_path)
trainer = Checking(
    model=AutoModelForCausalLM.from_pretrained(model_path),
    reward_funcs=[UnitTestReward(mode="adaptive"), length_reward],
    args=CodeFeedbackGRPOConfig(**config_kwargs(sys.argv[2], per_device_train_batch_size=2)),
    train_dataset=Dataset.from_list(code_rows(8)),
    processing_class=tok,
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    trainer.train()
rank = trainer.accelerator.process_index
logs = [k for e in trainer.state.log_history for k in e]
with open(os.path.join(sys.argv[2], f"checks_{{rank}}.json"), "w") as f:
    json.dump({{"checks": checks, "logs": logs, "steps": trainer.state.global_step}}, f)
trainer.accelerator.end_training()  # as the recipes do: no gloo teardown abort at exit
'''


def test_two_processes(tiny_model_path, tmp_path):
    per_rank = run_two_processes(SCRIPT, tmp_path, str(tiny_model_path), str(tmp_path))
    for rank, data in enumerate(per_rank):
        assert data["steps"] == 2
        assert data["checks"], "no batch was checked"
        for c in data["checks"]:
            assert c["rank"] == rank and c["world"] == 2
            # the (B, T) advantages are this process's slice: same rows as its completions and reward results
            assert c["adv_shape"] == c["ids_shape"]
            assert c["adv_shape"][0] == c["local_rows"] == c["results"] == 2
            assert c["aligned"]
            assert c["penalized_rows_have_errors"]
    assert "codefeedback/penalized_token_frac" in per_rank[0]["logs"]
