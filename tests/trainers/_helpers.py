"""Shared bits of the trainer tests: a small code dataset and the trainer config."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

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


def run_two_processes(script_template: str, tmp_path: Path, *args: str) -> list[dict]:
    """Run a training script on 2 CPU processes (gloo) and return what each rank wrote to ``checks_<rank>.json``.

    The script gets ``{helpers}`` (this folder) formatted in and ``argv[2] = tmp_path``; ``args`` are passed as given.
    """
    script = tmp_path / "train2.py"
    script.write_text(script_template.format(helpers=str(Path(__file__).parent)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # `accelerate launch --cpu --num_processes 2` falls back to mpirun (absent here) and silently runs ONE
    # process; torchrun through --multi_gpu with ACCELERATE_USE_CPU=1 gives MULTI_CPU (gloo) with 2 processes.
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", ACCELERATE_USE_CPU="1")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
           str(script), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.loads((tmp_path / f"checks_{r}.json").read_text()) for r in (0, 1)]
