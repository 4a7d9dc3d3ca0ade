"""The demo prints its progress as it happens: each phase, SFT steps, held-out pass@1 every ``eval_every`` RL steps."""

from __future__ import annotations

import subprocess
import sys
import time

from trl_codefeedback.demo import DemoConfig, run_demo


def test_progress_lines_come_during_training_not_at_the_end(tmp_path):
    lines: list[tuple[float, str]] = []
    run_demo(DemoConfig(output_dir=str(tmp_path / "d"), family="oneline", sft_steps=4, rl_steps=4, eval_every=2,
                        num_generations=2, prompts_per_step=2, max_completion_length=8, log_every=1),
             echo=lambda m: lines.append((time.monotonic(), m)))
    text = [m for _, m in lines]
    order = [next(i for i, m in enumerate(text) if m.startswith(prefix)) for prefix in (
        "[demo] SFT warm-up: 4 steps", "[demo] SFT step 1/4", "[demo] held-out pass@1: random init",
        "[demo] RL with unit-test feedback: 4 steps, held-out pass@1 every 2 steps",
        "[demo] RL step 2/4: held-out pass@1", "[demo] held-out pass@1 during RL")]
    assert order == sorted(order), text
    assert any(m.startswith("[demo] RL step 2/4: held-out pass@1") and "mean training reward" in m for m in text), text
    step2 = next(t for t, m in lines if m.startswith("[demo] RL step 2/4"))
    done = next(t for t, m in lines if m.startswith("[demo] held-out pass@1 during RL"))
    assert step2 < done  # printed when measured, not collected for the end


def test_the_default_echo_flushes_each_line():
    code = "from trl_codefeedback.demo import _echo; import time; _echo('[demo] first'); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # arrives while the process still runs: flushed, not block-buffered
        assert line == "[demo] first\n" and proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
