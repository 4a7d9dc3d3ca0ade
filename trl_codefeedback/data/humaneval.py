"""OpenAI HumanEval (Chen et al. 2021): 164 function-completion tasks, tests of kind ``check``.

Example:
    >>> ds = load_humaneval("/work/shared/data/human-eval/HumanEval.jsonl.gz")  # doctest: +SKIP
    >>> len(ds), ds[0]["entry_point"]                                          # doctest: +SKIP
    (164, 'has_close_elements')
"""

from __future__ import annotations

import datasets

from trl_codefeedback.data._common import (
    default_file,
    iter_jsonl,
    load_hub_records,
    looks_like_path,
    require_path,
    tasks_to_dataset,
)
from trl_codefeedback.data.completion import completion_record_to_task

HUB_NAMES = ("openai_humaneval", "openai/openai_humaneval")
LOCAL_FILE = ("human-eval", "HumanEval.jsonl.gz")


def load_humaneval(path_or_name: str | None = None, conversational: bool = False) -> datasets.Dataset:
    """Load HumanEval as rows of ``prompt``, ``tests`` (kind check), ``reference``, ``code_prefix``, ``entry_point``.

    Args:
        path_or_name: ``HumanEval.jsonl(.gz)`` (or its folder), or a Hub name (``"openai_humaneval"``,
            ``"openai/openai_humaneval"``). ``None``: the file in :func:`default_data_dir`, else the Hub.
        conversational: chat prompt; ``code_prefix`` is then only the prompt's import lines
            (the model writes the whole function), otherwise it is the prompt itself.
    """
    if path_or_name is None:
        local = default_file(*LOCAL_FILE)
        path_or_name = str(local) if local is not None else "openai/openai_humaneval"
    if path_or_name in HUB_NAMES or not looks_like_path(path_or_name):
        pairs = load_hub_records(path_or_name, split="test", example_path="shared/data/human-eval/HumanEval.jsonl.gz")
        records = [(f"{path_or_name} task {r.get('task_id')}", r) for _, r in pairs]
        source = path_or_name
    else:
        path = require_path(path_or_name, "HumanEval")
        if path.is_dir():
            path = require_path(path / LOCAL_FILE[1], "HumanEval")
        records = [(f"{path}:{lineno}", r) for lineno, r in iter_jsonl(path)]
        source = str(path)
    tasks = [completion_record_to_task(r, where, conversational) for where, r in records]
    return tasks_to_dataset(tasks, source)
