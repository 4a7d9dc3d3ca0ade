"""APPS (Hendrycks et al. 2021): competitive-programming problems with stdin/stdout or call-based tests.

Two layouts are read and converted by the same row normaliser, :func:`apps_row_to_task`:

* the original folder layout (``<split>/<id>/question.txt``, ``input_output.json``,
  ``solutions.json``, ``metadata.json``, ``starter_code.py``), read into hub-shaped rows
  by :func:`read_apps_problem_dir`;
* the Hub layout of ``codeparrot/apps`` (``problem_id``, ``question``, ``solutions`` and
  ``input_output`` as JSON text, ``difficulty``, ``url``, ``starter_code``).

stdin problems become tests of kind ``stdio``; problems with ``fn_name`` become kind ``call``
(outputs kept exactly as upstream, including APPS's occasional one-element list wrapping:
comparing leniently is the executor's job).

Example:
    >>> ds = load_apps("/work/shared/data/apps/train", split="train")  # doctest: +SKIP
    >>> len(ds), ds[0]["task_id"], ds[0]["difficulty"]                  # doctest: +SKIP
    (5, 'APPS/train/0001', 'interview')
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

import datasets

from trl_codefeedback.data._common import (
    CodeTask,
    DataLoadError,
    default_data_dir,
    default_file,
    iter_jsonl,
    load_hub_records,
    looks_like_path,
    require_path,
    tasks_to_dataset,
    user_chat,
)

HUB_NAME = "codeparrot/apps"
SPLITS = ("train", "test")
DIFFICULTIES = ("introductory", "interview", "competition")


class AppsProblemError(DataLoadError):
    """One APPS problem is malformed; the message names its id and what is wrong."""


class AppsNoTestsError(AppsProblemError):
    """An APPS problem has no test cases (skipped by :func:`load_apps`, with a counted warning)."""


class AppsSkipWarning(UserWarning):
    """Some APPS problems were skipped (no tests, or malformed with ``on_error="skip"``)."""


def apps_prompt(question: str, starter_code: str, call_based: bool) -> str:
    """The APPS-paper prompt (also CodeRL's): QUESTION, starter code, the I/O format, ANSWER.

    >>> apps_prompt("Add two numbers.", "", call_based=False)
    '\\nQUESTION:\\nAdd two numbers.\\n\\nUse Standard Input format\\nANSWER:\\n'
    """
    text = "\nQUESTION:\n" + question.strip() + "\n"
    if starter_code.strip():
        text += starter_code.rstrip() + "\n"
    text += "\nUse Call-Based format" if call_based else "\nUse Standard Input format"
    return text + "\nANSWER:\n"


def apps_chat_text(question: str, starter_code: str, fn_name: str | None) -> str:
    """The user message for a conversational APPS prompt."""
    text = question.strip()
    if starter_code.strip():
        text += f"\n\nStart from this code:\n```python\n{starter_code.rstrip()}\n```"
    if fn_name:
        text += f"\n\nWrite a Python solution; `{fn_name}` will be called with the test arguments."
    else:
        text += "\n\nWrite a Python program that reads from standard input and writes to standard output."
    return text + "\n"


def _as_text(value: Any, what: str, pid: str) -> str:
    """stdio input/output as text; a list of lines (seen in APPS) is joined with newlines."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    raise AppsProblemError(f"APPS problem {pid}: {what} must be a string (or list of lines), "
                           f"got {type(value).__name__}: {value!r:.100}")


def apps_tests(input_output: str | dict | None, pid: str) -> dict[str, Any]:
    """The test spec (kind stdio or call) of one problem's ``input_output`` (JSON text or dict).

    Raises:
        AppsNoTestsError: no tests at all.
        AppsProblemError: naming ``pid`` and what is wrong (bad JSON, missing keys, length mismatch...).
    """
    if input_output is None or (isinstance(input_output, str) and not input_output.strip()):
        raise AppsNoTestsError(f"APPS problem {pid}: no input_output (no tests)")
    if isinstance(input_output, str):
        try:
            io = json.loads(input_output)
        except json.JSONDecodeError as e:
            raise AppsProblemError(f"APPS problem {pid}: input_output is not valid JSON: {e}") from None
    else:
        io = input_output
    if not isinstance(io, dict):
        raise AppsProblemError(f"APPS problem {pid}: input_output must be an object, got {type(io).__name__}")
    inputs, outputs = io.get("inputs"), io.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise AppsProblemError(f"APPS problem {pid}: input_output needs lists 'inputs' and 'outputs', "
                               f"got {type(inputs).__name__} and {type(outputs).__name__}")
    if len(inputs) != len(outputs):
        raise AppsProblemError(f"APPS problem {pid}: {len(inputs)} inputs but {len(outputs)} outputs")
    if not inputs:
        raise AppsNoTestsError(f"APPS problem {pid}: input_output has no test cases")
    fn_name = io.get("fn_name")
    if fn_name is not None:
        if not isinstance(fn_name, str) or not fn_name.isidentifier():
            raise AppsProblemError(f"APPS problem {pid}: fn_name must be an identifier, got {fn_name!r}")
        for i, args in enumerate(inputs):
            if not isinstance(args, list):
                raise AppsProblemError(f"APPS problem {pid}: inputs[{i}] of call-based problem must be the "
                                       f"list of arguments, got {type(args).__name__}: {args!r:.100}")
        return {"kind": "call", "fn_name": fn_name,
                "cases": [{"input": a, "output": o} for a, o in zip(inputs, outputs)]}
    return {"kind": "stdio", "cases": [
        {"input": _as_text(a, f"inputs[{i}]", pid), "output": _as_text(o, f"outputs[{i}]", pid)}
        for i, (a, o) in enumerate(zip(inputs, outputs))
    ]}


def _solutions(solutions: str | list | None, pid: str) -> list[str]:
    if solutions is None or (isinstance(solutions, str) and not solutions.strip()):
        return []
    if isinstance(solutions, str):
        try:
            solutions = json.loads(solutions)
        except json.JSONDecodeError as e:
            raise AppsProblemError(f"APPS problem {pid}: solutions is not valid JSON: {e}") from None
    if not isinstance(solutions, list) or not all(isinstance(s, str) for s in solutions):
        raise AppsProblemError(f"APPS problem {pid}: solutions must be a list of strings")
    return solutions


def apps_row_to_task(row: dict[str, Any], split: str = "train", conversational: bool = False) -> CodeTask:
    """Normalise one APPS row in the ``codeparrot/apps`` Hub layout to a :class:`CodeTask`.

    Reference = the first solution ("" when there is none); ``code_prefix`` = "" (the model
    writes the whole program, starter code included).

    Example:
        >>> row = {"problem_id": 7, "question": "Print the sum.", "solutions": '["print(sum(map(int, input().split())))"]',
        ...        "input_output": '{"inputs": ["1 2\\\\n"], "outputs": ["3\\\\n"]}', "difficulty": "introductory",
        ...        "url": "", "starter_code": ""}
        >>> task = apps_row_to_task(row)
        >>> task.task_id, task.tests["kind"]
        ('APPS/train/0007', 'stdio')
    """
    pid_raw = row.get("problem_id")
    try:
        pid = f"{int(pid_raw):04d}"
    except (TypeError, ValueError):
        raise AppsProblemError(f"APPS row has no valid problem_id: {pid_raw!r}") from None
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise AppsProblemError(f"APPS problem {pid}: question is missing or empty")
    tests = apps_tests(row.get("input_output"), pid)
    solutions = _solutions(row.get("solutions"), pid)
    starter = row.get("starter_code") or ""
    fn_name = tests.get("fn_name")
    prompt = user_chat(apps_chat_text(question, starter, fn_name)) if conversational else apps_prompt(
        question, starter, call_based=fn_name is not None)
    return CodeTask(
        task_id=f"APPS/{split}/{pid}",
        prompt=prompt,
        tests=tests,
        reference=solutions[0] if solutions else "",
        code_prefix="",
        extra={"entry_point": fn_name or "", "difficulty": row.get("difficulty") or "",
               "url": row.get("url") or "", "starter_code": starter},
    )


def read_apps_problem_dir(path: str | Path) -> dict[str, Any]:
    """Read one original-layout problem folder (``<id>/``) into a Hub-layout row dict.

    Missing ``input_output.json`` / ``solutions.json`` / ``starter_code.py`` become ""
    (as on the Hub); a missing ``question.txt`` is an error.
    """
    d = Path(path)
    if not (d / "question.txt").is_file():
        raise AppsProblemError(f"APPS problem folder {d}: no question.txt")

    def text(name: str) -> str:
        f = d / name
        return f.read_text(encoding="utf-8") if f.is_file() else ""

    meta: dict[str, Any] = {}
    if (d / "metadata.json").is_file():
        try:
            meta = json.loads(text("metadata.json"))
        except json.JSONDecodeError as e:
            raise AppsProblemError(f"APPS problem folder {d}: metadata.json is not valid JSON: {e}") from None
    return {
        "problem_id": int(d.name) if d.name.isdigit() else d.name,
        "question": text("question.txt"),
        "solutions": text("solutions.json"),
        "input_output": text("input_output.json"),
        "difficulty": meta.get("difficulty", ""),
        "url": meta.get("url", ""),
        "starter_code": text("starter_code.py"),
    }


def _local_rows(path: Path, split: str) -> Iterator[dict[str, Any]]:
    root = path / split if (path / split).is_dir() else path
    problem_dirs = sorted(p for p in root.iterdir() if p.is_dir() and (p / "question.txt").is_file())
    if not problem_dirs:
        raise DataLoadError(f"APPS: no problem folders (<id>/question.txt) under {root}")
    for p in problem_dirs:
        yield read_apps_problem_dir(p)


def load_apps(
    path_or_name: str | None = None,
    split: str = "train",
    difficulties: Iterable[str] | None = None,
    max_problems: int | None = None,
    conversational: bool = False,
    on_error: Literal["skip", "raise"] = "skip",
) -> datasets.Dataset:
    """Load APPS as rows of ``prompt``, ``tests`` (stdio / call), ``reference``, ``code_prefix`` (""),
    plus ``entry_point`` (fn_name or ""), ``difficulty``, ``url``, ``starter_code``.

    Args:
        path_or_name: a folder of ``<id>/`` problem folders (or its parent holding ``train/`` and
            ``test/``), or the Hub name ``"codeparrot/apps"``. ``None``: ``<data dir>/apps/<split>``
            when present, else the Hub.
        split: ``"train"`` or ``"test"``.
        difficulties: keep only these (``introductory``, ``interview``, ``competition``).
        max_problems: stop after this many kept problems.
        conversational: chat prompt instead of the APPS-paper prompt.
        on_error: ``"skip"`` malformed problems with one :class:`AppsSkipWarning` that counts them and
            names each, or ``"raise"`` :class:`AppsProblemError`. Problems without tests are always
            skipped with a counted warning.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown APPS split {split!r}; expected one of {list(SPLITS)}")
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    wanted = set(difficulties) if difficulties is not None else None
    if wanted is not None and not wanted <= set(DIFFICULTIES):
        raise ValueError(f"unknown APPS difficulties {sorted(wanted - set(DIFFICULTIES))}; "
                         f"expected some of {list(DIFFICULTIES)}")
    if path_or_name is None:
        local = default_file("apps", split)
        path_or_name = str(local) if local is not None and local.is_dir() else HUB_NAME
    if path_or_name == HUB_NAME or not looks_like_path(path_or_name):
        rows: Iterable[dict[str, Any]] = (r for _, r in load_hub_records(
            path_or_name, split=split, example_path="shared/data/apps/train (original APPS folder layout)"))
        source = f"{path_or_name} ({split})"
    else:
        path = require_path(path_or_name, "APPS")
        rows, source = _local_rows(path, split), str(path)

    tasks: list[CodeTask] = []
    no_tests: list[str] = []
    malformed: list[str] = []
    for row in rows:
        if max_problems is not None and len(tasks) >= max_problems:
            break
        if wanted is not None and row.get("difficulty") not in wanted:
            continue
        try:
            tasks.append(apps_row_to_task(row, split, conversational))
        except AppsNoTestsError as e:
            no_tests.append(str(e))
        except AppsProblemError as e:
            if on_error == "raise":
                raise AppsProblemError(f"{source}: {e}") from None
            malformed.append(str(e))
    for reasons, what in ((no_tests, "with no tests"), (malformed, "that are malformed")):
        if reasons:
            shown = "; ".join(reasons[:10]) + (f"; ... ({len(reasons) - 10} more)" if len(reasons) > 10 else "")
            warnings.warn(f"{source}: skipped {len(reasons)} APPS problem(s) {what}: {shown}", AppsSkipWarning,
                          stacklevel=2)
    return tasks_to_dataset(tasks, source)


def load_apps_example_tests(path: str | None = None) -> dict[str, str]:
    """CodeRL's example tests of the APPS test split: ``{problem_id: tests JSON text (kind stdio)}``.

    Reads ``apps/test_example_tests.jsonl`` (one ``{"problem_id", "example_input_output"}`` per line).
    Problems without examples (``null``) are left out. These are the examples shown in each problem
    statement, not the hidden tests; they carry no prompts (join with :func:`load_apps` on the test split).

    Example:
        >>> tests = load_apps_example_tests("/work/shared/data/apps/test_example_tests.jsonl")  # doctest: +SKIP
        >>> len(tests)                                                                          # doctest: +SKIP
        4937
    """
    if path is None:
        base = default_data_dir()
        if base is None or not (base / "apps" / "test_example_tests.jsonl").is_file():
            raise FileNotFoundError("APPS example tests: no path given and no data folder found; pass the path "
                                    "of test_example_tests.jsonl or set TRL_CODEFEEDBACK_DATA")
        path = str(base / "apps" / "test_example_tests.jsonl")
    p = require_path(path, "APPS example tests")
    out: dict[str, str] = {}
    for lineno, r in iter_jsonl(p):
        pid, io = r.get("problem_id"), r.get("example_input_output")
        if not isinstance(pid, str):
            raise DataLoadError(f"{p}:{lineno}: problem_id must be a string, got {pid!r}")
        if io is None:
            continue
        try:
            spec = apps_tests(io, pid)
        except AppsProblemError as e:
            raise DataLoadError(f"{p}:{lineno}: {e}") from None
        out[pid] = json.dumps(spec)
    return out
