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
    for fragment in (":2: not valid JSON", ":3: unknown language 'cobol'", ":4: 'code' must be a string", ":5: missing 'tests'", ":6: tests of kind 'asserts' need an 'asserts' field"):
        assert fragment in err
    assert not out.exists()


def test_examples_run_from_the_console_script():
    proc = subprocess.run([sys.executable, "-m", "trl_codefeedback.cli", "execute", "--examples", "-q"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert "passed" in lines["pass-asserts"]
    assert "compile_error" in lines["truncated"] and "scope global" in lines["truncated"]
    assert "11 programs" in proc.stderr


def test_a_test_kind_that_cannot_test_the_language_is_reported_with_its_line(tmp_path, capsys):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [
        {"language": "python", "code": "x = 1\n", "tests": None},
        {"language": "java", "code": "class Solution {}", "tests": {"kind": "asserts", "asserts": ["assert f() == 1"]}},
        {"language": "python", "code": "x = 1\n", "tests": {"kind": "java_main", "test": "class Main {}"}},
    ])
    assert main(["execute", str(inp), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "2 malformed row(s); nothing was executed" in err
    assert f"{inp}:2: tests of kind 'asserts' cannot test a java program (kinds for java: java_main)" in err
    assert f"{inp}:3: tests of kind 'java_main' cannot test a python program" in err
    assert "Traceback" not in err and not out.exists()


def test_truncated_json_is_reported_at_the_column_where_the_line_ends(tmp_path, capsys):
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"code": "x = 1", "tests": null,\n{"code": "x = 1", "tests": nul\n')
    assert main(["execute", str(inp), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"{inp}:1: not valid JSON (Expecting property name enclosed in double quotes at column 33: the line ends before the object does" in err
    assert f"{inp}:2: not valid JSON (Expecting value at column 28)" in err


def test_every_row_the_cli_accepts_the_executor_accepts():
    """The CLI's up-front checks and the executor's agree, so a run never stops half-way on a row."""
    from trl_codefeedback.cli import InputError, _row_to_program
    from trl_codefeedback.execution import LANGUAGES, Executor, Limits

    specs = [
        {"kind": "asserts", "asserts": ["assert f() == 1"]},
        {"kind": "check", "test": "def check(candidate):\n    assert candidate() == 1\n", "entry_point": "f"},
        {"kind": "stdio", "cases": [{"input": "1\n", "output": "1\n"}]},
        {"kind": "call", "fn_name": "f", "cases": [{"input": [1], "output": 1}]},
        {"kind": "java_main", "test": "public class Main { public static void main(String[] a) { assert true; } }"},
        None,
    ]
    executor = Executor(workers=1)  # _prepare validates only; no worker is started
    accepted = 0
    for language in LANGUAGES:
        for spec in specs:
            try:
                program = _row_to_program({"language": language, "code": "x", "tests": spec}, "row")
            except InputError:
                continue
            executor._prepare(0, program, Limits())
            accepted += 1
    assert accepted == 4 + 1 + 2  # python: 4 kinds + compile-only; java: java_main + compile-only


def test_help_shows_the_defaults(capsys):
    import pytest

    for command, expected in (("evaluate", ["--n-samples N_SAMPLES", "(default: 1)", "(default: 0.95)", "(default: 512)",
                                            "(default: 1 10 100)", "(default: 0.0)", "(default: eval-DATASET)"]),
                              ("execute", ["(default: 3.0)", "(default: 10.0)", "(default: 1024)", "(default: all cores)"])):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
        for fragment in expected:
            assert fragment in text, (command, fragment)


def test_evaluate_with_a_missing_local_model_says_the_path_does_not_exist(tmp_path, capsys):
    for model in (str(tmp_path / "no-such-model"), "./no-such-model", "~/no/such/model"):
        assert main(["evaluate", "--model", model, "--dataset", "mbpp", "-q"]) == 2
        err = capsys.readouterr().err
        assert f"model path {model!r} does not exist" in err and "Repo id" not in err


def test_tiny_model_command_writes_a_loadable_model(tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert main(["tiny-model", str(tmp_path / "tiny")]) == 0
    assert "random weights" in capsys.readouterr().out
    tok = AutoTokenizer.from_pretrained(tmp_path / "tiny")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "tiny")
    ids = model.generate(**tok(["def add(a, b):"], return_tensors="pt"), max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
    assert ids.shape[1] > 0 and tok.chat_template
