"""Original MBPP (Austin et al. 2021): full ``mbpp.jsonl`` and hand-verified ``sanitized-mbpp.json``.

Example:
    >>> ds = load_mbpp("/work/shared/data/mbpp/mbpp.jsonl", split="test")  # doctest: +SKIP
    >>> len(ds), ds[0]["task_id"]                                           # doctest: +SKIP
    (500, 'MBPP/11')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets

from trl_codefeedback.data._common import (
    CodeTask,
    DataLoadError,
    default_file,
    iter_jsonl,
    load_hub_records,
    looks_like_path,
    normalize_newlines,
    require_fields,
    require_path,
    tasks_to_dataset,
    user_chat,
)

#: Task-id ranges of the splits, as the MBPP README defines them (inclusive).
MBPP_SPLITS: dict[str, tuple[int, int]] = {
    "prompt": (1, 10),
    "test": (11, 510),
    "validation": (511, 600),
    "train": (601, 974),
    "all": (1, 974),
}
HUB_NAMES = ("mbpp", "google-research-datasets/mbpp")
FULL_FILE = "mbpp.jsonl"
SANITIZED_FILE = "sanitized-mbpp.json"


def mbpp_prompt(description: str, asserts: list[str]) -> str:
    """The MBPP-paper prompt: task description, then the tests the code should pass.

    >>> print(mbpp_prompt("Write f.", ["assert f() == 1"]))
    You are an expert Python programmer, and here is your task: Write f. Your code should pass these tests:
    <BLANKLINE>
    assert f() == 1
    <BLANKLINE>
    """
    tests = "\n".join(asserts)
    return (
        f"You are an expert Python programmer, and here is your task: {description.strip()} "
        f"Your code should pass these tests:\n\n{tests}\n"
    )


def _read_local(path: Path, sanitized: bool) -> list[tuple[str, dict[str, Any]]]:
    """``(where, record)`` pairs of a local MBPP file (``where`` names file and line for errors)."""
    if sanitized or path.suffix == ".json":
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataLoadError(f"{path}: not valid JSON: {e}") from None
        if not isinstance(records, list):
            raise DataLoadError(f"{path}: expected a JSON array of tasks, got {type(records).__name__}")
        return [(f"{path} (item {i})", r) for i, r in enumerate(records)]
    return [(f"{path}:{lineno}", r) for lineno, r in iter_jsonl(path)]


def _resolve(path_or_name: str | None, sanitized: bool) -> tuple[list[tuple[str, dict[str, Any]]], str]:
    filename = SANITIZED_FILE if sanitized else FULL_FILE
    if path_or_name is None:
        local = default_file("mbpp", filename)
        path_or_name = str(local) if local is not None else "google-research-datasets/mbpp"
    if path_or_name in HUB_NAMES or not looks_like_path(path_or_name):
        name = "google-research-datasets/mbpp" if path_or_name == "mbpp" else path_or_name
        config = "sanitized" if sanitized else "full"
        pairs = load_hub_records(name, config, example_path=f"shared/data/mbpp/{filename}")
        return [(f"{name}[{config}/{split}] task {r.get('task_id')}", r) for split, r in pairs], name
    path = require_path(path_or_name, "MBPP")
    if path.is_dir():
        path = require_path(path / filename, "MBPP")
    return _read_local(path, sanitized or path.suffix == ".json"), str(path)


def load_mbpp(
    path_or_name: str | None = None,
    split: str = "test",
    sanitized: bool = False,
    conversational: bool = False,
    challenge_test_list: bool = False,
) -> datasets.Dataset:
    """Load MBPP as rows of ``prompt``, ``tests`` (kind asserts), ``reference``, ``code_prefix`` ("").

    Args:
        path_or_name: ``mbpp.jsonl`` / ``sanitized-mbpp.json`` (or their folder), or a Hub name
            (``"mbpp"``, ``"google-research-datasets/mbpp"``). ``None``: the file in
            :func:`default_data_dir`, else the Hub.
        split: ``"test"`` (ids 11-510), ``"train"`` (601-974), ``"validation"`` (511-600),
            ``"prompt"`` (1-10) or ``"all"``; chosen by task id as the MBPP README defines.
        sanitized: read the hand-verified subset (427 tasks; ``prompt`` field, ``test_imports``).
        conversational: prompt as ``[{"role": "user", "content": ...}]``.
        challenge_test_list: also test the ``challenge_test_list`` asserts (full MBPP only;
            they are not shown in the prompt).

    Example:
        >>> ds = load_mbpp("shared/data/mbpp/sanitized-mbpp.json", split="all", sanitized=True)  # doctest: +SKIP
        >>> len(ds)                                                                               # doctest: +SKIP
        427
    """
    if split not in MBPP_SPLITS:
        raise ValueError(f"unknown MBPP split {split!r}; expected one of {list(MBPP_SPLITS)}")
    if challenge_test_list and sanitized:
        raise ValueError("sanitized MBPP has no challenge_test_list; use the full MBPP for challenge tests")
    records, source = _resolve(path_or_name, sanitized)
    lo, hi = MBPP_SPLITS[split]
    numbered = []
    for where, r in records:  # converts (and so validates) every record, not just the split's
        task = _record_to_task(r, where, sanitized, conversational, challenge_test_list)
        numbered.append((r["task_id"], task))
    tasks = [task for task_id, task in sorted(numbered, key=lambda nt: nt[0]) if lo <= task_id <= hi]
    return tasks_to_dataset(tasks, f"{source} (split {split!r})")


def _record_to_task(r: dict[str, Any], where: str, sanitized: bool, conversational: bool,
                    challenge: bool) -> CodeTask:
    if sanitized:
        require_fields(r, {"task_id": int, "prompt": str, "code": str, "test_imports": list, "test_list": list}, where)
        description, setup = r["prompt"], "\n".join(r["test_imports"])
    else:
        require_fields(r, {"task_id": int, "text": str, "code": str, "test_list": list}, where)
        description, setup = r["text"], r.get("test_setup_code") or ""
    asserts = list(r["test_list"])
    if not asserts or not all(isinstance(a, str) for a in asserts):
        raise DataLoadError(f"{where}: test_list must be a non-empty list of assert strings")
    if challenge:
        asserts += [a for a in r.get("challenge_test_list") or []]
    text = mbpp_prompt(description, list(r["test_list"]))
    return CodeTask(
        task_id=f"MBPP/{r['task_id']}",
        prompt=user_chat(text) if conversational else text,
        tests={"kind": "asserts", "setup": normalize_newlines(setup), "asserts": asserts},
        reference=normalize_newlines(r["code"]).rstrip() + "\n",
        code_prefix="",
    )
