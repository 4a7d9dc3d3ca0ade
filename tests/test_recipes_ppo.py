"""The PPO recipe (RLCF on MBJP, 4-bit shared base) runs two steps with a tiny local model: the README's smoke line."""

import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_recipes import card_feedback, run_readme_recipe, smoke_dir  # noqa: E402, F401  (smoke_dir: the fixture)


def test_ppo_mbjp_recipe(smoke_dir):  # noqa: F811
    if shutil.which("javac") is None:
        pytest.skip("no JDK")
    pytest.importorskip("bitsandbytes")
    out = run_readme_recipe("smoke/ppo-mbjp", smoke_dir)
    assert (out / "adapter_config.json").is_file()  # policy: LoRA adapter on the 4-bit base
    assert (out / "critic" / "adapter_model.safetensors").is_file() and (out / "critic" / "value_head.safetensors").is_file()
    cfg = card_feedback(out)
    assert cfg["trainer"] == "CodeFeedbackPPOConfig"
    assert cfg["rewards"][0]["name"] == "unit_test_adaptive" and cfg["rewards"][0]["language"] == "java"
    assert cfg["settings"]["kl_coef"] == 0.05 and cfg["settings"]["num_ppo_epochs"] == 2
