"""Feedback -> rewards: unit-test (RLTF coarse / adaptive) and compiler (RLCF) rewards for TRL.

Example:
    >>> from trl_codefeedback.feedback import UnitTestReward, extract_code
    >>> extract_code("```py\\nx = 1\\n```").code
    'x = 1\\n'
"""

from trl_codefeedback.feedback.async_reward import AsyncReward
from trl_codefeedback.feedback.base import EMPTY_COMPLETION, ExecutionReward, ScoredCompletion
from trl_codefeedback.feedback.compiler import CompilerReward
from trl_codefeedback.feedback.config import CompilerRewardValues, RLTFRewardValues
from trl_codefeedback.feedback.extract import (
    ExtractedCode,
    code_line_to_completion_span,
    completion_text,
    extract_code,
)
from trl_codefeedback.feedback.registry import REWARD_REGISTRY, get_reward_funcs, register_reward
from trl_codefeedback.feedback.token_mapping import token_char_spans
from trl_codefeedback.feedback.unit_test import UnitTestReward
from trl_codefeedback.feedback.discriminator import DiscriminatorReward, Rollout
from trl_codefeedback.feedback.discriminator_training import (
    DiscriminatorTrainingConfig,
    ProgramPair,
    evaluate_discriminator,
    program_pairs,
    train_discriminator,
)
from trl_codefeedback.feedback.discriminator_refresh import DiscriminatorRefreshCallback
from trl_codefeedback.feedback.grounding import GroundingReward, GroundingRewardValues

__all__ = [
    "AsyncReward",
    "REWARD_REGISTRY",
    "get_reward_funcs",
    "register_reward",
    "EMPTY_COMPLETION",
    "CompilerReward",
    "CompilerRewardValues",
    "ExecutionReward",
    "ExtractedCode",
    "RLTFRewardValues",
    "ScoredCompletion",
    "UnitTestReward",
    "code_line_to_completion_span",
    "completion_text",
    "extract_code",
    "token_char_spans",
    "DiscriminatorReward",
    "Rollout",
    "DiscriminatorRefreshCallback",
    "DiscriminatorTrainingConfig",
    "ProgramPair",
    "evaluate_discriminator",
    "program_pairs",
    "train_discriminator",
    "GroundingReward",
    "GroundingRewardValues",
]
