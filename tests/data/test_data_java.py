import json

import pytest

from trl_codefeedback.data import DataLoadError, load_mathqa_java, load_mbjp
from trl_codefeedback.data.mbjp import java_import_lines
from trl_codefeedback.execution.specs import parse_test_spec


def test_mbjp_rows(data_dir):
    path = data_dir / "mxeval" / "mbxp" / "mbjp_release_v1.2.jsonl"
    ds = load_mbjp(str(path))
    raw = [json.loads(line) for line in path.open()]
    assert len(ds) == 966 and ds[0]["task_id"] == "MBJP/1" and ds[0]["entry_point"] == "minCost"
    assert set(ds["language"]) == {"java"}
    assert sum(1 for r in ds if r["reference"]) == 874
    for row, rec in zip(ds, raw):
        spec = parse_test_spec(row["tests"])
        assert spec.kind == "java_main" and spec.test == rec["test"]
        assert row["code_prefix"] == row["prompt"] == rec["prompt"]
        assert row["reference"] == (rec["prompt"] + rec["canonical_solution"] if rec["canonical_solution"] else "")
    assert parse_test_spec(ds[0]["tests"]).num_tests == 3  # main's three checks, split


def test_mbjp_folder_default_and_conversational(monkeypatch, data_dir):
    monkeypatch.setenv("TRL_CODEFEEDBACK_DATA", str(data_dir))
    ds = load_mbjp(conversational=True)
    row = ds[0]
    assert row["prompt"][0]["role"] == "user" and "```java" in row["prompt"][0]["content"]
    assert row["code_prefix"] == "import java.io.*;\nimport java.lang.*;\nimport java.util.*;\nimport java.math.*;\n"
    assert len(load_mbjp(str(data_dir / "mxeval" / "mbxp"))) == 966


def test_mathqa_java_rows(data_dir):
    ds = load_mathqa_java(str(data_dir / "mxeval" / "multilingual_mathqa"))
    assert len(ds) == 1883 and set(ds["entry_point"]) == {"problem"} and set(ds["reference"]) == {""}
    assert all(parse_test_spec(t).num_tests == 1 for t in ds["tests"][:50])
    assert "public static double problem()" in ds[0]["prompt"]


def test_java_loader_errors(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text(json.dumps({"task_id": "T/1", "prompt": "class A {", "test": "class Main {}", "entry_point": "f",
                               "language": "python", "canonical_solution": None}) + "\n")
    with pytest.raises(DataLoadError, match="not 'java'"):
        load_mbjp(str(bad))
    bad.write_text(json.dumps({"task_id": "T/1", "prompt": "class A {", "entry_point": "f"}) + "\n")
    with pytest.raises(DataLoadError, match="missing field 'test'"):
        load_mbjp(str(bad))
    with pytest.raises(FileNotFoundError):
        load_mathqa_java(str(tmp_path / "missing.jsonl"))


def test_hub_names(monkeypatch, data_dir):
    """Hub names go through datasets.load_dataset(name, "java", split="test"); fed here with the local records."""
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, split=None, **kwargs):
        calls.append((name, config, split))
        files = {"mxeval/mbxp": "mbxp/mbjp_release_v1.2.jsonl", "mxeval/mathqa-x": "multilingual_mathqa/mathqa-test-java_v1.jsonl"}
        rows = [json.loads(line) for line in (data_dir / "mxeval" / files[name]).open()][:5]
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert len(load_mbjp("mxeval/mbxp")) == 5 and len(load_mathqa_java("mxeval/mathqa-x")) == 5
    assert calls == [("mxeval/mbxp", "java", "test"), ("mxeval/mathqa-x", "java", "test")]

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataLoadError, match="pass a local path"):
        load_mbjp("mxeval/mbxp")


def test_java_import_lines():
    assert java_import_lines("import java.util.*;\nimport static java.lang.Math.max;\nclass A {}\n") == \
        "import java.util.*;\nimport static java.lang.Math.max;\n"
