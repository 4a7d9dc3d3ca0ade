"""Training RLCF's discriminator: references are positives, the policy's programs negatives.

* :func:`train_discriminator`: a few epochs of binary cross-entropy on
  :meth:`DiscriminatorReward.logits` (either backend), references labelled 1, policy samples 0.
* :func:`evaluate_discriminator`: accuracy / loss on such a set, without training.
* :class:`DiscriminatorRefreshCallback`: a ``transformers`` ``TrainerCallback`` that, every
  ``every_n_steps`` optimizer steps of RL, retrains the discriminator on the latest rollouts the
  reward saw (:attr:`DiscriminatorReward.rollouts`) against their references: the GAN-style loop.
  It measures the discriminator's accuracy on the fresh rollouts *before* training on them
  (held-out accuracy) and after, and logs both to ``trainer.state.log_history``
  (``discriminator/accuracy``, ``discriminator/train_accuracy``, ``discriminator/loss``) and,
  through the reward's ``log_metric`` hook, to TRL's metrics on the following steps.

Example:
    >>> disc = DiscriminatorReward(classifier, tokenizer)                                  # doctest: +SKIP
    >>> train_discriminator(disc, prompts, references, generated, DiscriminatorTrainingConfig(epochs=3))  # doctest: +SKIP
    {'loss': 0.05, 'accuracy': 1.0, 'steps': 12, 'examples': 64}
    >>> reward = GroundingReward(discriminator=disc)                                       # doctest: +SKIP
    >>> trainer = GRPOTrainer(model, reward_funcs=[reward], ...,
    ...                       callbacks=[DiscriminatorRefreshCallback(disc, every_n_steps=10)])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trl_codefeedback.feedback.discriminator import DiscriminatorReward, prompt_text

logger = logging.getLogger(__name__)


@dataclass
class DiscriminatorTrainingConfig:
    """Optimisation settings of :func:`train_discriminator`."""

    learning_rate: float = field(default=5e-4, metadata={"help": "AdamW learning rate."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    epochs: int = field(default=1, metadata={"help": "Passes over the examples."})
    batch_size: int = field(default=8, metadata={"help": "Examples per optimizer step."})
    max_steps: int | None = field(default=None, metadata={"help": "Stop after this many optimizer steps (None: all epochs)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 disables)."})
    balance: bool = field(
        default=True,
        metadata={"help": "Weight the positive and negative losses equally, whatever the class counts."},
    )
    dedupe_positives: bool = field(
        default=True, metadata={"help": "Use each (prompt, reference) pair once as a positive, however many samples it has."}
    )
    seed: int = field(default=0, metadata={"help": "Shuffling seed."})


def _examples(
    prompts: Sequence[Any], references: Sequence[str], generated: Sequence[str], dedupe: bool
) -> list[tuple[str, str, str, float]]:
    """(prompt, code, reference, label) rows: the reference against itself (1) and each sample against it (0)."""
    if not (len(prompts) == len(references) == len(generated)):
        raise ValueError(f"got {len(prompts)} prompts, {len(references)} references, {len(generated)} generated programs")
    rows, seen = [], set()
    for p, r, g in zip(prompts, references, generated):
        p = prompt_text(p)
        if not dedupe or (p, r) not in seen:
            seen.add((p, r))
            rows.append((p, r, r, 1.0))
        rows.append((p, g, r, 0.0))
    return rows


def evaluate_discriminator(
    discriminator: DiscriminatorReward,
    prompts: Sequence[Any],
    references: Sequence[str],
    generated: Sequence[str],
    dedupe_positives: bool = True,
) -> dict[str, float]:
    """Accuracy (threshold 0.5), per-class accuracies and mean scores on references (1) vs generated programs (0).

    Example:
        >>> evaluate_discriminator(disc, prompts, refs, samples)["accuracy"]  # doctest: +SKIP
        0.94
    """
    rows = _examples(prompts, references, generated, dedupe_positives)
    scores = discriminator.score([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    pos = [s for s, r in zip(scores, rows) if r[3] == 1.0]
    neg = [s for s, r in zip(scores, rows) if r[3] == 0.0]
    correct = [(s >= 0.5) == (r[3] == 1.0) for s, r in zip(scores, rows)]
    return {
        "accuracy": sum(correct) / len(correct),
        "reference_accuracy": sum(s >= 0.5 for s in pos) / len(pos),
        "generated_accuracy": sum(s < 0.5 for s in neg) / len(neg),
        "reference_score": sum(pos) / len(pos),
        "generated_score": sum(neg) / len(neg),
    }


def train_discriminator(
    discriminator: DiscriminatorReward,
    prompts: Sequence[Any],
    references: Sequence[str],
    generated: Sequence[str],
    config: DiscriminatorTrainingConfig | None = None,
) -> dict[str, float]:
    """Train the discriminator to score references 1 and generated programs 0 for the same prompts.

    Args:
        discriminator: the :class:`DiscriminatorReward` to train (either backend), in place.
        prompts, references, generated: one triple per policy sample; ``generated[i]`` is a program
            the policy wrote for ``prompts[i]``, ``references[i]`` that prompt's reference program.
        config: :class:`DiscriminatorTrainingConfig`.

    Returns:
        ``loss`` (mean of the last epoch), ``accuracy`` (on the training examples, during the last
        epoch), ``steps`` and ``examples``.
    """
    import torch

    cfg = config or DiscriminatorTrainingConfig()
    rows = _examples(prompts, references, generated, cfg.dedupe_positives)
    if not rows:
        raise ValueError("no examples to train the discriminator on")
    n_pos = sum(r[3] == 1.0 for r in rows)
    n_neg = len(rows) - n_pos
    pos_weight = (n_neg / n_pos) if (cfg.balance and n_pos and n_neg) else 1.0

    model = discriminator.model
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the discriminator model has no trainable parameters")
    optim = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    rng = random.Random(cfg.seed)
    was_training = model.training
    model.train()
    steps, losses, correct, seen = 0, [], 0, 0
    try:
        for _epoch in range(cfg.epochs):
            order = list(range(len(rows)))
            rng.shuffle(order)
            losses, correct, seen = [], 0, 0
            for i in range(0, len(order), cfg.batch_size):
                batch = [rows[j] for j in order[i : i + cfg.batch_size]]
                labels = torch.tensor([b[3] for b in batch], device=discriminator.model_device)
                logits = discriminator.logits([b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch])
                weights = torch.where(labels > 0.5, torch.full_like(labels, pos_weight), torch.ones_like(labels))
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, weight=weights)
                optim.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optim.step()
                steps += 1
                losses.append(float(loss.detach()))
                correct += int(((logits.detach() >= 0) == (labels > 0.5)).sum())
                seen += len(batch)
                if cfg.max_steps is not None and steps >= cfg.max_steps:
                    break
            if cfg.max_steps is not None and steps >= cfg.max_steps:
                break
    finally:
        model.train(was_training)
        optim.zero_grad(set_to_none=True)
    return {
        "loss": sum(losses) / max(len(losses), 1),
        "accuracy": correct / max(seen, 1),
        "steps": float(steps),
        "examples": float(len(rows)),
    }


class _NoOpEvents:
    """``transformers.TrainerCallback``'s interface without importing transformers at import time:
    every ``on_*`` event this class does not define is a no-op returning ``None``."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


class DiscriminatorRefreshCallback(_NoOpEvents):
    """Retrain the discriminator every ``every_n_steps`` RL steps on the latest rollouts (GAN-style RLCF loop).

    The rollouts come from :attr:`DiscriminatorReward.rollouts`, filled by every call of the
    discriminator reward or of a :class:`~trl_codefeedback.feedback.grounding.GroundingReward`
    holding it. At each refresh the callback

    1. measures accuracy on the rollouts gathered since the last refresh (not yet trained on),
    2. trains on them (:func:`train_discriminator`, ``config``), and clears the buffer,
    3. appends ``{"discriminator/accuracy", "discriminator/train_accuracy", "discriminator/loss",
       "step"}`` to ``state.log_history`` and keeps it in :attr:`history`; the reward then logs the same
       numbers through TRL's ``log_metric`` on the next steps.

    Args:
        discriminator: the :class:`DiscriminatorReward` used by the reward function.
        every_n_steps: refresh period in optimizer steps.
        config: :class:`DiscriminatorTrainingConfig` of each refresh.
        min_rollouts: skip a refresh with fewer buffered rollouts than this.
        save_dir: when set, save the discriminator there after each refresh.

    Example:
        >>> cb = DiscriminatorRefreshCallback(disc, every_n_steps=5)          # doctest: +SKIP
        >>> GRPOTrainer(..., reward_funcs=[GroundingReward(discriminator=disc)], callbacks=[cb])  # doctest: +SKIP
    """

    def __init__(
        self,
        discriminator: DiscriminatorReward,
        every_n_steps: int = 10,
        config: DiscriminatorTrainingConfig | None = None,
        min_rollouts: int = 1,
        save_dir: str | None = None,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.discriminator = discriminator
        self.every_n_steps = every_n_steps
        self.config = config or DiscriminatorTrainingConfig()
        self.min_rollouts = min_rollouts
        self.save_dir = save_dir
        self.history: list[dict[str, float]] = []

    def refresh(self, step: int = 0) -> dict[str, float] | None:
        """One refresh on the buffered rollouts (also callable by hand); ``None`` when too few were buffered."""
        disc = self.discriminator
        rollouts = list(disc.rollouts)
        if len(rollouts) < self.min_rollouts or not rollouts:
            return None
        prompts = [r.prompt for r in rollouts]
        refs = [r.reference for r in rollouts]
        codes = [r.code for r in rollouts]
        before = evaluate_discriminator(disc, prompts, refs, codes, self.config.dedupe_positives)
        trained = train_discriminator(disc, prompts, refs, codes, self.config)
        disc.rollouts.clear()
        metrics = {
            "accuracy": before["accuracy"],
            "reference_score": before["reference_score"],
            "generated_score": before["generated_score"],
            "train_accuracy": trained["accuracy"],
            "loss": trained["loss"],
            "refreshes": float(len(self.history) + 1),
        }
        disc.training_metrics = dict(metrics)
        entry = {f"discriminator/{k}": v for k, v in metrics.items()}
        entry["step"] = step
        self.history.append(entry)
        if self.save_dir:
            disc.save_pretrained(self.save_dir)
        logger.info("discriminator refreshed at step %d: %s", step, metrics)
        return metrics

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step % self.every_n_steps == 0 and self.refresh(state.global_step) is not None:
            state.log_history.append(dict(self.history[-1]))
        return control
