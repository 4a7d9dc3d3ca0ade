"""`trl-codefeedback evaluate` on a tiny local model and a few rows of each local dataset."""

import json

import pytest

from trl_codefeedback.cli import main
from trl_codefeedback.evaluation import BENCHMARKS, EvalConfig, load_benchmark
from trl_codefeedback.execution import Executor, Feedback, Program

pytestmark = pytest.mark.slow


LOCAL_SPLIT = {"apps": "train"}  # the shared data holds APPS train problems only


def _available(name):
    try:
        load_benchmark(name, split=LOCAL_SPLIT.get(name), max_problems=1)
        return True
    except AttributeError:  # loader not in this version of the package
        return False


@pytest.mark.parametrize("dataset", BENCHMARKS)
def test_evaluate_cli_results_match_executor_verdicts(dataset, tiny_model_path, tmp_path):
    if not _available(dataset):
        pytest.fail(f"no loader for {dataset}")
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", str(tiny_model_path), "--dataset", dataset, "--max-problems", "3", "--n-samples", "2",
            "--temperature", "1.0", "--max-new-tokens", "24", "--ks", "1", "2", "--output-dir", str(out), "-q"]
    if dataset in LOCAL_SPLIT:
        argv += ["--split", LOCAL_SPLIT[dataset]]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert results["num_tasks"] == 3 and results["num_programs"] == 6 == len(samples)
    assert set(results) >= {"pass@1", "pass@2", "compile_rate", "execution_rate", "status_counts"}
    # The reported numbers are exactly those of the per-sample verdicts...
    fbs = [Feedback.from_dict(s) for s in samples]
    counts = {s: sum(fb.status.value == s for fb in fbs) for s in results["status_counts"]}
    assert counts == results["status_counts"]
    scored = [fb for fb in fbs if fb.status.value != "harness_error"]
    if scored:
        assert results["compile_rate"] == pytest.approx(sum(fb.compiled for fb in scored) / len(scored))
        assert results["execution_rate"] == pytest.approx(sum(fb.executed for fb in scored) / len(scored))
    # ...and those verdicts are the executor's on the same programs, rebuilt independently.
    rows = {r["task_id"]: r for r in load_benchmark(dataset, split=LOCAL_SPLIT.get(dataset), max_problems=3)}
    from trl_codefeedback.feedback import extract_code

    programs, expected = [], []
    for s, fb in zip(samples, fbs):
        row = rows[s["task_id"]]
        code = extract_code(s["completion"], language=row["language"], continuation=bool(row["code_prefix"])).code
        if not code.strip():
            continue
        programs.append(Program(row["code_prefix"] + code, row["tests"], language=row["language"], truncated=s["truncated"]))
        expected.append(fb.status)
    with Executor(workers=2) as ex:
        assert [fb.status for fb in ex.run(programs)] == expected


def test_reference_solutions_score_full_marks_through_the_scorer(tmp_path):
    """The scoring path (same as training's reward) gives pass@1 = 1 for references."""
    from trl_codefeedback.evaluation import score
    from trl_codefeedback.execution import Limits
    from trl_codefeedback.metrics import summarize

    rows = list(load_benchmark("humaneval", max_problems=5))
    completions = [[r["reference"][len(r["code_prefix"]):]] for r in rows]
    with Executor(workers=2) as ex:
        fbs = score(rows, completions, [[False]] * len(rows), ex, Limits())
    assert summarize({r["task_id"]: f for r, f in zip(rows, fbs)}, ks=(1,))["pass@1"] == 1.0


def test_bad_config_is_reported():
    with pytest.raises(ValueError, match="unknown dataset"):
        EvalConfig(model="m", dataset="nope")
    with pytest.raises(ValueError, match="temperature"):
        EvalConfig(model="m", dataset="mbpp", n_samples=4)


def test_lora_adapter_folder_loads_and_generates(tiny_model_path, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trl_codefeedback.evaluation import load_model_and_tokenizer

    base = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(tiny_model_path).save_pretrained(adapter)
    model, tok = load_model_and_tokenizer(str(adapter), device="cpu")
    out = model.generate(**tok(["def f(x):"], return_tensors="pt"), max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > 0
