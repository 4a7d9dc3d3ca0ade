"""Completion-style benchmarks (HumanEval, MBXP): a function header + docstring to complete.

Both share one record shape (``task_id``, ``prompt``, ``canonical_solution``, ``test``
defining ``check(candidate)``, ``entry_point``) and one row conversion, kept here.

Example:
    >>> task = completion_record_to_task(
    ...     {"task_id": "T/0", "prompt": "from typing import List\\n\\ndef f(x: List[int]) -> int:\\n",
    ...      "canonical_solution": "    return 1\\n", "test": "def check(candidate):\\n    assert candidate([]) == 1\\n",
    ...      "entry_point": "f"}, where="demo", conversational=True)
    >>> task.code_prefix
    'from typing import List\\n'
"""

from __future__ import annotations

from typing import Any

from trl_codefeedback.data._common import CodeTask, DataLoadError, import_lines, require_fields, user_chat

CHAT_INSTRUCTION = "Complete the following Python function. Write the whole function, including its signature."


def completion_chat_text(prompt: str) -> str:
    """The user message for a conversational completion-style task."""
    return f"{CHAT_INSTRUCTION}\n\n```python\n{prompt.strip()}\n```\n"


def _prelude(prompt: str) -> dict[str, str]:
    """The prompt as trusted test prelude, when it is valid Python on its own.

    HumanEval's tests call helpers the prompt defines (``poly`` in HumanEval/32, ``encode_cyclic``
    in /38): run from the prompt on the judging side, a program cannot redefine them to pass.
    """
    try:
        compile(prompt, "<prompt>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return {}
    return {"prelude": prompt}


def completion_record_to_task(record: dict[str, Any], where: str, conversational: bool) -> CodeTask:
    """Convert one HumanEval/MBXP-style record to a :class:`CodeTask` with a ``check`` spec.

    Plain prompt: the prompt text itself, which is also ``code_prefix`` (the model continues it).
    Conversational: an instruction with the prompt in a code block; the model writes the whole
    function, so ``code_prefix`` is only the prompt's import lines.
    """
    require_fields(record, {"task_id": str, "prompt": str, "test": str, "entry_point": str}, where)
    solution = record.get("canonical_solution")
    if not isinstance(solution, str):
        raise DataLoadError(f"{where}: task {record['task_id']}: canonical_solution must be str, "
                            f"got {type(solution).__name__}")
    prompt = record["prompt"]
    return CodeTask(
        task_id=record["task_id"],
        prompt=user_chat(completion_chat_text(prompt)) if conversational else prompt,
        tests={"kind": "check", "test": record["test"], "entry_point": record["entry_point"], **_prelude(prompt)},
        reference=prompt + solution,
        code_prefix=import_lines(prompt) if conversational else prompt,
        language="python",
        extra={"entry_point": record["entry_point"]},
    )
