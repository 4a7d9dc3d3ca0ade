"""MBXP-Python (Athiwaratkun et al. 2022): MBPP re-cast as function completion, tests of kind ``check``.

Example:
    >>> ds = load_mbxp_python("/work/shared/data/mxeval/mbxp/mbpp_release_v1.jsonl")  # doctest: +SKIP
    >>> len(ds), ds[0]["task_id"]                                                     # doctest: +SKIP
    (974, 'MBPP/1')
"""

from __future__ import annotations

import datasets

from trl_codefeedback.data._common import DataLoadError, default_file, iter_jsonl, require_path, tasks_to_dataset
from trl_codefeedback.data.completion import completion_record_to_task

LOCAL_FILE = ("mxeval", "mbxp", "mbpp_release_v1.jsonl")


def load_mbxp_python(path: str | None = None, conversational: bool = False) -> datasets.Dataset:
    """Load MBXP's Python file (``mbpp_release_v1.jsonl``) as rows like :func:`load_humaneval`'s.

    Args:
        path: the JSONL file (or its folder). ``None``: the file in :func:`default_data_dir`.
        conversational: chat prompt; ``code_prefix`` is then the prompt's import lines only.

    Records whose ``language`` is not ``"python"`` are rejected (that would be another MBXP file).
    """
    if path is None:
        local = default_file(*LOCAL_FILE)
        if local is None:
            raise FileNotFoundError(
                "MBXP-Python: no path given and no data folder found; pass the path of mbpp_release_v1.jsonl "
                "(from github.com/amazon-science/mxeval, data/mbxp/) or set TRL_CODEFEEDBACK_DATA"
            )
        path = str(local)
    p = require_path(path, "MBXP-Python")
    if p.is_dir():
        p = require_path(p / LOCAL_FILE[-1], "MBXP-Python")
    tasks = []
    for lineno, r in iter_jsonl(p):
        where = f"{p}:{lineno}"
        if r.get("language", "python") != "python":
            raise DataLoadError(f"{where}: language is {r.get('language')!r}, not 'python' "
                                "(load_mbxp_python reads only the Python file)")
        tasks.append(completion_record_to_task(r, where, conversational))
    return tasks_to_dataset(tasks, str(p))
