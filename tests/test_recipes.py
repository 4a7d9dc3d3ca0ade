"""Every recipe runs two steps with a tiny local model, through the smoke commands the README documents."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
SMOKE_MARKER = "<!-- recipe-smoke: run by tests/test_recipes.py -->"


def readme_smoke_block() -> tuple[list[str], dict[str, str]]:
    """The README's smoke block: set-up lines (model build, variables) and ``{output_dir: recipe line}``."""
    text = (REPO / "README.md").read_text()
    block = text.split(SMOKE_MARKER, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    setup, recipes = [], {}
    for line in block.splitlines():
        if line.startswith("python recipes/"):
            recipes[shlex.split(line)[-1]] = line  # each line ends with --output_dir smoke/NAME
        elif line.strip():
            setup.append(line)
    return setup, recipes


SETUP, RECIPE_LINES = readme_smoke_block()


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory, data_dir) -> Path:
    """A folder laid out like a checkout (``recipes/``), where the set-up lines (``trl-codefeedback tiny-model``) ran."""
    work = tmp_path_factory.mktemp("smoke")
    (work / "recipes").symlink_to(RECIPES)
    _bash([line for line in SETUP if line.startswith("trl-codefeedback ")], work)
    assert (work / "tiny-model" / "config.json").is_file()
    return work


def _bash(lines: list[str], cwd: Path) -> subprocess.CompletedProcess:
    bin_dir = cwd / "bin"  # `python` and `trl-codefeedback` of this interpreter, as after `pip install`
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "python").exists():
        (bin_dir / "python").symlink_to(sys.executable)
        (bin_dir / "trl-codefeedback").write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m trl_codefeedback.cli \"$@\"\n")
        (bin_dir / "trl-codefeedback").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(["bash", "-ec", "\n".join(lines)], cwd=cwd, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def run_readme_recipe(name: str, smoke_dir: Path, extra: str = "") -> Path:
    """Run the README's line for output folder ``name`` (after its variable lines), plus ``extra`` flags.

    Returns the folder the run wrote to (the last ``--output_dir`` given wins, as in argparse).
    """
    variables = [line for line in SETUP if not line.startswith("trl-codefeedback ")]
    command = f"{RECIPE_LINES[name]} {extra}".strip()
    _bash([*variables, command], smoke_dir)
    words = shlex.split(command)
    out = smoke_dir / words[len(words) - 1 - words[::-1].index("--output_dir") + 1]
    assert out.is_dir()
    return out


def card_feedback(out: Path) -> dict:
    card = (out / "README.md").read_text()
    assert "## Feedback configuration" in card
    return json.loads(card.split("```json", 1)[1].split("```", 1)[0])


def test_readme_documents_a_smoke_command_for_every_recipe():
    documented = {shlex.split(line)[1] for line in RECIPE_LINES.values()}
    assert documented == {f"recipes/{p.name}" for p in RECIPES.glob("*.py") if p.name != "common.py"}
    assert any(line.startswith("trl-codefeedback tiny-model ") for line in SETUP)
    for line in RECIPE_LINES.values():
        assert "$CPU" in line


def test_grpo_mbpp_qlora_recipe(smoke_dir):
    out = run_readme_recipe("smoke/grpo-mbpp", smoke_dir)
    assert (out / "adapter_config.json").is_file()  # LoRA adapter on the 4-bit base
    cfg = card_feedback(out)
    assert cfg["rewards"][0]["name"] == "unit_test_adaptive" and cfg["rewards"][0]["mode"] == "adaptive"
    assert cfg["settings"]["fine_grained"] is True and cfg["settings"]["fine_grained_penalty"] == -0.3


def test_grpo_apps_recipe(smoke_dir):
    out = run_readme_recipe("smoke/grpo-apps", smoke_dir)
    assert (out / "model.safetensors").is_file()  # full fine-tune
    assert card_feedback(out)["trainer"] == "CodeFeedbackGRPOConfig"


def test_sft_recipe(smoke_dir):
    out = run_readme_recipe("smoke/sft-mbpp", smoke_dir)
    assert (out / "adapter_config.json").is_file()


def test_saved_adapter_loads_back_and_generates(smoke_dir, monkeypatch):
    from trl_codefeedback.evaluation import load_model_and_tokenizer

    out = run_readme_recipe("smoke/grpo-mbpp", smoke_dir, extra="--load_in_4bit false --output_dir smoke/grpo-mbpp-fp32")
    assert out.name == "grpo-mbpp-fp32"
    monkeypatch.chdir(smoke_dir)  # the adapter names its base as given on the command line: "tiny-model"
    model, tok = load_model_and_tokenizer(str(out), device="cpu")
    ids = model.generate(**tok(["def add(a, b):"], return_tensors="pt"), max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert ids.shape[1] >= 1


def test_accelerate_configs_parse():
    import yaml

    for path in (RECIPES / "accelerate").glob("*.yaml"):
        cfg = yaml.safe_load(path.read_text())
        assert cfg["distributed_type"] in ("NO", "MULTI_GPU", "DEEPSPEED"), path
