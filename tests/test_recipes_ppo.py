"""The PPO recipe (RLCF on MBJP, 4-bit shared base) runs two steps with a tiny local model."""

import json
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_recipes import run_recipe  # noqa: E402

PPO_OVERRIDES = ["--num_generations", "1", "--max_completion_length", "16", "--gradient_checkpointing", "false",
                 "--num_ppo_epochs", "2", "--conversational", "false"]


def test_ppo_mbjp_recipe(tiny_model_path, tmp_path, data_dir):
    if shutil.which("javac") is None:
        pytest.skip("no JDK")
    pytest.importorskip("bitsandbytes")
    mbjp = data_dir / "mxeval" / "mbxp"
    out = run_recipe("ppo_rlcf.py", "ppo_mbjp.yaml", [*PPO_OVERRIDES, "--dataset_path", str(mbjp)], tmp_path, tiny_model_path)
    assert (out / "adapter_config.json").is_file()  # policy: LoRA adapter on the 4-bit base
    assert (out / "critic" / "adapter_model.safetensors").is_file() and (out / "critic" / "value_head.safetensors").is_file()
    card = (out / "README.md").read_text()
    cfg = json.loads(card.split("```json", 1)[1].split("```", 1)[0])
    assert cfg["trainer"] == "CodeFeedbackPPOConfig"
    assert cfg["rewards"][0]["name"] == "unit_test_adaptive" and cfg["rewards"][0]["language"] == "java"
    assert cfg["settings"]["kl_coef"] == 0.05 and cfg["settings"]["num_ppo_epochs"] == 2
