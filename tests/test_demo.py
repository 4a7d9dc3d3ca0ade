"""A shortened `trl-codefeedback demo` runs and writes well-formed outputs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trl_codefeedback.cli import main
from trl_codefeedback.demo_tasks import ACCUMULATORS, FILTERS, HABITS, OPERATIONS, TRANSFORMS, oneline_task, split_tasks

pytestmark = pytest.mark.slow


def _run(rows, field):
    from trl_codefeedback.execution import Executor, Program

    with Executor(workers=2) as ex:
        return ex.run([Program(r["code_prefix"] + r[field], r["tests"]) for r in rows])


def test_loops_family_references_pass_and_each_habit_breaks_one_line():
    train, heldout = split_tasks("loops", seed=0)
    assert len(train) + len(heldout) == len(ACCUMULATORS) * len(FILTERS) * len(TRANSFORMS) and len(heldout) == 12
    parts = lambda r: tuple(r["task_id"].split("/")[1:])  # noqa: E731
    seen = {parts(r) for r in train}
    for h in map(parts, heldout):  # an unseen combination whose every pair of parts is seen in training
        assert h not in seen
        for i, j in ((0, 1), (0, 2), (1, 2)):
            assert any(t[i] == h[i] and t[j] == h[j] for t in seen)
    for i, j in ((0, 2), (1, 2)):  # a Latin rectangle: each (accumulator, transform), (filter, transform) pair once
        assert len({(h[i], h[j]) for h in map(parts, heldout)}) == 12
    assert len({(h[0], h[1]) for h in map(parts, heldout)}) == 12
    assert {r["task_id"] for r in split_tasks("loops", seed=1)[1]} != {r["task_id"] for r in heldout}
    rows = train + heldout
    assert all(fb.passed for fb in _run(rows, "completion"))
    for r, fb in zip(rows, _run(rows, "buggy_completion")):
        good, bad = r["completion"].splitlines(), r["buggy_completion"].splitlines()
        assert [i for i, (a, b) in enumerate(zip(good, bad)) if a != b] == [r["habit_line"] + 1]  # one line differs
        if r["habit"] == "wrong initial value":  # a wrong answer on every test: no error line
            assert fb.status.value == "failed" and fb.tests_passed == 0 and fb.error_line is None
            continue
        assert fb.status.value == "runtime_error" and str(fb.error_scope) == "line"
        blamed = fb.error_line - r["code_prefix"].count("\n") - 2  # 0-based line of the body (it starts after the prompt line)
        assert blamed == r["habit_line"], r["task_id"]  # RLTF's line blame lands on the buggy line
    assert {r["habit"] for r in rows} == {h[0] for h in HABITS.values()}


def test_oneline_family_still_works():
    train, heldout = split_tasks("oneline", seed=0)
    assert len(train) + len(heldout) == len(OPERATIONS) * 9 and len(heldout) == 2 * len(OPERATIONS)
    assert all(fb.passed for fb in _run(train + heldout, "completion"))
    assert {fb.error_type for fb in _run(heldout, "buggy_completion")} == {"NameError"}
    row = oneline_task("plus", 3)
    assert _run([{**row, "completion": " x + 4\n"}], "completion")[0].status.value == "failed"


def test_short_demo_writes_its_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--output-dir", str(out), "--sft-steps", "5", "--rl-steps", "4"]) == 0
    printed = capsys.readouterr().out
    assert "held-out pass@1" in printed and str(out) in printed
    summary = json.loads((out / "summary.json").read_text())
    for key in ("heldout_pass@1_init", "heldout_pass@1_before_rl", "heldout_pass@1_after_rl"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["trainer"] == "CodeFeedbackGRPOTrainer"
    assert summary["family"] == "loops" and [c["step"] for c in summary["heldout_curve"]] == [0, 4]
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
