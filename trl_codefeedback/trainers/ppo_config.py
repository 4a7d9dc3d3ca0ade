"""Configuration of :class:`~trl_codefeedback.trainers.CodeFeedbackPPOTrainer`."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl_codefeedback.trainers.grpo_config import CodeFeedbackGRPOConfig

_MIN_GENERATIONS_MSG = "at least 2 generations"


@dataclass
class CodeFeedbackPPOConfig(CodeFeedbackGRPOConfig):
    r"""
    [`CodeFeedbackGRPOConfig`] (hence [`~trl.GRPOConfig`]) plus the PPO fields: a learned critic, GAE and
    per-token rewards (score on the last token, RLTF penalty on the error span, KL to the reference).

    Reused GRPO fields with their PPO meaning: `epsilon` / `epsilon_high` = the policy clip range
    (PPO `cliprange`, default 0.2); `num_iterations` = PPO epochs over each rollout batch (set through
    `num_ppo_epochs`); `steps_per_generation` = mini-batches per rollout; `num_generations` may be 1
    (PPO needs no group). `beta` must stay 0: the KL to the reference is in the reward (`kl_coef`),
    not in the loss. The fine-grained fields (`fine_grained*`, `mask_unexecuted_tokens`) are the
    GRPO trainer's: the penalty goes into the per-token reward instead of the advantage.

    Defaults follow TRL's removed `PPOConfig` (trl<=1.12, `trl.experimental.ppo`): `kl_coef=0.05`,
    `vf_coef=0.1`, `cliprange_value=0.2`, `gamma=1.0`, `lam=0.95`, `num_ppo_epochs=4`,
    `whiten_rewards=False`; the adaptive controller follows Ziegler et al. (2019): `horizon=10000`.
    `ddp_find_unused_parameters` defaults to `False` here (the critic forward runs outside the DDP forward).

    Parameters:
        num_ppo_epochs (`int`, *optional*, defaults to `4`):
            PPO epochs over each rollout batch; sets `num_iterations`.
        kl_coef (`float`, *optional*, defaults to `0.05`):
            Initial coefficient of the per-token KL penalty `-kl_coef * (logp - ref_logp)` in the reward.
        kl_target (`float` or `None`, *optional*, defaults to `None`):
            Target KL per sequence for the adaptive controller; `None` keeps `kl_coef` fixed.
        kl_horizon (`float`, *optional*, defaults to `10000`):
            Horizon of the adaptive KL controller.
        vf_coef (`float`, *optional*, defaults to `0.1`):
            Weight of the value loss in the total loss.
        cliprange_value (`float` or `None`, *optional*, defaults to `0.2`):
            Clip range of the value loss around the rollout values; `None` disables clipping.
        gamma (`float`, *optional*, defaults to `1.0`):
            Discount factor of GAE.
        lam (`float`, *optional*, defaults to `0.95`):
            Lambda of GAE.
        whiten_advantages (`bool`, *optional*, defaults to `True`):
            Whiten the advantages over the local batch (masked).
        whiten_rewards (`bool`, *optional*, defaults to `False`):
            Whiten the per-token rewards before GAE (keeping their mean).
        critic_lora_r (`int` or `None`, *optional*, defaults to `None`):
            Rank of the critic's LoRA adapter when the policy is a PEFT model; `None`: the policy adapter's config.
        value_head_init_std (`float`, *optional*, defaults to `0.0`):
            Std of the value head's initial weights (0: the critic starts by predicting 0).
    """

    num_ppo_epochs: int = field(default=4, metadata={"help": "PPO epochs over each rollout batch (sets num_iterations)."})
    kl_coef: float = field(default=0.05, metadata={"help": "Coefficient of the per-token KL penalty in the reward."})
    kl_target: float | None = field(
        default=None, metadata={"help": "Target KL per sequence for the adaptive KL controller (None: fixed kl_coef)."}
    )
    kl_horizon: float = field(default=10000.0, metadata={"help": "Horizon of the adaptive KL controller."})
    vf_coef: float = field(default=0.1, metadata={"help": "Weight of the value loss."})
    cliprange_value: float | None = field(
        default=0.2, metadata={"help": "Clip range of the value loss around the rollout values (None: no clipping)."}
    )
    gamma: float = field(default=1.0, metadata={"help": "GAE discount factor."})
    lam: float = field(default=0.95, metadata={"help": "GAE lambda."})
    whiten_advantages: bool = field(default=True, metadata={"help": "Whiten the advantages (masked, local batch)."})
    whiten_rewards: bool = field(default=False, metadata={"help": "Whiten the per-token rewards before GAE."})
    critic_lora_r: int | None = field(
        default=None, metadata={"help": "LoRA rank of the critic adapter (None: same config as the policy adapter)."}
    )
    value_head_init_std: float = field(default=0.0, metadata={"help": "Init std of the value head weights."})

    def __post_init__(self) -> None:
        if self.num_ppo_epochs < 1:
            raise ValueError(f"num_ppo_epochs must be >= 1, got {self.num_ppo_epochs}")
        if self.num_iterations not in (1, self.num_ppo_epochs):
            raise ValueError(
                f"num_iterations ({self.num_iterations}) and num_ppo_epochs ({self.num_ppo_epochs}) disagree; "
                "set num_ppo_epochs only"
            )
        self.num_iterations = self.num_ppo_epochs
        if self.ddp_find_unused_parameters is None:
            # The critic's forward runs outside the DDP-wrapped policy forward; with unused-parameter search DDP
            # would mark its parameters ready twice. Every trainable parameter gets a gradient each step anyway.
            self.ddp_find_unused_parameters = False
        if self.beta != 0.0:
            raise ValueError("beta must be 0 for PPO: the KL to the reference is in the per-token reward (kl_coef)")
        if self.num_generations == 1:
            # GRPOConfig rejects one generation per prompt (it needs a group); PPO does not.
            try:
                super().__post_init__()
            except ValueError as err:
                if _MIN_GENERATIONS_MSG not in str(err):
                    raise
                self._finish_grpo_post_init()
        else:
            super().__post_init__()
        if self.kl_target is not None and self.kl_target <= 0:
            raise ValueError("kl_target must be positive (or None for a fixed kl_coef)")

    def _finish_grpo_post_init(self) -> None:
        """The checks GRPOConfig.__post_init__ runs after its num_generations check (TRL 1.16)."""
        from trl_codefeedback.trainers.fine_grained import SCOPES

        if self.vllm_importance_sampling_cap is not None:
            self.vllm_importance_sampling_clip_max = self.vllm_importance_sampling_cap
        lo, hi = self.vllm_importance_sampling_clip_min, self.vllm_importance_sampling_clip_max
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError(f"vllm_importance_sampling_clip_min ({lo}) must be less than vllm_importance_sampling_clip_max ({hi}).")
        bad = [s for s in self.fine_grained_scopes if s not in SCOPES]
        if bad:
            raise ValueError(f"fine_grained_scopes has unknown scopes {bad}; expected some of {list(SCOPES)}")
