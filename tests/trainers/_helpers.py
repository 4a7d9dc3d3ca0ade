"""Shared bits of the trainer tests: a small code dataset and the trainer config."""

from __future__ import annotations

import json

ASSERTS = [
    ("Write a function add(a, b) that returns a + b.\n", ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]),
    ("Write a function double(x) that returns 2 * x.\n", ["assert double(2) == 4", "assert double(0) == 0"]),
    ("Write a function neg(x) that returns -x.\n", ["assert neg(1) == -1"]),
    ("Write a function first(xs) returning xs[0].\n", ["assert first([3, 4]) == 3"]),
]


def code_rows(n: int = 4, conversational: bool = False) -> list[dict]:
    rows = []
    for i in range(n):
        prompt, asserts = ASSERTS[i % len(ASSERTS)]
        rows.append(
            {
                "prompt": [{"role": "user", "content": prompt}] if conversational else prompt,
                "tests": json.dumps({"kind": "asserts", "asserts": asserts}),
            }
        )
    return rows


def length_reward(completions, **kwargs):
    """Guaranteed spread (a random tiny model fails every test the same way)."""
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [-len(t) / 100.0 for t in texts]


def config_kwargs(out: str, **overrides) -> dict:
    kw = dict(
        output_dir=str(out),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=32,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        fp16=False,
        seed=0,
        dataloader_num_workers=0,
    )
    kw.update(overrides)
    return kw
