"""Configuration of :class:`~trl_codefeedback.trainers.CodeFeedbackGRPOTrainer`."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig

from trl_codefeedback.trainers.fine_grained import SCOPES


@dataclass
class CodeFeedbackGRPOConfig(GRPOConfig):
    r"""
    [`~trl.GRPOConfig`] plus RLTF's fine-grained (token-level) execution feedback.

    Every GRPO field keeps its TRL meaning and default. The fields below only act when an
    execution reward (e.g. [`~trl_codefeedback.feedback.UnitTestReward`]) is among the
    trainer's `reward_funcs`; coarse / adaptive feedback is the reward object's `mode`.

    Parameters:
        fine_grained (`bool`, *optional*, defaults to `True`):
            Add RLTF's fine-grained term to the per-token advantages.
        fine_grained_penalty (`float`, *optional*, defaults to `-0.3`):
            R_fine of the RLTF paper (Liu et al. 2023, Sec. 3.3): value added on the blamed tokens.
        fine_grained_alpha_scaling (`bool`, *optional*, defaults to `True`):
            Scale the penalty by alpha = T / (E - S) (completion tokens / penalised tokens), RLTF eq. 5.
            The reference code omitted it; `False` reproduces that.
        fine_grained_scopes (`list[str]`, *optional*, defaults to `["line", "global"]`):
            Error scopes that get the penalty (RLTF: line -> the error line's tokens, global -> the
            whole program; ignore -> never penalised).
        fine_grained_reward (`str` or `None`, *optional*, defaults to `None`):
            `__name__` of the execution reward whose feedback drives the term; `None`: the first one.
        mask_unexecuted_tokens (`bool`, *optional*, defaults to `False`):
            StepCoder's fine-grained optimisation: tokens of code lines the tests never executed get
            advantage 0 (no policy-gradient update). Turns on coverage recording in the reward
            (Python only; other languages report no coverage and are left unmasked).
    """

    fine_grained: bool = field(
        default=True, metadata={"help": "Add RLTF's fine-grained (error-location) term to the per-token advantages."}
    )
    fine_grained_penalty: float = field(
        default=-0.3, metadata={"help": "RLTF R_fine: value added on the tokens blamed for an error (paper: -0.3)."}
    )
    fine_grained_alpha_scaling: bool = field(
        default=True,
        metadata={
            "help": "Scale the penalty by alpha = T / (E - S) (completion tokens / penalised tokens), RLTF eq. 5."
        },
    )
    fine_grained_scopes: list[str] = field(
        default_factory=lambda: ["line", "global"],
        metadata={"help": "Error scopes that get the penalty: any of 'line', 'global' ('ignore' is never penalised)."},
    )
    fine_grained_reward: str | None = field(
        default=None,
        metadata={"help": "__name__ of the execution reward that drives the term (default: the first one)."},
    )
    mask_unexecuted_tokens: bool = field(
        default=False,
        metadata={
            "help": "StepCoder: zero the advantage of tokens of code lines the tests never executed (needs coverage)."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [s for s in self.fine_grained_scopes if s not in SCOPES]
        if bad:
            raise ValueError(f"fine_grained_scopes has unknown scopes {bad}; expected some of {list(SCOPES)}")
