"""README claims a new user relies on, checked against what the code does."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _section(title: str) -> str:
    return README.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_install_names_the_demo_extra_for_the_reward_curve():
    install = _section("Install")
    assert '".[demo]"' in install and "reward_curve.png" in install and "matplotlib" in install


def test_no_install_command_assumes_a_pypi_release():
    # the one mention explains that it means the checkout's extra
    assert README.count("pip install 'trl-codefeedback[") == 1 and 'pip install "trl-codefeedback[' not in README
    assert "`pip install 'trl-codefeedback[ray]'` (as some\ndocs and messages put it) means `pip install '.[ray]'`" in README
    assert "`pip install '.[ray]'` from a checkout); a dead actor" in README


def test_install_names_the_jdk_the_java_worker_needs_and_the_data_variable():
    install = _section("Install")
    assert "JDK 17" in install and "24+ cannot" in install
    assert "TRL_CODEFEEDBACK_DATA" in install and "--data-path" in install and "wheel" in install


def test_the_data_contract_says_java_checks_declare_the_value_first():
    contract = _section("The data contract")
    assert "declare the value first" in contract and "docs/java.md" in contract


def test_the_bitsandbytes_notice_claim_depends_on_import_order():
    install = _section("Install")
    assert "Importing `trl_codefeedback`\n*before* anything that imports bitsandbytes" in install


def test_imported_after_trl_the_notice_still_shows_once_as_the_readme_says():
    pytest.importorskip("bitsandbytes")
    if importlib.util.find_spec("kernels") is not None:
        pytest.skip("the 'kernels' package is installed: bitsandbytes loads its CPU kernel")

    def stderr_of(code):
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False).stderr

    notice = "Failed to load CPU gemm_4bit_forward"
    shown = stderr_of("from trl import GRPOTrainer\nimport trl_codefeedback").count(notice)
    if shown == 0:
        pytest.skip("bitsandbytes prints no kernel notice on this CPU")
    assert shown == 1  # imported too late: bitsandbytes logged it while trl imported it
    assert stderr_of("import trl_codefeedback\nfrom trl import GRPOTrainer").count(notice) == 0
