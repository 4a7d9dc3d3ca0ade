"""The `trl-codefeedback execute` command."""

import json
import subprocess
import sys

from trl_codefeedback.cli import main


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_execute_writes_input_fields_plus_feedback(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [
        {"language": "python", "code": "def f():\n    return 1\n", "tests": {"kind": "asserts", "asserts": ["assert f() == 1"]}, "task": "a"},
        {"language": "python", "code": "def f():\n    return [][1]\n", "tests": {"kind": "asserts", "asserts": ["assert f() == 1"]}, "task": "b"},
    ])
    assert main(["execute", str(inp), "-o", str(out), "--workers", "1", "-q"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["task"] for r in rows] == ["a", "b"]
    assert rows[0]["status"] == "passed" and rows[0]["tests_passed"] == 1
    assert rows[1]["status"] == "runtime_error" and rows[1]["error_type"] == "IndexError" and rows[1]["error_line"] == 2


def test_malformed_rows_are_reported_with_line_numbers_before_running(tmp_path, capsys):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [
        {"code": "x = 1", "tests": None},
        "{not json",
        {"language": "cobol", "code": "x", "tests": None},
        {"code": 5, "tests": None},
        {"code": "x = 1"},
        {"code": "x = 1", "tests": {"kind": "asserts"}},
    ])
    assert main(["execute", str(inp), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "5 malformed row(s)" in err
    for fragment in (":2: not valid JSON", ":3: unknown language 'cobol'", ":4: 'code' must be a string", ":5: missing 'tests'", ":6: tests of kind 'asserts' need a 'asserts' field"):
        assert fragment in err
    assert not out.exists()


def test_examples_run_from_the_console_script():
    proc = subprocess.run([sys.executable, "-m", "trl_codefeedback.cli", "execute", "--examples", "-q"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert "passed" in lines["pass-asserts"]
    assert "compile_error" in lines["truncated"] and "scope global" in lines["truncated"]
    assert "11 programs" in proc.stderr
