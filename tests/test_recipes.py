"""Every recipe runs two steps with a tiny local model (so none of them rots)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TINY_OVERRIDES = [
    "--max_steps", "2", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
    "--bf16", "false", "--dtype", "float32", "--use_cpu", "true", "--report_to", "none",
    "--logging_steps", "1", "--save_strategy", "no", "--max_train_samples", "4", "--lora_target_modules", "q_proj", "v_proj",
]
GRPO_OVERRIDES = ["--num_generations", "2", "--max_completion_length", "16", "--gradient_checkpointing", "false"]


def run_recipe(script, config, extra, tmp_path, model):
    out = tmp_path / "out"
    cmd = [sys.executable, str(RECIPES / script), "--config", str(RECIPES / "configs" / config),
           "--model_name_or_path", str(model), "--output_dir", str(out), *TINY_OVERRIDES, *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def _card_feedback(out: Path) -> dict:
    card = (out / "README.md").read_text()
    assert "## Feedback configuration" in card
    return json.loads(card.split("```json", 1)[1].split("```", 1)[0])


def test_grpo_mbpp_qlora_recipe(tiny_model_path, tmp_path):
    out = run_recipe("grpo.py", "grpo_mbpp_qlora.yaml", GRPO_OVERRIDES, tmp_path, tiny_model_path)
    assert (out / "adapter_config.json").is_file()  # LoRA adapter on the 4-bit base
    cfg = _card_feedback(out)
    assert cfg["rewards"][0]["name"] == "unit_test_adaptive" and cfg["rewards"][0]["mode"] == "adaptive"
    assert cfg["settings"]["fine_grained"] is True and cfg["settings"]["fine_grained_penalty"] == -0.3


def test_grpo_apps_recipe(tiny_model_path, tmp_path, data_dir):
    out = run_recipe("grpo.py", "grpo_apps.yaml", [*GRPO_OVERRIDES, "--dataset_path", str(data_dir / "apps"), "--beta", "0.0"], tmp_path, tiny_model_path)
    assert (out / "model.safetensors").is_file()  # full fine-tune
    assert _card_feedback(out)["trainer"] == "CodeFeedbackGRPOConfig"


def test_sft_recipe(tiny_model_path, tmp_path):
    out = run_recipe("sft.py", "sft_mbpp.yaml", ["--max_length", "256"], tmp_path, tiny_model_path)
    assert (out / "adapter_config.json").is_file()


def test_saved_adapter_loads_back_and_generates(tiny_model_path, tmp_path):
    from trl_codefeedback.evaluation import load_model_and_tokenizer

    out = run_recipe("grpo.py", "grpo_mbpp_qlora.yaml", [*GRPO_OVERRIDES, "--load_in_4bit", "false"], tmp_path, tiny_model_path)
    model, tok = load_model_and_tokenizer(str(out), device="cpu")
    ids = model.generate(**tok(["def add(a, b):"], return_tensors="pt"), max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert ids.shape[1] >= 1


def test_accelerate_configs_parse():
    import yaml

    for path in (RECIPES / "accelerate").glob("*.yaml"):
        cfg = yaml.safe_load(path.read_text())
        assert cfg["distributed_type"] in ("NO", "MULTI_GPU", "DEEPSPEED"), path
