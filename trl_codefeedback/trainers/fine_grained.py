"""RLTF fine-grained feedback as per-token advantage terms (pure functions, no trainer needed).

For completion ``b`` with execution :class:`~trl_codefeedback.feedback.ScoredCompletion`
``r`` and token char spans ``spans`` (see :mod:`trl_codefeedback.feedback.token_mapping`):

* scope ``line``: the tokens overlapping the error line's char span get ``penalty * alpha``;
* scope ``global``: every token of the program (the extracted code; the whole completion
  when it holds no code) gets ``penalty * alpha``;
* scope ``ignore`` (and passed / wrong-answer / harness-error programs): nothing.

``alpha = T / (E - S)``: T the completion's token count, E - S the penalised token count
(RLTF eq. 5; the reference implementation omitted it). With the scaling the penalty carries
the same total weight however short the error span is.

Optionally (StepCoder's fine-grained optimisation) the tokens of code lines the tests never
executed get advantage 0, from ``Feedback.covered_lines``.

Example:
    >>> plan = token_plan(result, spans, num_tokens=len(ids), config=FineGrainedSettings())   # doctest: +SKIP
    >>> plan.penalized                                                                     # doctest: +SKIP
    [5, 6, 7]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from trl_codefeedback.execution.feedback import ErrorScope, Status
from trl_codefeedback.feedback.base import ScoredCompletion
from trl_codefeedback.feedback.token_mapping import tokens_in_span

# Statuses that carry an error location (RLTF gives fine-grained feedback for errors, not wrong answers).
ERROR_STATUSES = frozenset({Status.RUNTIME_ERROR, Status.COMPILE_ERROR, Status.TIMEOUT, Status.RESOURCE_LIMIT})
SCOPES = ("line", "global", "ignore")


@dataclass(frozen=True)
class FineGrainedSettings:
    """The knobs of the fine-grained term (mirrors the fields of ``CodeFeedbackGRPOConfig``)."""

    penalty: float = -0.3
    alpha_scaling: bool = True
    scopes: tuple[str, ...] = ("line", "global")
    mask_unexecuted: bool = False


@dataclass
class TokenPlan:
    """What the fine-grained step does to one completion's tokens."""

    penalized: list[int] = field(default_factory=list)  # token indices that get the penalty
    value: float = 0.0  # per-token term added to the advantage of each penalised token (penalty * alpha)
    unexecuted: list[int] = field(default_factory=list)  # token indices whose advantage is zeroed
    scope: str | None = None  # scope that applied, None when none did


def _code_span(r: ScoredCompletion) -> tuple[int, int]:
    ex = r.extracted
    if ex.is_empty:
        return 0, len(ex.text)
    return ex.start, ex.end


def token_plan(
    r: ScoredCompletion, spans: Sequence[tuple[int, int]], num_tokens: int, settings: FineGrainedSettings
) -> TokenPlan:
    """Which tokens of one completion are penalised (and which are masked as never executed)."""
    plan = TokenPlan()
    fb = r.feedback
    if fb.status in ERROR_STATUSES and fb.error_scope is not None:
        scope = fb.error_scope.value if isinstance(fb.error_scope, ErrorScope) else str(fb.error_scope)
        if scope in settings.scopes:
            span = None
            if scope == "line":
                span = r.error_span()
            elif scope == "global":
                span = _code_span(r)
            if span is not None:
                plan.penalized = [i for i in tokens_in_span(spans, *span) if i < num_tokens]
                if plan.penalized:
                    plan.scope = scope
                    alpha = num_tokens / len(plan.penalized) if settings.alpha_scaling else 1.0
                    plan.value = settings.penalty * alpha
    if settings.mask_unexecuted and fb.covered_lines is not None and fb.status is not Status.HARNESS_ERROR:
        covered = {line - r.prefix_lines for line in fb.covered_lines}
        if fb.error_line is not None:
            covered.add(fb.error_line)
        ex = r.extracted
        keep: set[int] = set()
        drop: set[int] = set()
        for line in range(1, ex.num_lines + 1):
            s, e = ex.line_span(line)
            if not ex.text[s:e].strip():
                continue  # blank lines: nothing to execute, nothing to mask
            (keep if line in covered else drop).update(tokens_in_span(spans, s, e))
        # a token shared by an executed and an unexecuted line keeps its update
        plan.unexecuted = sorted(i for i in drop - keep if i < num_tokens and i not in plan.penalized)
    return plan


def per_token_advantages(
    advantages: "torch.Tensor",  # noqa: F821
    completion_mask: "torch.Tensor",  # noqa: F821
    plans: Sequence[TokenPlan | None],
) -> "torch.Tensor":  # noqa: F821
    """(B,) sequence advantages + plans -> (B, T) per-token advantages (T = completion_mask.size(1))."""
    import torch

    B, T = completion_mask.shape
    if advantages.dim() == 2:
        out = advantages.clone().to(torch.float32)
    else:
        out = advantages.to(torch.float32).unsqueeze(1).expand(B, T).clone()
    for b, plan in enumerate(plans):
        if plan is None:
            continue
        if plan.penalized:
            idx = torch.tensor([i for i in plan.penalized if i < T], dtype=torch.long, device=out.device)
            out[b, idx] += plan.value
        if plan.unexecuted:
            idx = torch.tensor([i for i in plan.unexecuted if i < T], dtype=torch.long, device=out.device)
            out[b, idx] = 0.0
    return out * completion_mask.to(out.dtype)
