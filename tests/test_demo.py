"""A shortened `trl-codefeedback demo` runs and writes well-formed outputs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trl_codefeedback.cli import main
from trl_codefeedback.demo import OPERATIONS, split_tasks, task_row

pytestmark = pytest.mark.slow


def test_task_family_references_pass_and_heldout_pairs_are_unseen():
    from trl_codefeedback.execution import Executor, Program

    train, heldout = split_tasks(seed=0)
    assert len(train) + len(heldout) == len(OPERATIONS) * 9 and len(heldout) == 2 * len(OPERATIONS)
    assert not {r["task_id"] for r in train} & {r["task_id"] for r in heldout}
    # every operation and every constant of the held-out set is seen in training
    ops = lambda rows: {r["task_id"].split("/")[1] for r in rows}  # noqa: E731
    ks = lambda rows: {r["task_id"].split("/")[2] for r in rows}  # noqa: E731
    assert ops(heldout) <= ops(train) and ks(heldout) <= ks(train)
    with Executor(workers=2) as ex:
        fbs = ex.run([Program(r["code_prefix"] + r["completion"], r["tests"]) for r in train + heldout])
    assert all(fb.passed for fb in fbs)
    row = task_row("plus", 3)
    with Executor(workers=1) as ex:
        fb = ex.run([Program(row["code_prefix"] + " x + 4\n", row["tests"])])[0]
    assert fb.status.value == "failed"


def test_short_demo_writes_its_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--output-dir", str(out), "--sft-steps", "5", "--rl-steps", "4"]) == 0
    printed = capsys.readouterr().out
    assert "held-out pass@1" in printed and str(out) in printed
    summary = json.loads((out / "summary.json").read_text())
    for key in ("heldout_pass@1_init", "heldout_pass@1_before_rl", "heldout_pass@1_after_rl"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["trainer"] == "CodeFeedbackGRPOTrainer"
    assert len(summary["reward_curve"]) >= 1 and all(-1.0 <= p["reward"] <= 1.0 for p in summary["reward_curve"])
    assert (out / "reward_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "model" / "config.json").is_file()

    assert not (out / "sft").exists() and not (out / "rl").exists() and not (out / "init").exists()
    assert sorted(p.name for p in out.iterdir()) == ["model", "reward_curve.png", "summary.json"]


def test_demo_without_output_dir_leaves_the_current_directory_alone(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "trl_codefeedback.cli", "demo", "--sft-steps", "2", "--rl-steps", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(tmp_path.iterdir()) == []
    out = Path(proc.stdout.split("[demo] outputs go to ", 1)[1].split("/\n", 1)[0])
    try:
        assert out.is_absolute() and (out / "summary.json").is_file() and (out / "model" / "config.json").is_file()
        assert json.loads((out / "summary.json").read_text())["config"]["output_dir"] == str(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
