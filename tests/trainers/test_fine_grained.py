"""token_plan / per_token_advantages: scopes, alpha scaling, StepCoder masking of unexecuted lines."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from trl_codefeedback.execution.feedback import ErrorScope, Feedback, Status  # noqa: E402
from trl_codefeedback.feedback.base import ScoredCompletion  # noqa: E402
from trl_codefeedback.feedback.extract import extract_code  # noqa: E402
from trl_codefeedback.trainers.fine_grained import (  # noqa: E402
    FineGrainedSettings,
    TokenPlan,
    per_token_advantages,
    token_plan,
)

TEXT = "def f(x):\n    if x:\n        return 1\n    return y\n"


def _char_spans(text):  # one token per char: makes expectations easy to write
    return [(i, i + 1) for i in range(len(text))]


def _scored(status, line=None, scope=None, covered=None, prefix_lines=0):
    fb = Feedback(status=status, error_line=line, error_scope=scope, covered_lines=covered)
    return ScoredCompletion(fb, extract_code(TEXT), prefix_lines, line, False, -0.6)


def test_line_scope_and_alpha():
    r = _scored(Status.RUNTIME_ERROR, 4, ErrorScope.LINE)
    plan = token_plan(r, _char_spans(TEXT), len(TEXT), FineGrainedSettings())
    assert "".join(TEXT[i] for i in plan.penalized) == "    return y"
    assert plan.value == pytest.approx(-0.3 * len(TEXT) / 12)
    flat = token_plan(r, _char_spans(TEXT), len(TEXT), FineGrainedSettings(alpha_scaling=False))
    assert flat.value == pytest.approx(-0.3)


def test_global_ignore_and_wrong_answer():
    spans, n = _char_spans(TEXT), len(TEXT)
    assert len(token_plan(_scored(Status.TIMEOUT, None, ErrorScope.GLOBAL), spans, n, FineGrainedSettings()).penalized) == n
    assert not token_plan(_scored(Status.COMPILE_ERROR, 2, ErrorScope.IGNORE), spans, n, FineGrainedSettings()).penalized
    assert not token_plan(_scored(Status.FAILED, None, None), spans, n, FineGrainedSettings()).penalized
    only_line = FineGrainedSettings(scopes=("line",))
    assert not token_plan(_scored(Status.TIMEOUT, None, ErrorScope.GLOBAL), spans, n, only_line).penalized


def test_mask_unexecuted_lines_with_prefix_offset():
    # program = 1 prefix line + code; the worker reports program lines: code lines 1, 2, 4 ran, 3 did not
    r = _scored(Status.PASSED, covered=[2, 3, 5], prefix_lines=1)
    plan = token_plan(r, _char_spans(TEXT), len(TEXT), FineGrainedSettings(mask_unexecuted=True))
    assert "".join(TEXT[i] for i in plan.unexecuted) == "        return 1"
    assert not token_plan(r, _char_spans(TEXT), len(TEXT), FineGrainedSettings()).unexecuted  # off by default


def test_per_token_advantages():
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    out = per_token_advantages(adv, mask, [TokenPlan(unexecuted=[1]), TokenPlan(penalized=[2, 3], value=-0.5)])
    assert out.tolist() == [[1.0, 0.0, 1.0, 0.0], [-1.0, -1.0, -1.5, -1.5]]
