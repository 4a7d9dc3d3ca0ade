"""`trl-codefeedback demo`: watch a tiny model learn from unit-test feedback, on CPU, in minutes.

The task family (:mod:`trl_codefeedback.demo_tasks`, ``loops``): functions of several lines
over a list, described in words ("Return the sum of the squares of the even items of xs."),
each an accumulator x a filter x a transform; held-out tasks are unseen combinations. The
SFT warm-up data carries one habitual bug per accumulator, on one line, the other lines
right (a wrong variable, an off-by-one index, a wrong operator, a wrong initial value).
After the warm-up the model writes the right loop but, greedily, the habitual bug. RL with
unit-test feedback (every reward from really running the completion against its tests in
the sandbox; RLTF's fine-grained penalty on the tokens of the line that failed) must remove
the habits, and the held-out tasks show whether the fix generalises.

Steps: build a tokenizer and a randomly initialised Qwen2-style model; SFT warm-up;
held-out pass@1 (greedy); RL with our token-level trainer, held-out pass@1 measured every
``eval_every`` steps; the curves as a PNG.

Example:
    >>> from trl_codefeedback.demo import DemoConfig, run_demo
    >>> summary = run_demo(DemoConfig(output_dir="demo-out", seed=0))   # doctest: +SKIP
    >>> summary["heldout_pass@1_after_rl"] > summary["heldout_pass@1_before_rl"]   # doctest: +SKIP
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trl_codefeedback.demo_tasks import split_tasks

EOS = "<|endoftext|>"


@dataclass
class DemoConfig:
    """Settings of the demo. The defaults finish in a few minutes on 2 CPU cores."""

    output_dir: str | None = field(default=None, metadata={"help": "where the model, plot and summary go (default: a new temporary folder)"})
    seed: int = field(default=0, metadata={"help": "seed for the task split, the model and training"})
    family: str = field(default="loops", metadata={"help": "task family: loops (multi-line) or oneline (fast smoke test)"})
    heldout: int = field(default=12, metadata={"help": "held-out tasks (loops family)"})
    hidden_size: int = field(default=96, metadata={"help": "model width (64: seeds 4, 8, 9 of 10 ended below 0.9 held-out pass@1)"})
    num_layers: int = field(default=2, metadata={"help": "transformer layers"})
    buggy_fraction: float = field(default=0.6, metadata={"help": "share of SFT examples with the task's habitual bug"})
    sft_copies: int = field(default=10, metadata={"help": "SFT examples per training task"})
    sft_steps: int = field(default=400, metadata={"help": "SFT warm-up steps"})
    sft_learning_rate: float = field(default=3e-3, metadata={"help": "SFT learning rate (cosine decay)"})
    rl_steps: int = field(default=120, metadata={"help": "RL steps"})
    rl_learning_rate: float = field(default=5e-4, metadata={"help": "RL learning rate"})
    num_generations: int = field(default=8, metadata={"help": "completions per prompt (GRPO group size)"})
    prompts_per_step: int = field(default=4, metadata={"help": "prompts per RL step"})
    max_completion_length: int = field(default=64, metadata={"help": "generation length limit (tokens)"})
    reward_mode: str = field(default="adaptive", metadata={"help": "RLTF reward: coarse or adaptive"})
    fine_grained: bool = field(default=True, metadata={"help": "token-level penalties at error lines (our trainer; False: plain TRL GRPOTrainer)"})
    alpha_scaling: bool | None = field(default=None, metadata={"help": "fine_grained_alpha_scaling (None: the trainer's default)"})
    mask_unexecuted: bool = field(default=False, metadata={"help": "StepCoder: zero the advantage of never-executed lines"})
    eval_every: int = field(default=10, metadata={"help": "held-out pass@1 every N RL steps"})
    log_every: int = field(default=5, metadata={"help": "log the reward every N steps"})


# --------------------------------------------------------------------------- model


def make_readable(path: str | Path) -> Path:
    """Give everyone the umask allows read access to the files (and entry to the folders) under ``path``.

    transformers writes ``model.safetensors`` through a private temporary file (mode 0600), so a
    model saved by one user (root in a container) could not be loaded by another.
    """
    import os

    path = Path(path)
    umask = os.umask(0)
    os.umask(umask)
    for p in [path, *path.rglob("*")]:
        if p.is_symlink():
            continue
        extra = (0o555 if p.is_dir() else 0o444) & ~umask
        os.chmod(p, p.stat().st_mode | extra)
    return path


def build_tiny_model(path: Path, texts: list[str], hidden_size: int, num_layers: int, seed: int):
    """A byte-level BPE tokenizer trained on ``texts`` and a random Qwen2 model, saved to ``path``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    path.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, pad_token=EOS)
    tokenizer.save_pretrained(path)
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=256, tie_word_embeddings=True,
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

    was_training = model.training
    tokenizer.padding_side = "left"
    enc = tokenizer([r["prompt"] for r in rows], return_tensors="pt", padding=True).to(model.device)
    model.eval()
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    model.train(was_training)
    completions = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    reward = UnitTestReward(executor=executor)
    reward(prompts=[r["prompt"] for r in rows], completions=completions, tests=[r["tests"] for r in rows], code_prefix=[r["code_prefix"] for r in rows])
    broken = [fb.error_message for fb in reward.last_feedback if fb.status.value == "harness_error"]
    if broken:  # the sandbox failed, not the model: a pass@1 computed now would be meaningless
        raise RuntimeError(f"{len(broken)} of {len(rows)} held-out programs hit a harness error: {broken[0]}")
    passed = [fb.passed for fb in reward.last_feedback]
    return sum(passed) / len(passed), completions


def heldout_callback(tokenizer, rows: list[dict], max_new_tokens: int, executor, every: int, curve: list[dict], echo=None):
    """A TrainerCallback appending ``{"step", "pass@1"}`` (held-out, greedy) to ``curve`` every ``every`` steps.

    With ``echo``, each measurement is also printed as it happens, with the latest logged mean training reward.
    """
    from transformers import TrainerCallback

    class HeldoutPassAt1(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if every and state.global_step % every == 0:
                p, _ = heldout_pass_at_1(model, tokenizer, rows, max_new_tokens, executor)
                curve.append({"step": state.global_step, "pass@1": p})
                if echo is not None:
                    reward = next((h["reward"] for h in reversed(state.log_history) if "reward" in h), None)
                    shown = f", mean training reward {reward:+.2f}" if reward is not None else ""
                    echo(f"[demo] RL step {state.global_step}/{state.max_steps}: held-out pass@1 {p:.2f}{shown}")

    return HeldoutPassAt1()


def progress_callback(echo, what: str, every: int):
    """A TrainerCallback printing ``[demo] <what> step N/M: loss L`` every ``every`` steps (not at the last)."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if every and state.global_step % every == 0 and state.global_step < state.max_steps:
                loss = next((h["loss"] for h in reversed(state.log_history) if "loss" in h), None)
                shown = f": loss {loss:.3f}" if loss is not None else ""
                echo(f"[demo] {what} step {state.global_step}/{state.max_steps}{shown}")

    return Progress()


def _echo(message: str) -> None:
    print(message, flush=True)  # progress shows as it happens, also when stdout is a pipe or a file


# --------------------------------------------------------------------------- training


def _quiet_args(**kw):
    return dict(report_to="none", use_cpu=True, bf16=False, fp16=False, disable_tqdm=True, save_strategy="no", logging_steps=kw.pop("logging_steps", 5), **kw)


def _quiet(trainer) -> None:
    """No per-step log dicts on stdout (the history stays in ``trainer.state.log_history``)."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)


def sft_warmup(model, tokenizer, rows: list[dict], cfg: DemoConfig, work: Path, callbacks=()):
    """Supervised warm-up on ``rows``; ``buggy_fraction`` of the examples carry the task's habitual bug."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rng = random.Random(cfg.seed)
    examples = []
    for r in rows:
        for _ in range(cfg.sft_copies):
            completion = r["buggy_completion"] if rng.random() < cfg.buggy_fraction else r["completion"]
            examples.append({"prompt": r["prompt"], "completion": completion + EOS})
    rng.shuffle(examples)
    ds = Dataset.from_list(examples)
    args = SFTConfig(
        output_dir=str(work / "sft"), max_steps=cfg.sft_steps, per_device_train_batch_size=16,
        learning_rate=cfg.sft_learning_rate, lr_scheduler_type="cosine", seed=cfg.seed, **_quiet_args(),
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer, callbacks=list(callbacks))
    _quiet(trainer)
    trainer.train()
    return trainer.model


def _trainer_classes(cfg: DemoConfig):
    if cfg.fine_grained or cfg.mask_unexecuted:
        from trl_codefeedback.trainers import CodeFeedbackGRPOConfig, CodeFeedbackGRPOTrainer

        return CodeFeedbackGRPOConfig, CodeFeedbackGRPOTrainer
    from trl import GRPOConfig, GRPOTrainer

    return GRPOConfig, GRPOTrainer


def rl_train(model, tokenizer, rows: list[dict], cfg: DemoConfig, work: Path, executor, callbacks=()) -> list[dict]:
    """GRPO on ``rows`` with ``UnitTestReward(mode=cfg.reward_mode)``; returns the logged history."""
    from datasets import Dataset

    from trl_codefeedback.feedback import UnitTestReward

    config_cls, trainer_cls = _trainer_classes(cfg)
    ds = Dataset.from_list([{k: r[k] for k in ("prompt", "tests", "code_prefix", "task_id", "language")} for r in rows])
    reward = UnitTestReward(mode=cfg.reward_mode, executor=executor)
    extra: dict[str, Any] = {}
    if config_cls.__name__ == "CodeFeedbackGRPOConfig":
        extra = {"fine_grained": cfg.fine_grained, "mask_unexecuted_tokens": cfg.mask_unexecuted}
        if cfg.alpha_scaling is not None:
            extra["fine_grained_alpha_scaling"] = cfg.alpha_scaling
    args = config_cls(
        output_dir=str(work / "rl"), max_steps=cfg.rl_steps,
        per_device_train_batch_size=cfg.num_generations * cfg.prompts_per_step, num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length, temperature=1.0, learning_rate=cfg.rl_learning_rate,
        lr_scheduler_type="constant", beta=0.0, seed=cfg.seed, **extra, **_quiet_args(logging_steps=cfg.log_every),
    )
    tokenizer.padding_side = "left"
    trainer = trainer_cls(model=model, reward_funcs=[reward], args=args, train_dataset=ds, processing_class=tokenizer, callbacks=list(callbacks))
    _quiet(trainer)
    trainer.train()
    return [h for h in trainer.state.log_history if "reward" in h]


# --------------------------------------------------------------------------- plot


def plot_curves(history: list[dict], heldout_curve: list[dict], path: Path) -> Path | None:
    """Held-out pass@1 (step 0 = before RL, last = after) and the mean training reward, one PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    if heldout_curve:
        steps = [c["step"] for c in heldout_curve]
        ax.plot(steps, [c["pass@1"] for c in heldout_curve], color="tab:green", marker="o", label="held-out pass@1 (greedy)")
        for c, where, dx, ha in ((heldout_curve[0], "before RL", 4, "left"), (heldout_curve[-1], "after RL", -4, "right")):
            ax.annotate(f"{where}: {c['pass@1']:.2f}", (c["step"], c["pass@1"]), textcoords="offset points", xytext=(dx, -14), ha=ha, fontsize=8)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("RL step")
    ax.set_ylabel("held-out pass@1")
    ax2 = ax.twinx()
    if history:
        ax2.plot([h["step"] for h in history], [h["reward"] for h in history], color="tab:blue", linestyle="--", label="mean training reward")
    ax2.set_ylabel("RLTF reward")
    ax2.set_ylim(-1.05, 1.05)
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="lower right", fontsize=8)
    ax.set_title("trl-codefeedback demo: held-out pass@1 and reward during RL")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- the demo


def run_demo(cfg: DemoConfig, echo=_echo) -> dict[str, Any]:
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
    torch.set_num_threads(1)  # a ~150k-parameter model runs fastest on one thread; the sandbox uses the other cores
    train, heldout = split_tasks(cfg.family, cfg.seed, cfg.heldout)
    echo(f"[demo] {cfg.family} family: {len(train)} training tasks, {len(heldout)} held-out tasks (unseen combinations)")
    model, tokenizer = build_tiny_model(work / "init", [r["prompt"] + r["completion"] for r in train + heldout], cfg.hidden_size, cfg.num_layers, cfg.seed)
    echo(f"[demo] tiny Qwen2 model: {sum(p.numel() for p in model.parameters()) / 1e3:.0f}k parameters")
    heldout_curve: list[dict] = []
    t0 = time.perf_counter()
    with Executor(workers=None) as executor:
        p_init, _ = heldout_pass_at_1(model, tokenizer, heldout, cfg.max_completion_length, executor)
        echo(f"[demo] SFT warm-up: {cfg.sft_steps} steps on examples with habitual bugs")
        sft_progress = progress_callback(echo, "SFT", max(1, cfg.sft_steps // 4))
        model = sft_warmup(model, tokenizer, train, cfg, work, callbacks=[sft_progress])
        p_before, before = heldout_pass_at_1(model, tokenizer, heldout, cfg.max_completion_length, executor)
        echo(f"[demo] held-out pass@1: random init {p_init:.2f}, after SFT warm-up {p_before:.2f} ({time.perf_counter() - t0:.0f} s)")
        heldout_curve.append({"step": 0, "pass@1": p_before})
        echo(f"[demo] RL with unit-test feedback: {cfg.rl_steps} steps, held-out pass@1 every {cfg.eval_every} steps")
        callback = heldout_callback(tokenizer, heldout, cfg.max_completion_length, executor, cfg.eval_every, heldout_curve, echo=echo)
        history = rl_train(model, tokenizer, train, cfg, work, executor, callbacks=[callback])
        p_after, after = heldout_pass_at_1(model, tokenizer, heldout, cfg.max_completion_length, executor)
    if heldout_curve[-1]["step"] != cfg.rl_steps:
        heldout_curve.append({"step": cfg.rl_steps, "pass@1": p_after})
    echo(f"[demo] held-out pass@1 during RL: " + " ".join(f"{c['step']}:{c['pass@1']:.2f}" for c in heldout_curve))
    echo(f"[demo] held-out pass@1 after RL with unit-test feedback: {p_after:.2f} (before RL {p_before:.2f})")
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    make_readable(out / "model")
    plot_curves(history, heldout_curve, out / "reward_curve.png")
    return {
        "seed": cfg.seed,
        "family": cfg.family,
        "heldout_tasks": len(heldout),
        "heldout_pass@1_init": p_init,
        "heldout_pass@1_before_rl": p_before,
        "heldout_pass@1_after_rl": p_after,
        "heldout_curve": heldout_curve,
        "reward_curve": [{"step": h["step"], "reward": h["reward"]} for h in history],
        "samples": [{"task_id": r["task_id"], "habit": r["habit"], "before": b, "after": a} for r, b, a in zip(heldout, before, after)],
        "config": {**asdict(cfg), "output_dir": str(out)},
        "trainer": _trainer_classes(cfg)[1].__name__,
    }
