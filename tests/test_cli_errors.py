"""The CLI reports errors of the user's set-up or input in one paragraph (no traceback), exit status 1 or 2.

Status 1: the host cannot run programs (the sandbox refuses it, no JDK); status 2: the input (a data
path, the data variable, a test spec). ``--debug`` / ``TRL_CODEFEEDBACK_DEBUG=1`` give the traceback.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import warnings

import pytest

from trl_codefeedback.cli import main
from trl_codefeedback.execution.sandbox import policy
from trl_codefeedback.execution.sandbox.policy import SandboxUnavailableError

PY_ROW = {"language": "python", "code": "def f(x):\n    return x + 1\n", "tests": {"kind": "asserts", "asserts": ["assert f(1) == 2"]}}
JAVA_ROW = {"language": "java", "code": "class Add {\n    static int add(int a, int b) { return a + b; }\n}\n",
            "tests": {"kind": "java_main", "test": "class Main { public static void main(String[] a) throws Exception {\n"
                      "  int x0 = Add.add(1, 2);\n  if (x0 != 3) { throw new Exception(\"0\"); }\n} }\n"}}


@pytest.fixture
def refusing_host(monkeypatch):
    monkeypatch.delenv(policy.ENV_VAR, raising=False)
    monkeypatch.delenv("TRL_CODEFEEDBACK_DEBUG", raising=False)
    monkeypatch.setattr(policy, "missing", lambda info: ["network", "filesystem", "processes"])
    monkeypatch.setattr(policy, "_warned", False)


def _jsonl(tmp_path, *rows):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "\n\n" not in err.strip(), err
    return err


def test_execute_on_a_host_the_sandbox_refuses_exits_1_with_the_reason(tmp_path, capsys, refusing_host):
    assert main(["execute", _jsonl(tmp_path, PY_ROW), "-q"]) == 1
    assert "refusing to run untrusted programs" in _one_error(capsys)


def test_execute_java_without_a_jdk_exits_1_naming_the_jdk(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("TRL_CODEFEEDBACK_DEBUG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["execute", _jsonl(tmp_path, JAVA_ROW), "-q", "--workers", "1"]) == 1
    err = _one_error(capsys)
    assert "JDK 17" in err and "11+" not in err


def test_demo_on_a_host_the_sandbox_refuses_exits_1(tmp_path, capsys, refusing_host):
    assert main(["demo", "--output-dir", str(tmp_path / "d"), "--sft-steps", "1", "--rl-steps", "1"]) == 1
    assert "refusing to run untrusted programs" in _one_error(capsys)


def test_evaluate_with_a_missing_data_path_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TRL_CODEFEEDBACK_DEBUG", raising=False)
    missing = tmp_path / "no-such-data"
    assert main(["evaluate", "--model", str(tmp_path), "--dataset", "mbpp", "--data-path", str(missing), "-q"]) == 2
    assert str(missing) in _one_error(capsys)


def test_evaluate_with_a_wrong_data_variable_exits_2_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TRL_CODEFEEDBACK_DEBUG", raising=False)
    monkeypatch.setenv("TRL_CODEFEEDBACK_DATA", str(tmp_path / "nope"))
    assert main(["evaluate", "--model", str(tmp_path), "--dataset", "humaneval", "-q"]) == 2
    assert "TRL_CODEFEEDBACK_DATA=" in _one_error(capsys)


def test_debug_shows_the_traceback(tmp_path, refusing_host, monkeypatch):
    with pytest.raises(SandboxUnavailableError):
        main(["execute", _jsonl(tmp_path, PY_ROW), "-q", "--debug"])
    monkeypatch.setenv("TRL_CODEFEEDBACK_DEBUG", "1")
    with pytest.raises(SandboxUnavailableError):
        main(["execute", _jsonl(tmp_path, PY_ROW), "-q"])


def test_the_console_script_prints_no_traceback(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "TRL_CODEFEEDBACK_DATA": str(tmp_path / "nope")}
    proc = subprocess.run([sys.executable, "-m", "trl_codefeedback.cli", "evaluate", "--model", str(tmp_path),
                           "--dataset", "mbpp", "-q"], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "error: TRL_CODEFEEDBACK_DATA=" in proc.stderr


def test_sandbox_info_on_a_refusing_host_does_not_warn_about_weak_isolation(capsys, refusing_host):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["sandbox-info"]) == 1
    assert not [w for w in caught if "weak isolation" in str(w.message)]
    assert "refuses to run programs here" in capsys.readouterr().out


def test_execute_accepts_a_capitalised_language(tmp_path, capsys):
    assert main(["execute", _jsonl(tmp_path, {**PY_ROW, "language": "Python"}), "-q"]) == 0
    assert "passed: 1" in capsys.readouterr().err


def test_tiny_model_files_are_readable_by_everyone_the_umask_allows(tmp_path, capsys):
    import os

    old = os.umask(0o022)
    try:
        assert main(["tiny-model", str(tmp_path / "tiny")]) == 0
    finally:
        os.umask(old)
    for p in (tmp_path / "tiny").iterdir():
        assert p.stat().st_mode & stat.S_IROTH, (p.name, oct(p.stat().st_mode))
