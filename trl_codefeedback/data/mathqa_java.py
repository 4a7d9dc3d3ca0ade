"""MathQA-Java (Multilingual MathQA, Athiwaratkun et al. 2022): word problems as ``double problem()``.

Each prompt is a ``class Problem`` with the question in a comment and the signature
``public static double problem() {``; the test compares the result with the answer (one check,
tolerance 1e-7). No record has a canonical solution, so ``reference`` is ``""``.

Example:
    >>> ds = load_mathqa_java("/work/shared/data/mxeval/multilingual_mathqa/mathqa-test-java_v1.jsonl")  # doctest: +SKIP
    >>> len(ds), ds[0]["entry_point"]                                                                   # doctest: +SKIP
    (1883, 'problem')
"""

from __future__ import annotations

import datasets

from trl_codefeedback.data.mbjp import load_java_records

HUB_NAME = "mxeval/mathqa-x"  # config "java", split "test"
LOCAL_FILE = ("mxeval", "multilingual_mathqa", "mathqa-test-java_v1.jsonl")


def load_mathqa_java(path_or_name: str | None = None, conversational: bool = False) -> datasets.Dataset:
    """Load MathQA-Java like :func:`~trl_codefeedback.data.mbjp.load_mbjp` (tests of kind ``java_main``).

    Args:
        path_or_name: ``mathqa-test-java_v1.jsonl`` (or its folder), or the Hub name ``"mxeval/mathqa-x"``
            (config ``java``). ``None``: the file in :func:`default_data_dir`, else the Hub.
        conversational: chat prompt; ``code_prefix`` is then the prompt's import lines.
    """
    return load_java_records(path_or_name, LOCAL_FILE, HUB_NAME, "MathQA-Java", conversational)
