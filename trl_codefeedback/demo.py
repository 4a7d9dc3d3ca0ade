"""`trl-codefeedback demo`: watch a tiny model learn from unit-test feedback, on CPU, in minutes.

The built-in task family: one-line Python functions described in words,

    def f(x):
        \"\"\"Return x plus 3.\"\"\"
        return

completed by ``x + 3`` (operations: plus, minus, times, modulo, the larger of, the
smaller of; constants 1-9). Some (operation, constant) pairs are held out: every
operation and every constant is seen in training, the pair never is.

The SFT warm-up data carries a habit, as real base models do: in ``buggy_fraction`` of
the examples (60%) the code uses the wrong parameter name (``n + 3``), which raises
``NameError`` when run. After the warm-up the model writes the right operation and
constant but, greedily, the wrong name. RL with unit-test feedback (every reward comes
from really running the completion against its tests in the sandbox; RLTF's
fine-grained penalty lands on the error line's tokens) must remove the habit on the
training tasks, and the held-out tasks show whether the fix generalises.

Steps: build a tokenizer and a randomly initialised Qwen2-style model (~150k
parameters); SFT warm-up; held-out pass@1 (greedy); RL with our token-level trainer;
held-out pass@1 again; the reward curve as a PNG.

Example:
    >>> from trl_codefeedback.demo import DemoConfig, run_demo
    >>> summary = run_demo(DemoConfig(output_dir="demo-out", seed=0))   # doctest: +SKIP
    >>> summary["heldout_pass@1_after_rl"] > summary["heldout_pass@1_before_rl"]   # doctest: +SKIP
"""

from __future__ import annotations

import json
import random
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OPERATIONS = {
    # words: (template of the code, python function)
    "plus": ("x + {k}", lambda x, k: x + k),
    "minus": ("x - {k}", lambda x, k: x - k),
    "times": ("x * {k}", lambda x, k: x * k),
    "modulo": ("x % {k}", lambda x, k: x % k),
    "the larger of x and": ("max(x, {k})", lambda x, k: max(x, k)),
    "the smaller of x and": ("min(x, {k})", lambda x, k: min(x, k)),
}
BUGGY_NAME = "n"  # the habit: the wrong parameter name
CONSTANTS = range(1, 10)
TEST_INPUTS = (-7, 0, 2, 5, 13)
EOS = "<|endoftext|>"


@dataclass
class DemoConfig:
    """Settings of the demo. The defaults finish in a few minutes on 2 CPU cores."""

    output_dir: str | None = field(default=None, metadata={"help": "where the model, plot and summary go (default: a new temporary folder)"})
    seed: int = field(default=0, metadata={"help": "seed for the task split, the model and training"})
    heldout_per_operation: int = field(default=2, metadata={"help": "constants held out per operation"})
    hidden_size: int = field(default=64, metadata={"help": "model width"})
    num_layers: int = field(default=2, metadata={"help": "transformer layers"})
    buggy_fraction: float = field(default=0.6, metadata={"help": "share of SFT examples with the habitual bug (wrong parameter name)"})
    sft_copies: int = field(default=10, metadata={"help": "SFT examples per training task"})
    sft_steps: int = field(default=250, metadata={"help": "SFT warm-up steps"})
    sft_learning_rate: float = field(default=3e-3, metadata={"help": "SFT learning rate"})
    rl_steps: int = field(default=100, metadata={"help": "RL steps"})
    rl_learning_rate: float = field(default=1e-3, metadata={"help": "RL learning rate"})
    num_generations: int = field(default=8, metadata={"help": "completions per prompt (GRPO group size)"})
    prompts_per_step: int = field(default=4, metadata={"help": "prompts per RL step"})
    max_completion_length: int = field(default=12, metadata={"help": "generation length limit"})
    reward_mode: str = field(default="adaptive", metadata={"help": "RLTF reward: coarse or adaptive"})
    fine_grained: bool = field(default=True, metadata={"help": "token-level penalties at error lines (our trainer)"})
    log_every: int = field(default=5, metadata={"help": "log the reward every N steps"})


# --------------------------------------------------------------------------- tasks


def task_row(words: str, k: int) -> dict[str, Any]:
    template, fn = OPERATIONS[words]
    phrase = f"x {words} {k}" if words in ("plus", "minus", "times", "modulo") else f"{words} {k}"
    prompt = f'def f(x):\n    """Return {phrase}."""\n    return'
    asserts = [f"assert f({x}) == {fn(x, k)}" for x in TEST_INPUTS]
    return {
        "prompt": prompt,
        "completion": " " + template.format(k=k) + "\n",
        "tests": json.dumps({"kind": "asserts", "asserts": asserts}),
        "code_prefix": prompt,
        "task_id": f"demo/{words.replace(' ', '_')}/{k}",
        "language": "python",
    }


def split_tasks(seed: int, heldout_per_operation: int = 2) -> tuple[list[dict], list[dict]]:
    """Train and held-out tasks: each operation holds out different constants."""
    rng = random.Random(seed)
    train, heldout = [], []
    constants = list(CONSTANTS)
    for i, words in enumerate(OPERATIONS):
        rotated = constants[i * heldout_per_operation % len(constants) :] + constants[: i * heldout_per_operation % len(constants)]
        held = set(rotated[:heldout_per_operation])
        for k in constants:
            (heldout if k in held else train).append(task_row(words, k))
    rng.shuffle(train)
    return train, heldout


# --------------------------------------------------------------------------- model


def build_tiny_model(path: Path, texts: list[str], hidden_size: int, num_layers: int, seed: int):
    """A byte-level BPE tokenizer trained on ``texts`` and a random Qwen2 model, saved to ``path``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    path.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, pad_token=EOS)
    tokenizer.save_pretrained(path)
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=128, tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    return model, tokenizer


# --------------------------------------------------------------------------- evaluation


def heldout_pass_at_1(model, tokenizer, rows: list[dict], max_new_tokens: int, executor) -> tuple[float, list[str]]:
    """Greedy pass@1 on ``rows``, scored by really running the completions."""
    import torch

    from trl_codefeedback.feedback import UnitTestReward

    tokenizer.padding_side = "left"
    enc = tokenizer([r["prompt"] for r in rows], return_tensors="pt", padding=True)
    model.eval()
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    completions = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    reward = UnitTestReward(executor=executor)
    reward(prompts=[r["prompt"] for r in rows], completions=completions, tests=[r["tests"] for r in rows], code_prefix=[r["code_prefix"] for r in rows])
    passed = [fb.passed for fb in reward.last_feedback]
    return sum(passed) / len(passed), completions


# --------------------------------------------------------------------------- training


def _quiet_args(**kw):
    return dict(report_to="none", use_cpu=True, bf16=False, fp16=False, disable_tqdm=True, save_strategy="no", logging_steps=kw.pop("logging_steps", 5), **kw)


def _quiet(trainer) -> None:
    """No per-step log dicts on stdout (the history stays in ``trainer.state.log_history``)."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)


def sft_warmup(model, tokenizer, rows: list[dict], cfg: DemoConfig, work: Path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rng = random.Random(cfg.seed)
    examples = []
    for r in rows:
        for _ in range(cfg.sft_copies):
            completion = r["completion"]
            if rng.random() < cfg.buggy_fraction:
                completion = re.sub(r"\bx\b", BUGGY_NAME, completion)
            examples.append({"prompt": r["prompt"], "completion": completion + EOS})
    rng.shuffle(examples)
    ds = Dataset.from_list(examples)
    args = SFTConfig(
        output_dir=str(work / "sft"), max_steps=cfg.sft_steps, per_device_train_batch_size=16,
        learning_rate=cfg.sft_learning_rate, lr_scheduler_type="constant", seed=cfg.seed, **_quiet_args(),
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    _quiet(trainer)
    trainer.train()
    return trainer.model


def _trainer_classes(cfg: DemoConfig):
    if cfg.fine_grained:
        try:
            from trl_codefeedback.trainers import CodeFeedbackGRPOConfig, CodeFeedbackGRPOTrainer

            return CodeFeedbackGRPOConfig, CodeFeedbackGRPOTrainer
        except ImportError:
            pass
    from trl import GRPOConfig, GRPOTrainer

    return GRPOConfig, GRPOTrainer


def rl_train(model, tokenizer, rows: list[dict], cfg: DemoConfig, work: Path, executor) -> list[dict]:
    from datasets import Dataset

    from trl_codefeedback.feedback import UnitTestReward

    config_cls, trainer_cls = _trainer_classes(cfg)
    ds = Dataset.from_list([{k: r[k] for k in ("prompt", "tests", "code_prefix", "task_id", "language")} for r in rows])
    reward = UnitTestReward(mode=cfg.reward_mode, executor=executor)
    args = config_cls(
        output_dir=str(work / "rl"), max_steps=cfg.rl_steps,
        per_device_train_batch_size=cfg.num_generations * cfg.prompts_per_step, num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length, temperature=1.0, learning_rate=cfg.rl_learning_rate,
        lr_scheduler_type="constant", beta=0.0, seed=cfg.seed, **_quiet_args(logging_steps=cfg.log_every),
    )
    tokenizer.padding_side = "left"
    trainer = trainer_cls(model=model, reward_funcs=[reward], args=args, train_dataset=ds, processing_class=tokenizer)
    _quiet(trainer)
    trainer.train()
    return [h for h in trainer.state.log_history if "reward" in h]


def plot_rewards(history: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, [h["reward"] for h in history], marker="o", label="mean reward")
    key = next((k for k in history[0] if k.endswith("/passed")), None) if history else None
    if key:
        ax2 = ax.twinx()
        ax2.plot(steps, [h.get(key, 0.0) for h in history], color="tab:green", linestyle="--", label="fraction passing")
        ax2.set_ylabel("fraction of completions passing")
        ax2.set_ylim(0, 1)
        lines = ax.get_lines() + ax2.get_lines()
        ax.legend(lines, [line.get_label() for line in lines], loc="lower right")
    ax.set_xlabel("RL step")
    ax.set_ylabel("RLTF reward")
    ax.set_title("trl-codefeedback demo: reward during RL")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_demo(cfg: DemoConfig, echo=print) -> dict[str, Any]:
    """Run the whole demo and return its summary (also written to ``summary.json``).

    Only ``model/``, ``summary.json`` and ``reward_curve.png`` are written to ``cfg.output_dir``
    (default: a new temporary folder); trainer folders live in a scratch folder removed at the end.
    """
    t0 = time.perf_counter()
    out = Path(cfg.output_dir) if cfg.output_dir else Path(tempfile.mkdtemp(prefix="codefeedback-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    echo(f"[demo] outputs go to {out}/")
    with tempfile.TemporaryDirectory(prefix="codefeedback-demo-work-") as work:  # trainer folders, initial model
        summary = _run(cfg, out, Path(work), echo)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    curve = " ".join(f"{h['reward']:+.2f}" for h in summary["reward_curve"])
    echo(f"[demo] reward every {cfg.log_every} steps: {curve}")
    plot = (out / "reward_curve.png").is_file()
    echo(f"[demo] outputs in {out}/: model/, summary.json" + (", reward_curve.png" if plot else " (pip install matplotlib for reward_curve.png)"))
    echo(f"[demo] done in {summary['seconds']:.0f} s")
    return summary


def _run(cfg: DemoConfig, out: Path, work: Path, echo) -> dict[str, Any]:
    import torch
    from transformers import set_seed

    from trl_codefeedback.execution import Executor

    set_seed(cfg.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    train, heldout = split_tasks(cfg.seed, cfg.heldout_per_operation)
    echo(f"[demo] {len(train)} training tasks, {len(heldout)} held-out tasks (unseen operation/constant pairs)")
    model, tokenizer = build_tiny_model(work / "init", [r["prompt"] + r["completion"] for r in train + heldout], cfg.hidden_size, cfg.num_layers, cfg.seed)
    echo(f"[demo] tiny Qwen2 model: {sum(p.numel() for p in model.parameters()) / 1e3:.0f}k parameters")
    with Executor(workers=None) as executor:
        p_init, _ = heldout_pass_at_1(model, tokenizer, heldout, cfg.max_completion_length, executor)
        model = sft_warmup(model, tokenizer, train, cfg, work)
        p_before, before = heldout_pass_at_1(model, tokenizer, heldout, cfg.max_completion_length, executor)
        echo(f"[demo] held-out pass@1: random init {p_init:.2f}, after SFT warm-up {p_before:.2f}")
        history = rl_train(model, tokenizer, train, cfg, work, executor)
        p_after, after = heldout_pass_at_1(model, tokenizer, heldout, cfg.max_completion_length, executor)
    echo(f"[demo] held-out pass@1 after RL with unit-test feedback: {p_after:.2f} (before RL {p_before:.2f})")
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    plot_rewards(history, out / "reward_curve.png")
    return {
        "seed": cfg.seed,
        "heldout_tasks": len(heldout),
        "heldout_pass@1_init": p_init,
        "heldout_pass@1_before_rl": p_before,
        "heldout_pass@1_after_rl": p_after,
        "reward_curve": [{"step": h["step"], "reward": h["reward"]} for h in history],
        "samples": [{"task_id": r["task_id"], "before": b, "after": a} for r, b, a in zip(heldout, before, after)],
        "config": {**asdict(cfg), "output_dir": str(out)},
        "trainer": _trainer_classes(cfg)[1].__name__,
    }
