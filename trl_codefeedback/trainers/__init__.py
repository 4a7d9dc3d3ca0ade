"""TRL trainer subclasses with token-level execution feedback.

Importing this package imports TRL (and torch); ``import trl_codefeedback`` does not.

Example:
    >>> from trl_codefeedback.trainers import CodeFeedbackGRPOConfig, CodeFeedbackGRPOTrainer  # doctest: +SKIP
"""

from trl_codefeedback.trainers.grpo_config import CodeFeedbackGRPOConfig
from trl_codefeedback.trainers.grpo_trainer import CodeFeedbackGRPOTrainer
from trl_codefeedback.trainers.ppo_config import CodeFeedbackPPOConfig
from trl_codefeedback.trainers.ppo_trainer import CodeFeedbackPPOTrainer

__all__ = ["CodeFeedbackGRPOConfig", "CodeFeedbackGRPOTrainer", "CodeFeedbackPPOConfig", "CodeFeedbackPPOTrainer"]
