from pathlib import Path

import pytest

from trl_codefeedback.data import CodeTask, DataLoadError, default_data_dir, tasks_to_dataset
from trl_codefeedback.data._common import import_lines


def test_invalid_spec_names_source_and_task():
    bad = CodeTask(task_id="X/1", prompt="p", tests={"kind": "stdio", "cases": [{"input": 1}]}, reference="")
    with pytest.raises(DataLoadError, match=r"some.jsonl: task X/1: invalid tests: stdio cases\[0\]"):
        tasks_to_dataset([bad], source="some.jsonl")


def test_rows_hold_tests_as_json_text_and_extra_columns():
    task = CodeTask(task_id="X/1", prompt="p", reference="x = 1\n", extra={"entry_point": "f"},
                    tests={"kind": "call", "fn_name": "f", "cases": [{"input": [1, "a", [2]], "output": [None]}]})
    row = tasks_to_dataset([task])[0]
    assert row["tests"] == '{"kind": "call", "fn_name": "f", "cases": [{"input": [1, "a", [2]], "output": [null]}]}'
    assert row["entry_point"] == "f" and row["language"] == "python" and row["code_prefix"] == ""


def test_default_data_dir_env(monkeypatch, tmp_path):
    (tmp_path / "mbpp").mkdir()  # a data folder holds the benchmarks' folders (tests/data/test_data_discovery.py)
    monkeypatch.setenv("TRL_CODEFEEDBACK_DATA", str(tmp_path))
    assert default_data_dir() == Path(tmp_path)


def test_import_lines():
    code = "import math\nfrom typing import List, Tuple\n\n\ndef f():\n    import os\n    '''from x import y'''\n"
    assert import_lines(code) == "import math\nfrom typing import List, Tuple\n"
    assert import_lines("def f():\n    pass\n") == ""
