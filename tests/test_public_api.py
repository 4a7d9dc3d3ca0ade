"""Every name the README's API overview lists is importable from its module and from the top level."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import trl_codefeedback

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_api_names() -> list[tuple[str, str]]:
    """(module, name) for each name in the README's "API overview" table."""
    text = README.read_text()
    section = text.split("## API overview", 1)[1].split("\n#", 1)[0]
    pairs = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`trl_codefeedback"):
            continue
        module = cells[0].strip("`")
        for code in re.findall(r"`([^`]+)`", "|".join(cells[1:])):
            for part in code.split(" / "):  # "CodeFeedbackGRPOConfig / CodeFeedbackGRPOTrainer"
                match = re.fullmatch(r"([A-Za-z_]\w*)(\(.*\))?", part.strip())
                if match:  # a name, or a call such as `Executor(workers, limits)`; not `evaluate.load`
                    pairs.append((module, match.group(1)))
    return pairs


API = readme_api_names()


def test_readme_lists_the_public_api():
    modules = {m for m, _ in API}
    assert {"trl_codefeedback.execution", "trl_codefeedback.trainers", "trl_codefeedback.data"} <= modules
    assert ("trl_codefeedback.trainers", "CodeFeedbackPPOTrainer") in API
    assert ("trl_codefeedback.data", "load_mathqa_java") in API
    assert len(API) >= 40


@pytest.mark.parametrize(("module", "name"), API, ids=[f"{m.rsplit('.', 1)[-1]}.{n}" for m, n in API])
def test_readme_name_is_importable_from_its_module_and_the_top_level(module, name):
    obj = getattr(importlib.import_module(module), name)
    assert getattr(trl_codefeedback, name) is obj
    assert name in trl_codefeedback.__all__ and name in dir(trl_codefeedback)


def test_top_level_import_stays_light_and_names_load_on_use():
    code = (
        "import sys, trl_codefeedback\n"
        "assert 'torch' not in sys.modules and 'trl' not in sys.modules, sorted(m for m in sys.modules if m in ('torch', 'trl'))\n"
        "from trl_codefeedback import CodeFeedbackPPOTrainer, DiscriminatorReward, GroundingReward, load_mbjp\n"
        "assert CodeFeedbackPPOTrainer.__module__ == 'trl_codefeedback.trainers.ppo_trainer'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_unknown_top_level_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'CodeFeedbackTrainer'"):
        trl_codefeedback.CodeFeedbackTrainer  # noqa: B018
