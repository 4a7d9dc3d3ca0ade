"""The README's install-from-the-repository commands: build the wheel, install it in a fresh environment, run it."""

import os
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def readme_install_lines() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Install", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_install_says_how_to_install_from_the_repository_and_choose_torch():
    lines = readme_install_lines()
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in lines
    assert "pip install -e \".[test]\"" in lines
    assert not any(line == "pip install trl-codefeedback" for line in lines)  # there is no release to install
    text = (REPO / "README.md").read_text()
    assert "from a release" not in text and "CPU torch shown" not in text


def test_built_wheel_installs_and_runs_in_a_fresh_environment(tmp_path):
    lines = readme_install_lines()
    [build] = [line for line in lines if line.startswith("pip wheel ")]
    [install] = [line for line in lines if line.startswith("pip install dist/")]
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", "*.egg-info", "__pycache__", "build", "dist", ".ci"))
    proc = subprocess.run([sys.executable, "-m", *shlex.split(build)], cwd=src, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = src / shlex.split(install)[2]
    assert wheel.is_file(), sorted(p.name for p in (src / "dist").iterdir())

    # A fresh environment that sees the installed dependencies (torch, trl, ...) but not this checkout.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    py = env_dir / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", str(wheel)],
                          capture_output=True, text=True, timeout=600, env=clean)
    assert proc.returncode == 0, proc.stderr[-3000:]
    where = subprocess.run([str(py), "-c", "import trl_codefeedback; print(trl_codefeedback.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120, env=clean)
    assert where.stdout.strip().startswith(str(env_dir)), where.stdout + where.stderr
    # package data travels with the wheel: the worker scripts, the Java sources, the bundled examples
    run = subprocess.run([str(env_dir / "bin" / "trl-codefeedback"), "execute", "--examples", "-q"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300, env=clean)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "11 programs" in run.stderr and "passed" in run.stdout
