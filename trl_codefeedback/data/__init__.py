"""Benchmark loaders: each returns a ``datasets.Dataset`` in one column contract.

Columns: ``prompt`` (text, or a chat with ``conversational=True``), ``tests`` (test spec as
JSON text, validated with :func:`~trl_codefeedback.execution.specs.parse_test_spec`),
``reference`` (complete reference program), ``code_prefix`` (code put before the completion),
``task_id``, ``language``, plus ``entry_point`` (HumanEval, MBXP, APPS) and APPS's
``difficulty``, ``url``, ``starter_code``. MBJP and MathQA-Java rows have ``language="java"``
and tests of kind ``java_main``.

Example:
    >>> from trl_codefeedback.data import load_humaneval
    >>> ds = load_humaneval()  # doctest: +SKIP  (shared/data file, else the Hub)
"""

from trl_codefeedback.data._common import CodeTask, DataLoadError, default_data_dir, tasks_to_dataset
from trl_codefeedback.data.apps import (
    AppsNoTestsError,
    AppsProblemError,
    AppsSkipWarning,
    apps_row_to_task,
    load_apps,
    load_apps_example_tests,
    read_apps_problem_dir,
)
from trl_codefeedback.data.humaneval import load_humaneval
from trl_codefeedback.data.mbpp import MBPP_SPLITS, load_mbpp
from trl_codefeedback.data.mathqa_java import load_mathqa_java
from trl_codefeedback.data.mbjp import load_mbjp
from trl_codefeedback.data.mbxp import load_mbxp_python

__all__ = [
    "CodeTask",
    "DataLoadError",
    "default_data_dir",
    "tasks_to_dataset",
    "AppsNoTestsError",
    "AppsProblemError",
    "AppsSkipWarning",
    "apps_row_to_task",
    "load_apps",
    "load_apps_example_tests",
    "read_apps_problem_dir",
    "load_humaneval",
    "MBPP_SPLITS",
    "load_mbpp",
    "load_mbxp_python",
    "load_mbjp",
    "load_mathqa_java",
]
