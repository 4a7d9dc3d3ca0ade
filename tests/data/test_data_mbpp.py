import json

import pytest

from trl_codefeedback.data import DataLoadError, load_mbpp
from trl_codefeedback.execution.specs import parse_test_spec


@pytest.fixture(scope="module")
def mbpp_all(data_dir):
    return load_mbpp(str(data_dir / "mbpp" / "mbpp.jsonl"), split="all")


def test_counts_and_columns(mbpp_all):
    assert len(mbpp_all) == 974
    assert set(mbpp_all.column_names) >= {"prompt", "tests", "reference", "code_prefix", "task_id", "language"}
    assert mbpp_all[0]["task_id"] == "MBPP/1"
    assert set(mbpp_all["code_prefix"]) == {""}
    assert set(mbpp_all["language"]) == {"python"}


@pytest.mark.parametrize("split,first,last,count", [
    ("prompt", 1, 10, 10), ("test", 11, 510, 500), ("validation", 511, 600, 90), ("train", 601, 974, 374),
])
def test_splits_by_task_id(data_dir, split, first, last, count):
    ds = load_mbpp(str(data_dir / "mbpp" / "mbpp.jsonl"), split=split)
    ids = [int(t.split("/")[1]) for t in ds["task_id"]]
    assert (len(ds), ids[0], ids[-1]) == (count, first, last)


def test_every_row_parses_and_reference_is_lf(mbpp_all):
    for row in mbpp_all:
        spec = parse_test_spec(row["tests"])
        assert spec.kind == "asserts" and spec.num_tests >= 3
        assert "\r" not in row["reference"] and row["reference"].endswith("\n")


def test_prompt_style_and_setup(mbpp_all):
    row = mbpp_all[0]
    assert row["prompt"].startswith("You are an expert Python programmer, and here is your task: Write a function")
    assert "Your code should pass these tests:\n\nassert min_cost(" in row["prompt"]
    assert row["reference"].startswith("R = 3\nC = 3\ndef min_cost(cost, m, n):")
    with_setup = [json.loads(r["tests"])["setup"] for r in mbpp_all if json.loads(r["tests"])["setup"]]
    assert len(with_setup) == 2  # the two MBPP tasks with test_setup_code


def test_challenge_tests(data_dir):
    path = str(data_dir / "mbpp" / "mbpp.jsonl")
    plain = load_mbpp(path, split="all")
    extra = load_mbpp(path, split="all", challenge_test_list=True)
    n_plain = sum(len(json.loads(t)["asserts"]) for t in plain["tests"])
    n_extra = sum(len(json.loads(t)["asserts"]) for t in extra["tests"])
    assert n_extra > n_plain
    assert plain["prompt"] == extra["prompt"]  # challenge tests are never shown


def test_sanitized(data_dir):
    ds = load_mbpp(str(data_dir / "mbpp" / "sanitized-mbpp.json"), split="all", sanitized=True)
    assert len(ds) == 427
    test_split = load_mbpp(str(data_dir / "mbpp"), split="test", sanitized=True)  # folder works too
    assert 0 < len(test_split) < 427
    setups = [json.loads(t)["setup"] for t in ds["tests"]]
    assert any(s.startswith("import ") for s in setups)  # test_imports joined into setup
    for t in ds["tests"]:
        parse_test_spec(t)
    with pytest.raises(ValueError, match="challenge"):
        load_mbpp(str(data_dir / "mbpp" / "sanitized-mbpp.json"), sanitized=True, challenge_test_list=True)


def test_conversational(data_dir):
    ds = load_mbpp(str(data_dir / "mbpp" / "mbpp.jsonl"), split="prompt", conversational=True)
    msg = ds[0]["prompt"]
    assert isinstance(msg, list) and msg[0]["role"] == "user" and "min_cost" in msg[0]["content"]
    assert ds[0]["code_prefix"] == ""


def test_unknown_split_and_missing_file(tmp_path, data_dir):
    with pytest.raises(ValueError, match="unknown MBPP split 'dev'"):
        load_mbpp(str(data_dir / "mbpp" / "mbpp.jsonl"), split="dev")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_mbpp(str(tmp_path / "nope.jsonl"))


def test_malformed_rows_name_file_and_line(tmp_path):
    good = {"task_id": 11, "text": "t", "code": "x = 1", "test_setup_code": "", "test_list": ["assert x == 1"],
            "challenge_test_list": []}
    f = tmp_path / "mbpp.jsonl"
    f.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(DataLoadError, match=r"mbpp.jsonl:2: not valid JSON"):
        load_mbpp(str(f))
    f.write_text(json.dumps(good) + "\n" + json.dumps({**good, "task_id": 12, "test_list": "assert x"}) + "\n")
    with pytest.raises(DataLoadError, match=r"mbpp.jsonl:2: field 'test_list' must be list"):
        load_mbpp(str(f))
    f.write_text(json.dumps({k: v for k, v in good.items() if k != "code"}) + "\n")
    with pytest.raises(DataLoadError, match=r"mbpp.jsonl:1: missing field 'code'"):
        load_mbpp(str(f))
    f.write_text(json.dumps(good) + "\n")
    assert len(load_mbpp(str(f), split="test")) == 1
    with pytest.raises(DataLoadError, match="no rows selected"):
        load_mbpp(str(f), split="train")


def test_hub_name_route_with_hub_shaped_rows(monkeypatch, data_dir):
    """Hub names go through datasets.load_dataset(name, config); fed here with the real records, split as on the Hub."""
    import datasets

    records = [json.loads(line) for line in open(data_dir / "mbpp" / "mbpp.jsonl")]
    calls = []

    def fake_load_dataset(name, config=None, split=None, **kwargs):
        calls.append((name, config, split))
        by_split = {s: [r for r in records if lo <= r["task_id"] <= hi]
                    for s, (lo, hi) in {"train": (601, 974), "test": (11, 510), "validation": (511, 600),
                                        "prompt": (1, 10)}.items()}
        return datasets.DatasetDict({s: datasets.Dataset.from_list(rs) for s, rs in by_split.items()})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = load_mbpp("mbpp", split="validation")
    assert calls == [("google-research-datasets/mbpp", "full", None)]
    local = load_mbpp(str(data_dir / "mbpp" / "mbpp.jsonl"), split="validation")
    assert ds.to_list() == local.to_list()


def test_hub_failure_message(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("offline")))
    with pytest.raises(DataLoadError, match=r"could not load 'google-research-datasets/mbpp' \(config 'sanitized'\) "
                                            r"from the Hub \(no network\?\); pass a local path, e.g. "):
        load_mbpp("google-research-datasets/mbpp", sanitized=True)
