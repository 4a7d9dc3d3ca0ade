"""PPO building blocks as pure tensor functions: per-token rewards, GAE, whitening, KL controllers.

Shapes: ``(B, T)`` over the completion tokens; ``mask`` is 1 on real tokens, 0 on padding
(TRL masks everything after the first EOS, so the real tokens form a prefix of each row).

Per-token reward of completion ``b`` (RLHF/RLCF convention, Ziegler et al. 2019; Stiennon et al. 2020):

    r[b, t] = -kl_coef * (logp[b, t] - ref_logp[b, t])      every real token
            + fine[b, t]                                      RLTF error-span penalty (0 elsewhere)
            + score[b]                                        on the last real token only

Example:
    >>> import torch
    >>> mask = torch.tensor([[1., 1., 0.]])
    >>> adv, ret = compute_gae(torch.tensor([[0., 1., 0.]]), torch.zeros(1, 3), mask, gamma=1.0, lam=1.0)
    >>> adv.tolist(), ret.tolist()
    ([[1.0, 1.0, 0.0]], [[1.0, 1.0, 0.0]])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is 1 (0 when there are none)."""
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1.0)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    mask = mask.to(x.dtype)
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    n = mask.sum()
    if unbiased and n > 1:
        var = var * n / (n - 1)
    return var


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """(x - mean) / std over the masked positions; padding stays 0. ``shift_mean=False`` keeps the mean."""
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        out = out + mean
    return out * mask.to(x.dtype)


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """(B,) index of the last real token of each row (-1 for an empty row)."""
    T = mask.size(1)
    pos = torch.arange(T, device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), pos, torch.full_like(pos, -1)).max(dim=1).values


def per_token_rewards(
    scores: torch.Tensor,
    logps: torch.Tensor,
    ref_logps: torch.Tensor | None,
    mask: torch.Tensor,
    kl_coef: float,
    fine: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rewards, kl)``, both (B, T): the sequence score on the last real token, the fine-grained
    term ``fine`` where it is non-zero, ``-kl_coef * kl`` on every real token (``kl = logp - ref_logp``,
    the k1 estimator of the old TRL PPOTrainer). Padding gets 0."""
    mask_f = mask.to(torch.float32)
    if ref_logps is None:
        kl = torch.zeros_like(mask_f)
    else:
        kl = (logps.float() - ref_logps.float()) * mask_f
    rewards = -kl_coef * kl
    if fine is not None:
        rewards = rewards + fine.float() * mask_f
    last = last_token_index(mask)
    rows = torch.nonzero(last >= 0, as_tuple=True)[0]
    if rows.numel():
        rewards[rows, last[rows]] += scores.to(rewards.dtype)[rows]
    return rewards * mask_f, kl


def compute_gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) over the completion tokens.

    ``delta_t = r_t + gamma * V_{t+1} * m_{t+1} - V_t``, ``A_t = delta_t + gamma * lam * m_{t+1} * A_{t+1}``:
    the episode ends after the last real token (its successor's value and advantage count 0), padding
    gets advantage and return 0. Returns ``(advantages, returns = advantages + values)``.
    """
    mask_f = mask.to(torch.float32)
    values = values.float() * mask_f
    rewards = rewards.float() * mask_f
    B, T = rewards.shape
    advantages = torch.zeros_like(rewards)
    last = torch.zeros(B, dtype=rewards.dtype, device=rewards.device)
    for t in reversed(range(T)):
        if t + 1 < T:
            next_mask = mask_f[:, t + 1]
            next_value = values[:, t + 1] * next_mask
        else:
            next_mask = torch.zeros_like(last)
            next_value = torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = (delta + gamma * lam * next_mask * last) * mask_f[:, t]
        advantages[:, t] = last
    returns = (advantages + values) * mask_f
    return advantages, returns


def clipped_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO value loss ``0.5 * max((V - R)^2, (clip(V, V_old +- clip) - R)^2)`` averaged over real tokens,
    and the fraction of tokens where the clipped term was larger."""
    loss1 = (values - returns) ** 2
    if clip is None:
        return 0.5 * masked_mean(loss1, mask), torch.zeros((), device=values.device)
    clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    loss2 = (clipped - returns) ** 2
    return 0.5 * masked_mean(torch.max(loss1, loss2), mask), masked_mean((loss2 > loss1).float(), mask)


def clipped_policy_loss(
    logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, eps_low: float, eps_high: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO clipped surrogate ``max(-A r, -A clip(r, 1-eps_low, 1+eps_high))`` averaged over real tokens;
    also the clipped fraction and the approximate KL ``0.5 * (logp - old)^2`` (for logging)."""
    log_ratio = logps - old_logps
    ratio = torch.exp(log_ratio)
    loss1 = -advantages * ratio
    loss2 = -advantages * torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    loss = masked_mean(torch.max(loss1, loss2), mask)
    clipfrac = masked_mean((loss2 > loss1).float(), mask)
    approx_kl = 0.5 * masked_mean(log_ratio.detach() ** 2, mask)
    return loss, clipfrac, approx_kl


@dataclass
class KLController:
    """The KL coefficient: fixed (``target=None``) or adaptive (Ziegler et al. 2019, sec. 2.2):
    ``coef *= 1 + clip(KL / target - 1, -0.2, 0.2) * n_steps / horizon``."""

    value: float
    target: float | None = None
    horizon: float = 10000.0

    def update(self, current_kl: float, n_steps: int) -> float:
        if self.target is not None and math.isfinite(current_kl):
            error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
            self.value *= 1.0 + error * n_steps / self.horizon
        return self.value

    def state_dict(self) -> dict:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict) -> None:
        self.value = float(state["value"])
