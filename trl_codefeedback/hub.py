"""Model cards that record the execution-feedback configuration, and Hub pushes.

Example:
    >>> card = feedback_model_card(base_model="Qwen/Qwen2.5-Coder-0.5B", dataset="mbpp",
    ...                            reward_funcs=[], trainer_args=None)
    >>> "## Feedback configuration" in card
    True
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

import trl_codefeedback

FEEDBACK_ARG_PREFIXES = (
    "fine_grained", "mask_unexecuted", "num_generations", "max_completion_length", "beta", "temperature",
    "loss_type", "learning_rate", "max_steps", "kl_", "gamma", "lam", "vf_coef", "cliprange", "num_ppo_epochs",
    "epsilon", "whiten_", "critic_lora_r", "value_head_init_std", "reward_weights",
)


def describe_reward(func: Any) -> dict[str, Any]:
    """A JSON-ready description of one reward function (ours in detail, others by name)."""
    out: dict[str, Any] = {"name": getattr(func, "__name__", type(func).__name__), "class": type(func).__name__}
    for attr in ("mode", "language", "tests_column", "code_prefix_column"):
        if hasattr(func, attr):
            out[attr] = getattr(func, attr)
    values = getattr(func, "values", None)
    if dataclasses.is_dataclass(values):
        out["values"] = dataclasses.asdict(values)
    limits = getattr(func, "limits", None)
    if dataclasses.is_dataclass(limits):
        out["limits"] = dataclasses.asdict(limits)
    return out


def feedback_config(reward_funcs: Sequence[Any], trainer_args: Any | None) -> dict[str, Any]:
    """The feedback configuration of a run: rewards, their weights, and the token-level settings."""
    cfg: dict[str, Any] = {"rewards": [describe_reward(f) for f in reward_funcs]}
    if trainer_args is not None:
        args = trainer_args.to_dict() if hasattr(trainer_args, "to_dict") else dict(vars(trainer_args))
        cfg["trainer"] = type(trainer_args).__name__
        cfg["reward_weights"] = args.get("reward_weights")
        cfg["settings"] = {k: v for k, v in sorted(args.items()) if k.startswith(FEEDBACK_ARG_PREFIXES)}
    return cfg


def feedback_model_card(
    base_model: str | None,
    dataset: str | None,
    reward_funcs: Sequence[Any],
    trainer_args: Any | None,
    eval_results: dict[str, Any] | None = None,
    model_name: str | None = None,
) -> str:
    """Markdown model card: base model, data, feedback configuration, evaluation results."""
    cfg = feedback_config(reward_funcs, trainer_args)
    lines = [
        "---",
        "library_name: transformers",
        "tags: [trl, trl-codefeedback, code, reinforcement-learning]",
        *([f"base_model: {base_model}"] if base_model else []),
        *([f"datasets: [{dataset}]"] if dataset else []),
        "---",
        "",
        f"# {model_name or 'Code model trained with execution feedback'}",
        "",
        f"Trained with [trl-codefeedback](https://pypi.org/project/trl-codefeedback/) {trl_codefeedback.__version__} "
        "(reinforcement learning from unit-test and compiler feedback, on Hugging Face TRL).",
        "",
        f"- **Base model:** {base_model or 'unknown'}",
        f"- **Training data:** {dataset or 'unknown'}",
        f"- **Trainer:** {cfg.get('trainer', 'unknown')}",
        "",
        "## Feedback configuration",
        "",
        "| reward | class | mode | language |",
        "|---|---|---|---|",
        *[f"| {r['name']} | {r['class']} | {r.get('mode', '')} | {r.get('language', '')} |" for r in cfg["rewards"]],
        "",
        "```json",
        json.dumps(cfg, indent=2, default=str),
        "```",
        "",
        "## Evaluation",
        "",
    ]
    if eval_results:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in eval_results.items() if not isinstance(v, dict)]
    else:
        lines.append("Not evaluated yet: `trl-codefeedback evaluate --model <this repo> --dataset mbpp`.")
    return "\n".join(lines) + "\n"


def save_model_card(output_dir: str | Path, **kwargs: Any) -> Path:
    """Write ``README.md`` (the card) into ``output_dir``; kwargs as in :func:`feedback_model_card`."""
    path = Path(output_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(feedback_model_card(**kwargs))
    return path


def push_with_card(trainer: Any, dataset: str | None, eval_results: dict[str, Any] | None = None, merge_adapter: bool = False) -> str:
    """Save the policy (adapter, or merged weights with ``merge_adapter``) with our card and push it.

    Uses ``trainer.args.hub_model_id`` / ``output_dir`` like ``Trainer.push_to_hub``.
    """
    from huggingface_hub import HfApi

    out = Path(trainer.args.output_dir)
    model = trainer.model
    unwrapped = trainer.accelerator.unwrap_model(model) if hasattr(trainer, "accelerator") else model
    if merge_adapter and hasattr(unwrapped, "merge_and_unload"):
        unwrapped = unwrapped.merge_and_unload()
    unwrapped.save_pretrained(out)
    if getattr(trainer, "processing_class", None) is not None:
        trainer.processing_class.save_pretrained(out)
    base = getattr(getattr(unwrapped, "config", None), "_name_or_path", None)
    save_model_card(out, base_model=base, dataset=dataset, reward_funcs=getattr(trainer, "reward_funcs", []), trainer_args=trainer.args, eval_results=eval_results, model_name=trainer.args.hub_model_id)
    repo_id = trainer.args.hub_model_id or out.name
    api = HfApi(token=getattr(trainer.args, "hub_token", None))
    api.create_repo(repo_id, exist_ok=True, private=getattr(trainer.args, "hub_private_repo", None))
    api.upload_folder(folder_path=str(out), repo_id=repo_id, commit_message="trl-codefeedback: trained with execution feedback")
    return repo_id
