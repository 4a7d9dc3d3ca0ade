"""End to end RLCF: TRL's GRPOTrainer trains a tiny local policy against GroundingReward while
DiscriminatorRefreshCallback retrains the pairwise scorer from the latest rollouts (CPU); every input
the scorer reads during the run, for rewards and for training, holds one program."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

from datasets import Dataset
from tiny_models import ModelInputRecorder, build_tiny_classifier
from trainers._helpers import config_kwargs, length_reward  # tests/trainers/_helpers.py
from trl import GRPOConfig, GRPOTrainer

from trl_codefeedback.feedback import (
    DiscriminatorRefreshCallback,
    DiscriminatorReward,
    DiscriminatorTrainingConfig,
    GroundingReward,
)

pytestmark = pytest.mark.slow

N_ROWS = 4


def mbpp_rows(data_dir: Path, n: int = N_ROWS) -> Dataset:
    rows = []
    with (data_dir / "mbpp" / "mbpp.jsonl").open() as f:
        for line, _ in zip(f, range(n)):
            r = json.loads(line)
            rows.append(
                {
                    "prompt": f"{r['text']}\n{r['test_list'][0]}\n",
                    "tests": json.dumps({"kind": "asserts", "setup": r["test_setup_code"], "asserts": r["test_list"]}),
                    "reference": r["code"],
                    "code_prefix": "",
                    "task_id": f"MBPP/{r['task_id']}",
                    "language": "python",
                }
            )
    return Dataset.from_list(rows)


def mbjp_rows(n: int = N_ROWS) -> Dataset:
    try:
        from trl_codefeedback.data import load_mbjp
    except ImportError:
        pytest.skip("trl_codefeedback.data.load_mbjp is not available yet (Java data loader)")
    return load_mbjp().select(range(n))



@pytest.fixture(scope="module")
def scorer_path(tmp_path_factory, data_dir) -> Path:
    """A tiny Qwen2 decoder with a one-logit head: the scorer f(prompt, program)."""
    return build_tiny_classifier(tmp_path_factory.mktemp("scorer"), data_dir=data_dir, num_labels=1)


def _rlcf(policy_path: Path, scorer_path: Path, dataset: Dataset, out: Path, language: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trl_codefeedback.feedback.discriminator import prompt_text

    disc = DiscriminatorReward(str(scorer_path), max_length=128, batch_size=8)
    disc_before = {n: p.detach().clone() for n, p in disc.model.named_parameters()}
    programs: set[str] = set()  # every program the reward recorded (refreshes clear the buffer, so note them here)
    record = disc.record

    def record_and_note(prompts, codes, references):
        programs.update(codes)
        record(prompts, codes, references)

    disc.record = record_and_note
    reward = GroundingReward(discriminator=disc, language=language)
    refresh = DiscriminatorRefreshCallback(
        disc, every_n_steps=1, config=DiscriminatorTrainingConfig(epochs=1, batch_size=8, learning_rate=1e-3)
    )
    args = GRPOConfig(**config_kwargs(out))
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(policy_path),
        reward_funcs=[reward, length_reward],
        args=args,
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(policy_path),
        callbacks=[refresh],
    )
    reward.attach_trainer(trainer)
    with warnings.catch_warnings(), ModelInputRecorder(disc.model, disc.tokenizer) as seen:
        warnings.simplefilter("ignore", UserWarning)
        trainer.train()

    # every input the scorer read (reward calls, refresh evaluation and training) is f's input of one program
    prompts = {prompt_text(p) for p in dataset["prompt"]}
    refs = set(disc.strip_prefix(dataset["reference"], dataset["code_prefix"]))
    one_program = {disc.scorer_input(p, c) for p in prompts for c in refs | programs}
    stray = [t for t in seen.texts if t not in one_program]
    assert seen.texts and not stray, f"{len(stray)} inputs are not one program with its prompt; first: {stray[:1]}"
    assert {disc.scorer_input(p, r) for p in prompts for r in refs} & set(seen.texts)  # references read on their own
    assert {disc.scorer_input(p, c) for p in prompts for c in programs - refs} & set(seen.texts)  # and samples on theirs

    assert trainer.state.global_step == 2
    assert len(refresh.history) == 2  # refreshed after each step, from that step's rollouts
    acc = [e["discriminator/accuracy"] for e in trainer.state.log_history if "discriminator/accuracy" in e]
    assert len(acc) >= 2 and all(0.0 <= a <= 1.0 for a in acc)  # callback entries + TRL metric of the next step
    logs = {k for entry in trainer.state.log_history for k in entry}
    assert "rewards/grounding_reward/mean" in logs
    assert "grounding_reward/compile_rate" in logs and "grounding_reward/execution_rate" in logs
    assert "discriminator/accuracy" in logs
    assert all(r.reward is not None for r in reward.last_results)  # no harness errors
    assert all(-1.0 <= r.reward <= 1.5 for r in reward.last_results)
    changed = [n for n, p in disc.model.named_parameters() if not torch.equal(p.detach(), disc_before[n])]
    assert changed, "the refresh did not train the discriminator"
    return trainer, reward


def test_rlcf_grpo_python_mbpp(tiny_model_path, scorer_path, data_dir, tmp_path):
    _rlcf(tiny_model_path, scorer_path, mbpp_rows(data_dir), tmp_path, "python")


def test_rlcf_grpo_java_mbjp(tiny_model_path, scorer_path, tmp_path):
    import shutil

    if shutil.which("javac") is None:
        pytest.fail("javac is required for the MBJP RLCF run (install a JDK)")
    _, reward = _rlcf(tiny_model_path, scorer_path, mbjp_rows(), tmp_path, "java")
    assert all(r.feedback.status.value != "harness_error" for r in reward.last_results)
