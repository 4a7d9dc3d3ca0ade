"""Running untrusted code: sandbox, worker pool, cache, one module per language."""

from trl_codefeedback.execution.executor import Executor, execute, get_default_executor
from trl_codefeedback.execution.feedback import ErrorScope, Feedback, Status, TestOutcome
from trl_codefeedback.execution.program import LANGUAGES, Limits, Program, UnknownLanguageError
from trl_codefeedback.execution.ray_backend import RayExecutor  # ray itself is imported on first use
from trl_codefeedback.execution.specs import TestSpecError, parse_test_spec, spec_to_dict

__all__ = [
    "Executor",
    "RayExecutor",
    "execute",
    "get_default_executor",
    "ErrorScope",
    "Feedback",
    "Status",
    "TestOutcome",
    "LANGUAGES",
    "Limits",
    "Program",
    "UnknownLanguageError",
    "TestSpecError",
    "parse_test_spec",
    "spec_to_dict",
]
