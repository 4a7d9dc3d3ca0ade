"""trl-codefeedback: reinforcement learning from execution feedback for code LLMs, on Hugging Face TRL.

Every public class, function and loader is importable from the top level::

    from trl_codefeedback import CodeFeedbackPPOTrainer, UnitTestReward, load_mbjp

The names are imported lazily (on first access) so that ``import trl_codefeedback`` stays
cheap: the executor must not drag torch into its worker processes, and only the trainers
import TRL.
"""

from __future__ import annotations

import importlib
from typing import Any

from trl_codefeedback._notices import quiet_known_notices

__version__ = "0.1.0"

# Where each top-level name lives (the README's API overview lists the same names).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "trl_codefeedback.execution": (
        "Executor", "RayExecutor", "execute", "Program", "Limits", "Feedback", "Status", "ErrorScope", "TestOutcome",
        "parse_test_spec", "TestSpecError", "UnknownLanguageError",
    ),
    "trl_codefeedback.feedback": (
        "UnitTestReward", "CompilerReward", "RLTFRewardValues", "CompilerRewardValues", "ExecutionReward", "AsyncReward",
        "GroundingReward", "GroundingRewardValues", "DiscriminatorReward", "DiscriminatorTrainingConfig",
        "train_discriminator", "evaluate_discriminator", "DiscriminatorRefreshCallback",
        "extract_code", "token_char_spans", "get_reward_funcs", "register_reward",
    ),
    "trl_codefeedback.trainers": (
        "CodeFeedbackGRPOConfig", "CodeFeedbackGRPOTrainer", "CodeFeedbackPPOConfig", "CodeFeedbackPPOTrainer",
    ),
    "trl_codefeedback.data": (
        "load_mbpp", "load_mbxp_python", "load_humaneval", "load_apps", "load_mbjp", "load_mathqa_java", "DataLoadError",
    ),
    "trl_codefeedback.metrics": (
        "pass_at_k", "pass_at_k_per_task", "compile_rate", "execution_rate", "summarize", "rlcf_metrics", "metric_path",
    ),
    "trl_codefeedback.evaluation": ("EvalConfig", "evaluate_model"),
    "trl_codefeedback.hub": ("feedback_model_card", "save_model_card", "push_with_card"),
    "trl_codefeedback.tiny_model": ("build_tiny_model",),
}
_LAZY = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_LAZY) + ["__version__"]

quiet_known_notices()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trl_codefeedback' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
