"""Shared pieces of the data loaders: the row record, file reading, hub loading, data dir.

Every loader turns its benchmark into :class:`CodeTask` records and then into a
``datasets.Dataset`` with :func:`tasks_to_dataset`, which validates each row's
``tests`` with :func:`~trl_codefeedback.execution.specs.parse_test_spec`.

Example:
    >>> task = CodeTask(task_id="demo/1", prompt="Write f.", reference="def f():\\n    return 1\\n",
    ...                 tests={"kind": "asserts", "asserts": ["assert f() == 1"]})
    >>> ds = tasks_to_dataset([task])
    >>> ds[0]["tests"]
    '{"kind": "asserts", "asserts": ["assert f() == 1"]}'
"""

from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import datasets

from trl_codefeedback.execution.specs import TestSpecError, parse_test_spec

ENV_DATA_DIR = "TRL_CODEFEEDBACK_DATA"


class DataLoadError(ValueError):
    """A benchmark file or row could not be read; the message names the file/row and the problem."""


@dataclass
class CodeTask:
    """One row of a code benchmark, in the column contract the rewards read.

    Attributes:
        task_id: unique id, e.g. ``"MBPP/11"`` or ``"HumanEval/0"``.
        prompt: plain text, or a chat (``[{"role": "user", "content": ...}]``).
        tests: test spec dict (see :mod:`trl_codefeedback.execution.specs`).
        reference: complete reference program, runnable on its own with ``tests``.
        code_prefix: code the executor puts before the completion ("" for instruction prompts).
        language: programming language of the programs.
        extra: further columns (``entry_point``, ``difficulty``...); same keys in every row of a dataset.
    """

    task_id: str
    prompt: str | list[dict[str, str]]
    tests: dict[str, Any]
    reference: str
    code_prefix: str = ""
    language: str = "python"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "prompt": self.prompt,
            "tests": json.dumps(self.tests),
            "reference": self.reference,
            "code_prefix": self.code_prefix,
            "language": self.language,
            **self.extra,
        }


def tasks_to_dataset(tasks: Sequence[CodeTask], source: str = "<memory>") -> datasets.Dataset:
    """Validate every task's tests and build the ``datasets.Dataset`` (``tests`` stored as JSON text).

    Raises:
        DataLoadError: naming ``source`` and the task id when a spec is invalid.
    """
    rows = []
    for task in tasks:
        try:
            parse_test_spec(task.tests)
        except TestSpecError as e:
            raise DataLoadError(f"{source}: task {task.task_id}: invalid tests: {e}") from None
        rows.append(task.to_row())
    if not rows:
        raise DataLoadError(f"{source}: no rows selected")
    return datasets.Dataset.from_list(rows)


def user_chat(content: str) -> list[dict[str, str]]:
    """A one-message conversational prompt."""
    return [{"role": "user", "content": content}]


_IMPORT_RE = re.compile(r"^(import\s+\S|from\s+\S+\s+import\s)")


def import_lines(code: str) -> str:
    """The top-level ``import``/``from ... import`` lines of ``code``, newline-terminated ("" if none).

    >>> import_lines("from typing import List\\n\\n\\ndef f(x: List[int]):\\n    import os\\n")
    'from typing import List\\n'
    """
    lines = [ln for ln in code.splitlines() if _IMPORT_RE.match(ln)]
    return "".join(ln + "\n" for ln in lines)


def normalize_newlines(text: str) -> str:
    """CRLF / CR -> LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


#: The folders of a benchmark data folder (``shared/data``); one of them tells the right folder from its parent.
DATA_SUBDIRS = ("mbpp", "human-eval", "mxeval", "apps")


def _env_data_dir(value: str) -> Path:
    """The folder ``TRL_CODEFEEDBACK_DATA`` names; :class:`DataLoadError` when it cannot be the data folder."""
    path = Path(value).expanduser()
    expected = "the benchmark data folder, the one holding " + ", ".join(f"{d}/" for d in DATA_SUBDIRS)
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DataLoadError(f"{ENV_DATA_DIR}={value!r} {what}; it must name {expected}. Fix or unset it "
                            "(unset: the loaders read the Hub), or pass a local path to the loader.")
    if not any((path / d).is_dir() for d in DATA_SUBDIRS):
        inner = [c for c in sorted(path.iterdir()) if c.is_dir() and any((c / d).is_dir() for d in DATA_SUBDIRS)]
        hint = f"; did you mean {ENV_DATA_DIR}={str(inner[0])!r}?" if inner else "."
        raise DataLoadError(f"{ENV_DATA_DIR}={value!r} holds none of {', '.join(d + '/' for d in DATA_SUBDIRS)}: "
                            f"it must name {expected}{hint}")
    return path


def _checkout_root() -> Path | None:
    """The repository checkout this package runs from (an editable install), or None (an installed wheel)."""
    repo = Path(__file__).resolve().parents[2]
    return repo if (repo / "pyproject.toml").is_file() and (repo / "trl_codefeedback").is_dir() else None


def default_data_dir() -> Path | None:
    """The benchmark data folder (``shared/data``), or None when there is none.

    ``TRL_CODEFEEDBACK_DATA`` first: when it is set it must name that folder (the one holding
    ``mbpp/``, ``human-eval/``, ``mxeval/``, ``apps/``), else :class:`DataLoadError` says what is
    wrong (no silent fall-back to the Hub). Unset: ``shared/data`` beside the repository checkout
    (``<repo>/../shared/data``), which exists only when the package runs from a checkout (an
    editable install); an installed wheel has none, so set the variable or pass paths.
    """
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return _env_data_dir(env)
    repo = _checkout_root()
    candidate = repo.parent / "shared" / "data" if repo is not None else None
    return candidate if candidate is not None and candidate.is_dir() else None


def default_file(*parts: str) -> Path | None:
    """``default_data_dir() / parts`` if that exists, else None.

    When ``TRL_CODEFEEDBACK_DATA`` is set and the file is not there, :class:`DataLoadError`
    naming the variable and the file (the user asked for local data: no fall-back to the Hub).
    """
    base = default_data_dir()
    if base is None:
        return None
    path = base.joinpath(*parts)
    if path.exists():
        return path
    if os.environ.get(ENV_DATA_DIR):
        raise DataLoadError(f"{ENV_DATA_DIR}={os.environ[ENV_DATA_DIR]!r} has no {'/'.join(parts)}: put the file "
                            f"there, pass its path to the loader (trl-codefeedback evaluate: --data-path), or unset "
                            f"{ENV_DATA_DIR} to load the benchmark from the Hub")
    return None


def looks_like_path(name: str) -> bool:
    """True for strings that are meant as a local path rather than a Hub dataset name."""
    return (
        os.path.exists(name)
        or name.startswith(("/", ".", "~"))
        or name.endswith((".json", ".jsonl", ".gz"))
        or name.count("/") > 1
        or os.sep != "/" and os.sep in name
    )


def require_path(path: str | os.PathLike, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{what}: no such file or folder: {p}")
    return p


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` of a JSONL file (``.gz`` read through gzip); blank lines skipped.

    Raises:
        DataLoadError: naming the file and line when a line is not a JSON object.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataLoadError(f"{path}:{lineno}: not valid JSON: {e}") from None
            if not isinstance(record, dict):
                raise DataLoadError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            yield lineno, record


def require_fields(record: dict[str, Any], fields: dict[str, type | tuple[type, ...]], where: str) -> None:
    """Check ``record`` has each field with the given type; :class:`DataLoadError` naming ``where`` if not."""
    for name, typ in fields.items():
        if name not in record:
            raise DataLoadError(f"{where}: missing field {name!r} (fields present: {sorted(record)})")
        if not isinstance(record[name], typ):
            want = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
            raise DataLoadError(f"{where}: field {name!r} must be {want}, got {type(record[name]).__name__}")


def load_hub_records(name: str, config: str | None = None, split: str | None = None, example_path: str = "",
                     **kwargs: Any) -> list[tuple[str, dict[str, Any]]]:
    """Load a Hub dataset with ``datasets.load_dataset``; return ``(split, record)`` pairs of all (or one) split.

    Raises:
        DataLoadError: when the Hub cannot be reached (or the name is wrong), with a hint to pass a local path.
    """
    try:
        loaded = datasets.load_dataset(name, config, split=split, **kwargs)
    except Exception as e:  # noqa: BLE001 - any failure here is reported the same way
        hint = f", e.g. {example_path}" if example_path else ""
        raise DataLoadError(
            f"could not load {name!r}{f' (config {config!r})' if config else ''} from the Hub "
            f"(no network?); pass a local path{hint} (trl-codefeedback evaluate: --data-path), or set "
            f"{ENV_DATA_DIR} to the benchmark data folder (the one holding "
            + ", ".join(f"{d}/" for d in DATA_SUBDIRS) + f"). Cause: {type(e).__name__}: {e}"
        ) from e
    if isinstance(loaded, datasets.Dataset):
        return [(split or "", dict(r)) for r in loaded]
    return [(s, dict(r)) for s in loaded for r in loaded[s]]
