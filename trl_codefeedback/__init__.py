"""trl-codefeedback: reinforcement learning from execution feedback for code LLMs, on Hugging Face TRL.

The top-level names are imported lazily so that ``import trl_codefeedback`` stays cheap
(the executor must not drag torch into its worker processes).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # execution
    "Executor": "trl_codefeedback.execution",
    "Program": "trl_codefeedback.execution",
    "Limits": "trl_codefeedback.execution",
    "Feedback": "trl_codefeedback.execution",
    "Status": "trl_codefeedback.execution",
    "ErrorScope": "trl_codefeedback.execution",
    "execute": "trl_codefeedback.execution",
    # feedback / rewards
    "UnitTestReward": "trl_codefeedback.feedback",
    "CompilerReward": "trl_codefeedback.feedback",
    "extract_code": "trl_codefeedback.feedback",
    "get_reward_funcs": "trl_codefeedback.feedback",
    # trainers (import TRL on first use)
    "CodeFeedbackGRPOConfig": "trl_codefeedback.trainers",
    "CodeFeedbackGRPOTrainer": "trl_codefeedback.trainers",
    # data
    "load_mbpp": "trl_codefeedback.data",
    "load_humaneval": "trl_codefeedback.data",
    "load_apps": "trl_codefeedback.data",
    "load_mbxp_python": "trl_codefeedback.data",
    # metrics
    "pass_at_k": "trl_codefeedback.metrics",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trl_codefeedback' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
