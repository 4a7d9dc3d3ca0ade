"""The README's CPU quickstart runs as written, with a tiny local model in place of the Hub model."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- quickstart-cpu: run by tests/test_quickstart.py -->"


def quickstart_cpu_code() -> str:
    return README.read_text().split(MARKER, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


def test_cpu_quickstart_runs_as_documented(tiny_model_path, data_dir, tmp_path):
    code = quickstart_cpu_code()
    assert "use_cpu=True, bf16=False" in code
    # the one substitution: the model (no Hub here); everything else runs as a user would paste it
    code, replaced = re.subn(r'^model = "[^"]+"', f"model = {str(tiny_model_path)!r}", code, flags=re.M)
    assert replaced == 1
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "TRL_CODEFEEDBACK_DATA": str(data_dir), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "grpo-mbpp-cpu" / "model.safetensors").is_file()
    logged = proc.stdout + proc.stderr
    assert "'unit_test_reward/truncated'" in logged and "'codefeedback/penalized_token_frac'" in logged
    assert "gemm_4bit_forward" not in logged


def test_the_gpu_quickstart_config_needs_the_cpu_arguments_on_a_cpu_only_machine(tmp_path):
    """What a CPU-only user hits with the GPU variant (why the CPU variant exists)."""
    import torch

    from trl_codefeedback import CodeFeedbackGRPOConfig

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="bf16/gpu"):
        CodeFeedbackGRPOConfig(output_dir=str(tmp_path), max_completion_length=256, fine_grained_penalty=-0.3)
    assert CodeFeedbackGRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False).bf16 is False


def test_readme_executor_example_prints_what_it_says():
    block = README.read_text().split("<!-- executor-example: run by tests/test_quickstart.py -->", 1)[1]
    code = block.split("```python\n", 1)[1].split("```", 1)[0]
    expected = code.rsplit("# ", 1)[1].strip()  # the comment on the print line
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == expected, (proc.stdout, expected)
