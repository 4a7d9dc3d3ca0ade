"""Evaluate a model (or a LoRA adapter folder) on a code benchmark: generate, execute, score.

Example:
    >>> from trl_codefeedback.evaluation import EvalConfig, evaluate_model
    >>> results = evaluate_model(EvalConfig(model="Qwen/Qwen2.5-Coder-0.5B", dataset="humaneval",
    ...                                     n_samples=10, temperature=0.8))   # doctest: +SKIP
    >>> results["pass@1"], results["compile_rate"], results["execution_rate"]  # doctest: +SKIP

Scoring goes through :class:`~trl_codefeedback.feedback.UnitTestReward`, so code
extraction, ``code_prefix`` handling and truncation are exactly those of training.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from trl_codefeedback.execution import Executor, Feedback, Limits, Status

BENCHMARKS = ("mbpp", "humaneval", "apps", "mbxp-python", "mbjp", "mathqa-java")


@dataclass
class EvalConfig:
    """What to evaluate and how. Every field is a CLI flag of ``trl-codefeedback evaluate``."""

    model: str = field(metadata={"help": "model name on the Hub, a local model folder, or a LoRA adapter folder"})
    dataset: str = field(metadata={"help": f"benchmark: one of {', '.join(BENCHMARKS)}"})
    split: str | None = field(default=None, metadata={"help": "split (default: the benchmark's test split)"})
    data_path: str | None = field(default=None, metadata={"help": "local file/folder of the benchmark (default: shared data dir, else the Hub)"})
    max_problems: int | None = field(default=None, metadata={"help": "evaluate only the first N problems"})
    n_samples: int = field(default=1, metadata={"help": "completions per problem (k of pass@k up to this)"})
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature; 0 = greedy (only with n_samples=1)"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling"})
    max_new_tokens: int = field(default=512, metadata={"help": "generation length limit (completions that hit it are 'truncated')"})
    batch_size: int = field(default=8, metadata={"help": "prompts per generation batch"})
    chat: bool = field(default=False, metadata={"help": "use chat prompts with the tokenizer's chat template"})
    ks: tuple[int, ...] = field(default=(1, 10, 100), metadata={"help": "k values of pass@k (those <= n_samples are reported)"})
    workers: int | None = field(default=None, metadata={"help": "executor workers (default: all cores)"})
    test_timeout_s: float = field(default=3.0, metadata={"help": "time limit per test"})
    device: str | None = field(default=None, metadata={"help": "torch device (default: cuda if available, else cpu)"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    output_dir: str | None = field(default=None, metadata={"help": "write results.json and samples.jsonl here"})

    def __post_init__(self) -> None:
        check_model_reference(self.model)
        if self.dataset not in BENCHMARKS:
            raise ValueError(f"unknown dataset {self.dataset!r}; expected one of {list(BENCHMARKS)}")
        if self.n_samples < 1:
            raise ValueError("n_samples must be >= 1")
        if self.n_samples > 1 and self.temperature <= 0:
            raise ValueError("n_samples > 1 needs sampling: set temperature > 0")


def check_model_reference(model: str) -> None:
    """Raise ``ValueError`` when ``model`` is neither an existing local folder nor a valid Hub model name.

    Without this, a mistyped local path reaches the Hub client and fails with its
    "Repo id must use alphanumeric chars" message.

    Example:
        >>> check_model_reference("Qwen/Qwen2.5-Coder-0.5B")   # a Hub name: checked when loaded
        >>> check_model_reference("./no-such-model")
        Traceback (most recent call last):
        ...
        ValueError: model path './no-such-model' does not exist (a local model or LoRA adapter folder, or a Hub name such as 'Qwen/Qwen2.5-Coder-0.5B')
    """
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"model path {model!r} is a file; give the folder that holds config.json (or adapter_config.json)")
        return
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model)
    except HFValidationError:
        raise ValueError(
            f"model path {model!r} does not exist (a local model or LoRA adapter folder, or a Hub name such as "
            f"'Qwen/Qwen2.5-Coder-0.5B')"
        ) from None


def load_benchmark(name: str, split: str | None = None, path: str | None = None, max_problems: int | None = None, chat: bool = False):
    """The benchmark's rows in the data contract (prompt, tests, code_prefix, task_id, language, ...)."""
    from trl_codefeedback import data

    loaders: dict[str, Callable[[], Any]] = {
        "mbpp": lambda: data.load_mbpp(path, split=split or "test", conversational=chat),
        "humaneval": lambda: data.load_humaneval(path, conversational=chat),
        "mbxp-python": lambda: data.load_mbxp_python(path, conversational=chat),
        "apps": lambda: data.load_apps(path, split=split or "test", conversational=chat),
        "mbjp": lambda: data.load_mbjp(path, conversational=chat),
        "mathqa-java": lambda: data.load_mathqa_java(path, conversational=chat),
    }
    ds = loaders[name]()
    if max_problems is not None:
        ds = ds.select(range(min(max_problems, len(ds))))
    return ds


def load_model_and_tokenizer(model: str, device: str | None = None):
    """Load a causal LM, or a PEFT adapter folder on top of its base model, with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    path = Path(model)
    if (path / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        policy = AutoPeftModelForCausalLM.from_pretrained(model)
        base = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
        tok_source = model if (path / "tokenizer_config.json").is_file() else base
    else:
        policy = AutoModelForCausalLM.from_pretrained(model)
        tok_source = model
    tokenizer = AutoTokenizer.from_pretrained(tok_source)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return policy.to(device).eval(), tokenizer


def _prompt_text(prompt: Any, tokenizer) -> str:
    if isinstance(prompt, list):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return prompt


def generate(model, tokenizer, prompts: list[Any], cfg: EvalConfig, progress: bool = True) -> tuple[list[list[str]], list[list[bool]]]:
    """``n_samples`` completions per prompt, and whether each hit ``max_new_tokens`` without EOS."""
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(cfg.seed)
    texts = [_prompt_text(p, tokenizer) for p in prompts]
    eos_ids = set(tokenizer.all_special_ids) if tokenizer.eos_token_id is None else {tokenizer.eos_token_id}
    completions: list[list[str]] = [[] for _ in prompts]
    truncated: list[list[bool]] = [[] for _ in prompts]
    sampling = cfg.temperature > 0
    bar = tqdm(total=len(prompts) * cfg.n_samples, desc="generating", unit="sample", disable=not progress)
    for start in range(0, len(texts), cfg.batch_size):
        batch = texts[start : start + cfg.batch_size]
        enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=cfg.max_new_tokens,
                do_sample=sampling,
                temperature=cfg.temperature if sampling else None,
                top_p=cfg.top_p if sampling else None,
                num_return_sequences=cfg.n_samples,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = out[:, enc["input_ids"].shape[1] :]
        for j, ids in enumerate(new.tolist()):
            i = start + j // cfg.n_samples
            ended = [k for k, t in enumerate(ids) if t in eos_ids]
            cut = ids[: ended[0]] if ended else ids
            completions[i].append(tokenizer.decode(cut, skip_special_tokens=True))
            truncated[i].append(not ended and len(ids) >= cfg.max_new_tokens)
        bar.update(len(batch) * cfg.n_samples)
    bar.close()
    return completions, truncated


def score(rows, completions: list[list[str]], truncated: list[list[bool]], executor: Executor, limits: Limits) -> list[list[Feedback]]:
    """Feedback for every completion, through the training reward's code path."""
    from trl_codefeedback.feedback import UnitTestReward

    flat_rows = [(i, r) for i, r in enumerate(rows) for _ in completions[i]]
    if not flat_rows:
        return [[] for _ in rows]
    languages = sorted({r["language"] for _, r in flat_rows})
    feedbacks: list[list[Feedback]] = [[] for _ in rows]
    for language in languages:
        idx = [k for k, (_, r) in enumerate(flat_rows) if r["language"] == language]
        comps = [c for i in range(len(rows)) for c in completions[i]]
        truncs = [t for i in range(len(rows)) for t in truncated[i]]
        reward = UnitTestReward(language=language, executor=executor, limits=limits)
        reward(
            prompts=[flat_rows[k][1]["prompt"] for k in idx],
            completions=[comps[k] for k in idx],
            tests=[flat_rows[k][1]["tests"] for k in idx],
            code_prefix=[flat_rows[k][1].get("code_prefix", "") for k in idx],
            truncated=[truncs[k] for k in idx],
        )
        by_k = dict(zip(idx, reward.last_feedback))
        for k, (i, _) in enumerate(flat_rows):
            if k in by_k:
                feedbacks[i].append(by_k[k])
    return feedbacks


def evaluate_model(cfg: EvalConfig, progress: bool = True) -> dict[str, Any]:
    """Generate, execute and summarise; writes results.json / samples.jsonl when ``output_dir`` is set."""
    from trl_codefeedback.metrics import summarize

    t0 = time.perf_counter()
    rows = list(load_benchmark(cfg.dataset, cfg.split, cfg.data_path, cfg.max_problems, cfg.chat))
    model, tokenizer = load_model_and_tokenizer(cfg.model, cfg.device)
    completions, truncated = generate(model, tokenizer, [r["prompt"] for r in rows], cfg, progress=progress)
    t_gen = time.perf_counter() - t0
    limits = Limits(test_timeout_s=cfg.test_timeout_s, program_timeout_s=max(10.0, cfg.test_timeout_s))
    with Executor(workers=cfg.workers, limits=limits) as executor:
        feedbacks = score(rows, completions, truncated, executor, limits)
    summary = summarize({r["task_id"]: fbs for r, fbs in zip(rows, feedbacks)}, ks=[k for k in cfg.ks if k <= cfg.n_samples])
    results = {
        "model": cfg.model,
        "dataset": cfg.dataset,
        **{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()},
        "generation_seconds": round(t_gen, 2),
        "total_seconds": round(time.perf_counter() - t0, 2),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
    }
    if cfg.output_dir:
        out = Path(cfg.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))
        with open(out / "samples.jsonl", "w") as f:
            for r, comps, truncs, fbs in zip(rows, completions, truncated, feedbacks):
                for c, t, fb in zip(comps, truncs, fbs):
                    f.write(json.dumps({"task_id": r["task_id"], "completion": c, "truncated": t, **fb.to_dict()}) + "\n")
    return results


def format_results(results: dict[str, Any]) -> str:
    """A short human-readable table of the results."""
    lines = [f"{results['dataset']}: {results['num_tasks']} problems, {results['num_programs']} samples ({results['model']})"]
    for k, v in results.items():
        if k.startswith("pass@"):
            lines.append(f"  {k:<16} {v:.4f}")
    for k in ("compile_rate", "execution_rate"):
        v = results.get(k)
        lines.append(f"  {k:<16} {'n/a' if v is None else f'{v:.4f}'}")
    counts = {s: n for s, n in results["status_counts"].items() if n}
    lines.append("  statuses         " + ", ".join(f"{s}: {n}" for s, n in counts.items()))
    if results["num_harness_errors"]:
        lines.append(f"  harness errors   {results['num_harness_errors']} (left out of every metric)")
    return "\n".join(lines)


__all__ = ["BENCHMARKS", "EvalConfig", "evaluate_model", "format_results", "generate", "load_benchmark", "load_model_and_tokenizer", "score", "Status"]
