"""A Python worker that fails to start: the error shows the worker's own stderr, and a second try is made first."""

from __future__ import annotations

import sys
import textwrap

import pytest

from trl_codefeedback.execution import Executor, Program, executor as executor_module

ASSERTS = {"kind": "asserts", "asserts": ["assert f(1) == 2"]}


def _worker_script(tmp_path, body: str):
    """A stand-in worker entry point (the executor runs it with `python -I -u SCRIPT --uid-base N ...`)."""
    script = tmp_path / "worker_entry.py"
    script.write_text(textwrap.dedent(body))
    return script


def test_start_failure_reports_the_workers_stderr_after_two_tries(tmp_path, monkeypatch):
    tries = tmp_path / "tries"
    script = _worker_script(tmp_path, f"""
        import sys
        with open({str(tries)!r}, "a") as f:
            f.write("x")
        sys.stderr.write("ImportError: cannot import name 'zygote' (a broken install)\\n")
        sys.exit(3)
    """)
    monkeypatch.setattr(executor_module, "WORKER_SCRIPT", script)
    with Executor(workers=1) as ex, pytest.raises(RuntimeError) as err:
        ex.run([Program("def f(x):\n    return x + 1\n", ASSERTS)])
    message = str(err.value)
    assert "python worker 0 did not start" in message and "exit code 3" in message
    assert "ImportError: cannot import name 'zygote' (a broken install)" in message
    assert tries.read_text() == "xx"  # tried twice before failing the batch


def test_a_worker_that_fails_once_is_retried_and_the_batch_runs(tmp_path, monkeypatch):
    tries = tmp_path / "tries"
    real = executor_module.WORKER_SCRIPT
    script = _worker_script(tmp_path, f"""
        import os, sys
        if not os.path.exists({str(tries)!r}):
            open({str(tries)!r}, "w").close()
            sys.exit("transient start failure")
        os.execv(sys.executable, [sys.executable, "-I", "-u", {str(real)!r}, *sys.argv[1:]])
    """)
    monkeypatch.setattr(executor_module, "WORKER_SCRIPT", script)
    with Executor(workers=1) as ex:
        [fb] = ex.run([Program("def f(x):\n    return x + 1\n", ASSERTS)])
    assert fb.status.value == "passed"


def test_stderr_tail_keeps_only_the_last_bytes():
    import subprocess

    from trl_codefeedback.execution.stderr_tail import StderrTail

    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stderr.write('a' * 100000 + 'END')"], stderr=subprocess.PIPE)
    tail = StderrTail(proc.stderr, limit=10)
    proc.wait(timeout=60)
    assert tail.text(wait_s=10) == "aaaaaaaEND"
