"""``TRL_CODEFEEDBACK_DATA`` set but wrong raises at once, naming the variable (no silent fall-back to the Hub)."""

from __future__ import annotations

import time

import pytest

from trl_codefeedback.data import (
    DataLoadError,
    _common,
    default_data_dir,
    load_apps,
    load_humaneval,
    load_mbjp,
    load_mbpp,
)

ENV = "TRL_CODEFEEDBACK_DATA"


def _hub_must_not_be_called(*args, **kwargs):
    raise AssertionError("the Hub was tried although TRL_CODEFEEDBACK_DATA names a local folder")


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    monkeypatch.setattr(_common.datasets, "load_dataset", _hub_must_not_be_called)


@pytest.mark.parametrize("loader", [load_mbpp, load_humaneval, load_mbjp, load_apps])
def test_a_folder_that_does_not_exist_raises_naming_the_variable(monkeypatch, tmp_path, loader):
    monkeypatch.setenv(ENV, str(tmp_path / "nope"))
    t0 = time.monotonic()
    with pytest.raises(DataLoadError, match=rf"{ENV}=.*nope.* does not exist.*mbpp/, human-eval/, mxeval/, apps/"):
        loader()
    assert time.monotonic() - t0 < 5


def test_a_folder_one_level_too_high_says_which_one_was_meant(monkeypatch, tmp_path):
    (tmp_path / "data" / "mbpp").mkdir(parents=True)
    monkeypatch.setenv(ENV, str(tmp_path))
    with pytest.raises(DataLoadError, match=rf"holds none of .*did you mean {ENV}='{tmp_path / 'data'}'"):
        load_mbpp()


def test_a_file_missing_from_the_data_folder_is_named(monkeypatch, tmp_path):
    (tmp_path / "mbpp").mkdir()
    monkeypatch.setenv(ENV, str(tmp_path))
    assert default_data_dir() == tmp_path
    with pytest.raises(DataLoadError, match=rf"{ENV}=.* has no human-eval/HumanEval.jsonl.gz.*--data-path"):
        load_humaneval()


def test_the_hub_error_says_how_to_use_local_files(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(_common, "default_data_dir", lambda: None)

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(_common.datasets, "load_dataset", offline)
    with pytest.raises(DataLoadError, match=rf"local path.*--data-path.*{ENV}") as err:
        load_mbpp("google-research-datasets/mbpp")
    assert "offline" in str(err.value)


def test_an_installed_wheel_has_no_checkout_default(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(_common, "_checkout_root", lambda: None)
    assert default_data_dir() is None
