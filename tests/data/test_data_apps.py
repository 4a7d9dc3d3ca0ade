import json
from pathlib import Path

import pytest

from trl_codefeedback.data import (
    AppsProblemError,
    AppsSkipWarning,
    DataLoadError,
    apps_row_to_task,
    load_apps,
    load_apps_example_tests,
)
from trl_codefeedback.execution.specs import parse_test_spec

IDS = ["0001", "0111", "2287", "2404", "4184"]


def hub_row(problem_dir: Path) -> dict:
    """A row shaped like codeparrot/apps on the Hub, built by hand from an original-layout folder."""
    meta = json.loads((problem_dir / "metadata.json").read_text())
    starter = problem_dir / "starter_code.py"
    return {
        "problem_id": int(problem_dir.name),
        "question": (problem_dir / "question.txt").read_text(),
        "solutions": (problem_dir / "solutions.json").read_text(),
        "input_output": (problem_dir / "input_output.json").read_text(),
        "difficulty": meta["difficulty"],
        "url": meta["url"],
        "starter_code": starter.read_text() if starter.exists() else "",
    }


@pytest.fixture(scope="module")
def apps_train(data_dir):
    return load_apps(str(data_dir / "apps" / "train"), split="train")


def test_local_folder_layout(apps_train, data_dir):
    assert apps_train["task_id"] == [f"APPS/train/{i}" for i in IDS]
    kinds = [parse_test_spec(t).kind for t in apps_train["tests"]]
    assert kinds == ["stdio", "stdio", "stdio", "call", "call"]
    assert [parse_test_spec(t).num_tests for t in apps_train["tests"]] == [1, 1, 3, 1, 8]
    assert apps_train["difficulty"] == ["interview", "interview", "competition", "introductory", "introductory"]
    assert apps_train["entry_point"] == ["", "", "", "findKthPositive", "is_prime"]
    assert set(apps_train["code_prefix"]) == {""}
    first_solution = json.loads((data_dir / "apps" / "train" / "0001" / "solutions.json").read_text())[0]
    assert apps_train[0]["reference"] == first_solution
    # the parent folder with train/ inside works too
    assert len(load_apps(str(data_dir / "apps"), split="train")) == 5


def test_prompts(apps_train):
    assert apps_train[0]["prompt"].startswith("\nQUESTION:\n")
    assert apps_train[0]["prompt"].endswith("\nUse Standard Input format\nANSWER:\n")
    assert "class Solution:" in apps_train[3]["prompt"]
    assert apps_train[3]["prompt"].endswith("\nUse Call-Based format\nANSWER:\n")


def test_call_outputs_kept_as_upstream(apps_train):
    is_prime = json.loads(apps_train[4]["tests"])
    assert is_prime["cases"][0] == {"input": [1], "output": [False]}  # APPS's one-element list wrapping
    kth = json.loads(apps_train[3]["tests"])
    assert kth["cases"][0] == {"input": [[2, 3, 4, 7, 11], 5], "output": 9}


def test_hub_rows_match_local_folders(apps_train, data_dir):
    for pid, local in zip(IDS, apps_train):
        task = apps_row_to_task(hub_row(data_dir / "apps" / "train" / pid), split="train")
        row = task.to_row()
        for col in ("task_id", "prompt", "tests", "reference", "code_prefix", "entry_point", "difficulty", "url"):
            assert row[col] == local[col], (pid, col)


def test_filters_and_conversational(data_dir):
    path = str(data_dir / "apps" / "train")
    assert load_apps(path, difficulties=["introductory"])["task_id"] == ["APPS/train/2404", "APPS/train/4184"]
    assert len(load_apps(path, max_problems=2)) == 2
    conv = load_apps(path, difficulties=["competition"], conversational=True)
    assert conv[0]["prompt"][0]["role"] == "user" and "standard input" in conv[0]["prompt"][0]["content"]
    with pytest.raises(ValueError, match="unknown APPS difficulties"):
        load_apps(path, difficulties=["easy"])
    with pytest.raises(ValueError, match="unknown APPS split"):
        load_apps(path, split="dev")


def _problem(root: Path, pid: str, io_text: str | None) -> None:
    d = root / pid
    d.mkdir(parents=True)
    (d / "question.txt").write_text("Print 1.")
    (d / "solutions.json").write_text(json.dumps(["print(1)"]))
    if io_text is not None:
        (d / "input_output.json").write_text(io_text)


def test_no_tests_skipped_with_counted_warning(tmp_path):
    _problem(tmp_path, "0000", json.dumps({"inputs": [""], "outputs": ["1\n"]}))
    _problem(tmp_path, "0001", None)
    _problem(tmp_path, "0002", json.dumps({"inputs": [], "outputs": []}))
    with pytest.warns(AppsSkipWarning, match=r"skipped 2 APPS problem\(s\) with no tests: APPS problem 0001"):
        ds = load_apps(str(tmp_path))
    assert ds["task_id"] == ["APPS/train/0000"]


@pytest.mark.parametrize("io_text,message", [
    ("{bad json", "APPS problem 0003: input_output is not valid JSON"),
    (json.dumps({"inputs": ["1\n", "2\n"], "outputs": ["1\n"]}), "APPS problem 0003: 2 inputs but 1 outputs"),
    (json.dumps({"inputs": "1\n", "outputs": "1\n"}), "APPS problem 0003: input_output needs lists"),
    (json.dumps({"fn_name": "f", "inputs": [5], "outputs": [5]}),
     r"APPS problem 0003: inputs\[0\] of call-based problem must be the list of arguments"),
    (json.dumps({"inputs": [{"a": 1}], "outputs": ["1"]}), r"APPS problem 0003: inputs\[0\] must be a string"),
])
def test_malformed_raise_or_skip(tmp_path, io_text, message):
    _problem(tmp_path, "0000", json.dumps({"inputs": ["\n"], "outputs": ["1\n"]}))
    _problem(tmp_path, "0003", io_text)
    with pytest.raises(AppsProblemError, match=message):
        load_apps(str(tmp_path), on_error="raise")
    with pytest.warns(AppsSkipWarning, match="skipped 1 APPS problem\\(s\\) that are malformed: " + message):
        ds = load_apps(str(tmp_path), on_error="skip")
    assert ds["task_id"] == ["APPS/train/0000"]


def test_stdio_line_lists_are_joined():
    row = {"problem_id": 5, "question": "q", "solutions": "", "difficulty": "interview", "url": "",
           "starter_code": "", "input_output": json.dumps({"inputs": [["1 2", "3"]], "outputs": [["6"]]})}
    task = apps_row_to_task(row, split="test")
    assert task.tests["cases"] == [{"input": "1 2\n3", "output": "6"}]
    assert task.reference == "" and task.task_id == "APPS/test/0005"


def test_missing_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_apps(str(tmp_path / "missing"))
    with pytest.raises(DataLoadError, match="no problem folders"):
        load_apps(str(tmp_path))


def test_example_tests(data_dir):
    tests = load_apps_example_tests(str(data_dir / "apps" / "test_example_tests.jsonl"))
    assert len(tests) == 4937  # 63 of 5000 have no examples
    assert sum(parse_test_spec(t).num_tests for t in tests.values()) == 9882
    assert json.loads(tests["0000"])["cases"][0] == {"input": "|[a:b:|]\n", "output": "4\n"}
