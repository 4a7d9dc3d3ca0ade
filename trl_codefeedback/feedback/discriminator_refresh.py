"""The GAN-style loop of RLCF: retrain the discriminator on the policy's latest programs during RL.

:class:`DiscriminatorRefreshCallback` is a ``transformers`` ``TrainerCallback`` that, every
``every_n_steps`` optimizer steps, takes the rollouts the reward saw
(:attr:`DiscriminatorReward.rollouts`), measures the scorer's pairwise accuracy on them *before*
training on them (held-out accuracy), trains it on the (rollout, reference) pairs
(:func:`~trl_codefeedback.feedback.discriminator_training.train_discriminator`), and logs both to
``trainer.state.log_history`` and, through the reward's ``log_metric`` hook, to TRL's metrics on
the following steps.

Example:
    >>> reward = GroundingReward(discriminator=disc)                                       # doctest: +SKIP
    >>> trainer = GRPOTrainer(model, reward_funcs=[reward], ...,
    ...                       callbacks=[DiscriminatorRefreshCallback(disc, every_n_steps=10)])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from trl_codefeedback.feedback.discriminator import DiscriminatorReward
from trl_codefeedback.feedback.discriminator_training import (
    DiscriminatorTrainingConfig,
    _require_scorer,
    evaluate_discriminator,
    program_pairs,
    train_discriminator,
)

logger = logging.getLogger(__name__)


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

    1. measures pairwise accuracy on the rollouts gathered since the last refresh (not yet trained
       on): the share of (rollout, reference) pairs where the scorer ranks the reference higher;
    2. trains on those pairs (:func:`train_discriminator`, ``config``) and clears the buffer;
    3. appends ``discriminator/accuracy``, ``generated_score``, ``train_accuracy``, ``loss``,
       ``margin``, ``pairs``, ``refreshes`` and ``step`` to ``state.log_history`` and keeps them in
       :attr:`history`; the reward then logs the same numbers through TRL's ``log_metric`` on the next steps.

    Rollouts that are copies of their reference make no pair; a buffer holding only such copies
    skips the refresh.

    Args:
        discriminator: the :class:`DiscriminatorReward` (scorer backend) used by the reward function.
        every_n_steps: refresh period in optimizer steps.
        config: :class:`DiscriminatorTrainingConfig` of each refresh (refresh ``k`` uses ``seed + k``).
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
        _require_scorer(discriminator)
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
        if len(rollouts) < max(self.min_rollouts, 1):
            return None
        prompts = [r.prompt for r in rollouts]
        refs = [r.reference for r in rollouts]
        codes = [r.code for r in rollouts]
        if not program_pairs(prompts, refs, codes).pairs:
            logger.info("discriminator refresh at step %d skipped: every rollout is a copy of its reference", step)
            disc.rollouts.clear()
            return None
        before = evaluate_discriminator(disc, prompts, refs, codes)
        config = replace(self.config, seed=self.config.seed + len(self.history))  # a new pair order each refresh
        trained = train_discriminator(disc, prompts, refs, codes, config)
        disc.rollouts.clear()
        metrics = {
            "accuracy": before["accuracy"],
            "generated_score": before["generated_score"],
            "train_accuracy": trained["accuracy"],
            "loss": trained["loss"],
            "margin": trained["margin"],
            "pairs": trained["pairs"],
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
