"""MBJP (MBXP's Java split, Athiwaratkun et al. 2022): MBPP re-cast as Java method completion.

Each record's ``prompt`` is a Java file head (imports, ``class X {``, a doc comment, the method
signature); ``canonical_solution`` completes the method and closes the class; ``test`` is a
``class Main`` whose ``main`` throws on the first failed check (tests of kind ``java_main``,
which the Java backend splits per check). 92 of the 966 v1.2 records have no canonical
solution: their ``reference`` is ``""``.

Example:
    >>> ds = load_mbjp("/work/shared/data/mxeval/mbxp/mbjp_release_v1.2.jsonl")  # doctest: +SKIP
    >>> len(ds), ds[0]["task_id"], ds[0]["language"]                              # doctest: +SKIP
    (966, 'MBJP/1', 'java')
"""

from __future__ import annotations

import re
from typing import Any

import datasets

from trl_codefeedback.data._common import (
    CodeTask,
    DataLoadError,
    default_file,
    iter_jsonl,
    load_hub_records,
    looks_like_path,
    require_fields,
    require_path,
    tasks_to_dataset,
    user_chat,
)

HUB_NAME = "mxeval/mbxp"  # config "java", split "test"
LOCAL_FILE = ("mxeval", "mbxp", "mbjp_release_v1.2.jsonl")
CHAT_INSTRUCTION = ("Complete the following Java code. Write the whole class, including the method "
                    "signature; keep the class and method names.")
_JAVA_IMPORT_RE = re.compile(r"^\s*import\s+(static\s+)?[\w.]+(\.\*)?\s*;\s*$")


def java_import_lines(code: str) -> str:
    """The ``import ...;`` lines of a Java prompt, newline-terminated (``""`` if none).

    >>> java_import_lines("import java.util.*;\\n\\nclass A {\\n")
    'import java.util.*;\\n'
    """
    return "".join(ln.strip() + "\n" for ln in code.splitlines() if _JAVA_IMPORT_RE.match(ln))


def java_record_to_task(record: dict[str, Any], where: str, conversational: bool) -> CodeTask:
    """Convert one MBJP / MathQA-Java record into a :class:`CodeTask` with a ``java_main`` spec.

    Plain prompt: the prompt text, which is also ``code_prefix`` (the model continues it).
    Conversational: an instruction with the prompt in a ```java block; ``code_prefix`` is then
    only the prompt's import lines (the model writes the whole class).
    """
    require_fields(record, {"task_id": str, "prompt": str, "test": str, "entry_point": str}, where)
    if record.get("language", "java") != "java":
        raise DataLoadError(f"{where}: language is {record.get('language')!r}, not 'java'")
    solution = record.get("canonical_solution")
    if solution is not None and not isinstance(solution, str):
        raise DataLoadError(f"{where}: task {record['task_id']}: canonical_solution must be str or null, "
                            f"got {type(solution).__name__}")
    prompt = record["prompt"]
    chat = f"{CHAT_INSTRUCTION}\n\n```java\n{prompt.strip()}\n```\n"
    return CodeTask(
        task_id=record["task_id"],
        prompt=user_chat(chat) if conversational else prompt,
        tests={"kind": "java_main", "test": record["test"]},
        reference=prompt + solution if solution else "",
        code_prefix=java_import_lines(prompt) if conversational else prompt,
        language="java",
        extra={"entry_point": record["entry_point"]},
    )


def load_java_records(path_or_name: str | None, local_file: tuple[str, ...], hub_name: str, what: str,
                      conversational: bool) -> datasets.Dataset:
    """Shared body of :func:`load_mbjp` and :func:`~trl_codefeedback.data.mathqa_java.load_mathqa_java`."""
    if path_or_name is None:
        local = default_file(*local_file)
        path_or_name = str(local) if local is not None else hub_name
    if path_or_name == hub_name or not looks_like_path(path_or_name):
        pairs = load_hub_records(path_or_name, "java", split="test", example_path="shared/data/" + "/".join(local_file))
        records = [(f"{path_or_name} task {r.get('task_id')}", r) for _, r in pairs]
        source = path_or_name
    else:
        path = require_path(path_or_name, what)
        if path.is_dir():
            path = require_path(path / local_file[-1], what)
        records = [(f"{path}:{lineno}", r) for lineno, r in iter_jsonl(path)]
        source = str(path)
    return tasks_to_dataset([java_record_to_task(r, where, conversational) for where, r in records], source)


def load_mbjp(path_or_name: str | None = None, conversational: bool = False) -> datasets.Dataset:
    """Load MBJP as rows of ``prompt``, ``tests`` (kind ``java_main``), ``reference``, ``code_prefix``, ``entry_point``.

    Args:
        path_or_name: ``mbjp_release_v1.2.jsonl`` (or its folder), or the Hub name ``"mxeval/mbxp"``
            (config ``java``). ``None``: the file in :func:`default_data_dir`, else the Hub.
        conversational: chat prompt (see :func:`java_record_to_task`).
    """
    return load_java_records(path_or_name, LOCAL_FILE, HUB_NAME, "MBJP", conversational)
