"""PPO with a learned critic and per-token execution-feedback rewards, on top of TRL's GRPOTrainer.

Why a subclass of our GRPO trainer (and so of TRL's ``GRPOTrainer``) rather than a PPO loop of its own:
TRL removed its ``PPOTrainer`` in 1.13; what it maintains is ``GRPOTrainer``, which already does
everything around the update that a PPO for code needs: prompt sampling and batching across
processes, generation (transformers, continuous batching or vLLM), calling the reward functions
with the dataset columns, PEFT / 4-bit wrapping, gradient checkpointing, buffering one generation
batch for several optimisation passes (``steps_per_generation`` x ``num_iterations`` = PPO
mini-batches x epochs), logging and the completions table. PPO differs from GRPO only in where the
advantages come from and in the loss, so this class overrides exactly two hooks:

* ``_generate_and_score_completions``: after TRL (and our GRPO subclass, which maps errors to
  tokens) has generated and scored, compute the rollout log-probs, the reference log-probs, the
  critic's values, the per-token rewards (score on the last token, RLTF penalty on the error span,
  ``-kl_coef * (logp - ref_logp)`` everywhere), then GAE advantages and returns (``gae.py``);
* ``compute_loss``: clipped policy loss + ``vf_coef`` x clipped value loss.

Where the critic lives (all its parameters are submodules of ``self.model``, so TRL/Trainer's
optimizer, DDP wrapping, gradient clipping and optimizer checkpoints cover them unchanged):

* ``shared`` (the policy is a PEFT model, e.g. 4-bit + LoRA): the critic is a second LoRA adapter
  ``"critic"`` on the same PeftModel plus a value head ``cf_value_head``; the reference is the base
  with adapters disabled. One (quantised) base in memory for policy, reference and critic.
* ``separate`` (full fine-tuning, or ``value_model=`` given): the critic is its own backbone
  (a copy of the policy's decoder, or ``value_model``'s) plus a value head, under ``cf_critic``;
  the reference is a frozen copy of the initial policy (or the PEFT base with adapters disabled).

Checkpoints: the policy is saved where TRL saves it (adapter or full weights at the root, loadable
alone); the critic goes to ``critic/`` (PEFT saves the critic adapter there itself; the value head,
or the separate critic's weights, are added as ``critic/value_head.safetensors`` /
``critic/critic.safetensors``); the optimizer state covers both; ``ppo_state.json`` keeps the KL
controller. ``resume_from_checkpoint`` restores all of it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import warnings
from typing import Any

import torch
from torch import nn

from trl_codefeedback.trainers.fine_grained import per_token_advantages
from trl_codefeedback.trainers.gae import (
    KLController,
    clipped_policy_loss,
    clipped_value_loss,
    compute_gae,
    masked_mean,
    masked_whiten,
    per_token_rewards,
)
from trl_codefeedback.trainers.grpo_trainer import CodeFeedbackGRPOTrainer
from trl_codefeedback.trainers.ppo_config import CodeFeedbackPPOConfig

logger = logging.getLogger(__name__)

CRITIC_ADAPTER = "critic"
VALUE_HEAD = "cf_value_head"
CRITIC_MODULE = "cf_critic"
CRITIC_DIR = "critic"
VALUE_HEAD_FILE = "value_head.safetensors"
CRITIC_FILE = "critic.safetensors"
PPO_STATE_FILE = "ppo_state.json"


def _is_peft_model(model: nn.Module) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover
        return False
    return isinstance(model, PeftModel)


def _has_trained_lora(model: nn.Module) -> bool:
    """True when a LoRA ``B`` matrix is non-zero (PEFT initialises B to 0, so the adapter changed the model)."""
    return any("lora_B" in n and p.detach().abs().sum().item() > 0 for n, p in model.named_parameters())


def _decoder(causal_lm: nn.Module) -> nn.Module:
    """The transformer body of a causal LM (``model.model`` for Llama/Qwen2), without the LM head."""
    prefix = getattr(causal_lm, "base_model_prefix", "model")
    body = getattr(causal_lm, prefix, None)
    if body is None and hasattr(causal_lm, "get_decoder"):
        body = causal_lm.get_decoder()
    return body if body is not None else causal_lm


def _hidden_size(model: nn.Module) -> int:
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return int(text.hidden_size)


def _make_value_head(hidden: int, std: float, device: torch.device) -> nn.Linear:
    head = nn.Linear(hidden, 1, dtype=torch.float32, device=device)
    with torch.no_grad():
        head.weight.normal_(0.0, std) if std > 0 else head.weight.zero_()
        head.bias.zero_()
    return head


class SeparateCritic(nn.Module):
    """A value model of its own: a transformer body plus a scalar head per position."""

    def __init__(self, backbone: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head


@contextlib.contextmanager
def _no_checkpointing(module: nn.Module):
    """Turn off gradient checkpointing inside ``module`` (transformers' per-layer flag) for one forward."""
    flagged = [m for m in module.modules() if getattr(m, "gradient_checkpointing", False) is True]
    for m in flagged:
        m.gradient_checkpointing = False
    try:
        yield
    finally:
        for m in flagged:
            m.gradient_checkpointing = True


class CodeFeedbackPPOTrainer(CodeFeedbackGRPOTrainer):
    r"""
    PPO with a learned critic for code LLMs trained from execution feedback (RLCF, Jain et al. 2023;
    RLTF's fine-grained penalties, Liu et al. 2023), built on TRL's [`~trl.GRPOTrainer`].

    Arguments are those of [`CodeFeedbackGRPOTrainer`] plus `value_model` (optional: a causal LM or a
    transformer body to use as a separate critic). With `peft_config` (or a 4-bit model + LoRA) the
    policy, the reference and the critic share one base model: the critic is a second LoRA adapter
    plus a value head, the reference is the base with adapters disabled.

    Per rollout, for each completion b and token t (see `trl_codefeedback.trainers.gae`):
    `r[b, t] = -kl_coef * (logp - ref_logp)[b, t] + fine[b, t] + score[b] * [t == last]`, with
    `score` the weighted sum of the reward functions and `fine` the RLTF penalty on the error span
    (same mapping and settings as the GRPO trainer); advantages and returns by GAE(`gamma`, `lam`);
    then `num_ppo_epochs` passes of clipped policy loss + `vf_coef` x clipped value loss.

    Logged: `ppo/policy_loss`, `ppo/value_loss`, `ppo/clipfrac`, `ppo/vf_clipfrac`, `ppo/approx_kl`,
    `ppo/kl` (per sequence, to the reference; only when a KL term is on), `ppo/kl_coef`, `ppo/score`,
    `ppo/values`, `ppo/returns`, `ppo/advantages_raw`, plus everything the GRPO trainer logs
    (`codefeedback/...`, rewards).

    Example:
        ```python
        import json
        from datasets import Dataset
        from peft import LoraConfig
        from trl_codefeedback.feedback import UnitTestReward
        from trl_codefeedback.trainers import CodeFeedbackPPOConfig, CodeFeedbackPPOTrainer

        dataset = Dataset.from_list([{
            "prompt": "Write a function add(a, b) returning a + b.\n",
            "tests": json.dumps({"kind": "asserts", "asserts": ["assert add(1, 2) == 3"]}),
        }] * 8)
        trainer = CodeFeedbackPPOTrainer(
            model="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            reward_funcs=[UnitTestReward(mode="adaptive")],
            args=CodeFeedbackPPOConfig(output_dir="out", num_generations=1, max_completion_length=128),
            train_dataset=dataset,
            peft_config=LoraConfig(r=16, target_modules="all-linear", task_type="CAUSAL_LM"),
        )
        trainer.train()
        ```
    """

    _tag_names = ["trl", "ppo", "trl-codefeedback", "rlcf", "rltf"]

    def __init__(self, *args: Any, value_model: nn.Module | None = None, **kwargs: Any) -> None:
        cfg = kwargs.get("args", args[2] if len(args) > 2 else None)
        if not isinstance(cfg, CodeFeedbackPPOConfig):
            raise TypeError("CodeFeedbackPPOTrainer needs args=CodeFeedbackPPOConfig(...)")
        user_peft_model = kwargs.get("peft_config") is None and _is_peft_model(kwargs.get("model", args[0] if args else None))
        super().__init__(*args, **kwargs)
        self.kl_ctl = KLController(self.args.kl_coef, self.args.kl_target, self.args.kl_horizon)
        if user_peft_model and self._kl_term_on() and _has_trained_lora(self.model):
            warnings.warn(
                "CodeFeedbackPPOTrainer got a PeftModel whose adapter is already trained: the KL reference is "
                "the base model with adapters disabled (as in TRL's GRPOTrainer), not that adapter. To keep "
                "the fine-tuned model as the reference, merge it first (model.merge_and_unload()) and pass "
                "peft_config for a fresh RL adapter.",
                UserWarning,
                stacklevel=2,
            )
        self._ppo_rewards_per_func: torch.Tensor | None = None
        self._cf_last_plans = None
        model = self.model
        device = next(model.parameters()).device
        policy_dtype = next((p.dtype for p in model.parameters() if p.requires_grad and p.is_floating_point()), None)
        self._ref_model: nn.Module | None = None
        if _is_peft_model(model) and value_model is None:
            self.critic_mode = "shared"
            lora = copy.deepcopy(model.peft_config["default"])
            lora.inference_mode = False
            if self.args.critic_lora_r is not None:
                lora.r = self.args.critic_lora_r
            model.add_adapter(CRITIC_ADAPTER, lora)
            model.set_adapter("default")
            for name, param in model.named_parameters():
                if f".{CRITIC_ADAPTER}." in name:
                    param.requires_grad_(True)
            head = _make_value_head(_hidden_size(model), self.args.value_head_init_std, device)
            model.add_module(VALUE_HEAD, head)
        else:
            if self._zero3():
                raise NotImplementedError(
                    "CodeFeedbackPPOTrainer under DeepSpeed ZeRO-3 needs the shared critic (a PEFT policy): the separate "
                    "critic and the reference are copied from the policy, whose parameters ZeRO-3 has sharded. "
                    "Use ZeRO-2, or LoRA (peft_config).")
            self.critic_mode = "separate"
            if not _is_peft_model(model):
                self._ref_model = self._copy_reference(model)
            if value_model is None:
                backbone = copy.deepcopy(_decoder(model))
            else:
                backbone = _decoder(value_model) if hasattr(value_model, "base_model_prefix") else value_model
                backbone = backbone.to(device)
            for p in backbone.parameters():
                p.requires_grad_(True)
            head = _make_value_head(_hidden_size(model), self.args.value_head_init_std, device)
            model.add_module(CRITIC_MODULE, SeparateCritic(backbone, head))
        if self._zero3() and policy_dtype is not None:
            # ZeRO-3 flattens all trainable parameters into one buffer of one dtype ("assert len(set(t.dtype ...)) == 1"
            # in deepspeed's defragment); TRL casts a QLoRA policy adapter to bf16, the critic's were made in fp32.
            for name, p in model.named_parameters():
                if p.is_floating_point() and p.dtype != policy_dtype and (f".{CRITIC_ADAPTER}." in name or VALUE_HEAD in name):
                    p.data = p.data.to(policy_dtype)
        self._trainable_flags = {n: p.requires_grad for n, p in model.named_parameters()}
        self._restore_trainable(model)
        self._wrap_vllm_sync()

    def _zero3(self) -> bool:
        plugin = getattr(self.accelerator.state, "deepspeed_plugin", None) if self.is_deepspeed_enabled else None
        return plugin is not None and plugin.zero_stage == 3

    # ---- model pieces ------------------------------------------------------------------

    def _copy_reference(self, model: nn.Module) -> nn.Module:
        from trl.trainer.utils import add_fused_lm_head

        ref = copy.deepcopy(model)
        ref.__dict__.pop("forward", None)  # the copied instance forward would still call the policy
        add_fused_lm_head(ref, temperature=self.temperature, cast_lm_head_to_fp32=self.args.cast_lm_head_to_fp32)
        ref.eval()
        for p in ref.parameters():
            p.requires_grad_(False)
        return ref

    def _unwrapped(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)

    def _restore_trainable(self, model: nn.Module) -> None:
        """PEFT's ``set_adapter`` freezes the inactive adapter; both adapters train here."""
        for n, p in model.named_parameters():
            want = self._trainable_flags.get(n)
            if want is None:
                want = ("lora_" in n) or (VALUE_HEAD in n) or (CRITIC_MODULE in n)
            if p.requires_grad != want and (p.is_floating_point() or p.is_complex()):
                p.requires_grad_(want)

    @contextlib.contextmanager
    def _critic_adapter(self, model: nn.Module):
        model.set_adapter(CRITIC_ADAPTER)
        try:
            yield
        finally:
            model.set_adapter("default")
            self._restore_trainable(model)

    @contextlib.contextmanager
    def _critic_detached(self, model: nn.Module | None = None):
        """Take the value head / separate critic out of the module tree (saving the policy, vLLM sync)."""
        model = model if model is not None else self._unwrapped()
        removed = {name: model._modules.pop(name) for name in (VALUE_HEAD, CRITIC_MODULE) if name in model._modules}
        try:
            yield model
        finally:
            model._modules.update(removed)

    def _wrap_vllm_sync(self) -> None:
        gen = getattr(self, "vllm_generation", None)
        if not getattr(self, "use_vllm", False) or gen is None or not hasattr(gen, "sync_weights"):
            return
        original = gen.sync_weights

        def sync_weights(*a, **k):
            with self._critic_detached():
                return original(*a, **k)

        gen.sync_weights = sync_weights

    def critic_values(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int, batch_size: int | None = None
    ) -> torch.Tensor:
        """(B, logits_to_keep) values: V at completion token t is read from the hidden state that predicts it."""
        model = self._unwrapped()
        if self.critic_mode != "shared":
            return self._values(model, input_ids, attention_mask, logits_to_keep, batch_size)
        # The critic adapter is only active inside this forward. Gradient checkpointing would recompute it during
        # the backward with the policy adapter active (wrong gradients), so here it stores its activations instead;
        # compute_loss avoids that cost on one process by running the critic's backward inside the adapter switch.
        with self._critic_adapter(model), _no_checkpointing(_decoder(model.get_base_model())):
            return self._values(model, input_ids, attention_mask, logits_to_keep, batch_size)

    def _values(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None) -> torch.Tensor:
        """Critic forward with whatever adapter is active (shared) or through the separate critic."""
        batch_size = batch_size or input_ids.size(0)
        out = []
        for start in range(0, input_ids.size(0), batch_size):
            ids = input_ids[start : start + batch_size]
            mask = attention_mask[start : start + batch_size]
            if self.critic_mode == "shared":
                head = model._modules[VALUE_HEAD]
                body = _decoder(model.get_base_model())
            else:
                critic = model._modules[CRITIC_MODULE]
                head, body = critic.head, critic.backbone
            with self.accelerator.autocast():
                hidden = body(input_ids=ids, attention_mask=mask).last_hidden_state
            hidden = hidden[:, -logits_to_keep - 1 : -1]
            out.append(head(hidden.to(head.weight.dtype)).squeeze(-1))
        return torch.cat(out, dim=0)

    def _inline_critic_backward(self) -> bool:
        """Shared critic + gradient checkpointing on one process: backward the value loss while the critic
        adapter is active, so its forward can stay checkpointed (one backward per call; DDP / DeepSpeed expect
        a single backward per step, so they take the activation-storing path instead)."""
        from accelerate.utils import DistributedType

        model = self._unwrapped()
        return (
            self.critic_mode == "shared"
            and self.model.training
            and torch.is_grad_enabled()
            and self.accelerator.num_processes == 1
            and self.accelerator.distributed_type != DistributedType.DEEPSPEED
            and any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules())
        )

    def _reference_logps(self, input_ids, attention_mask, logits_to_keep, batch_size) -> torch.Tensor:
        if self._ref_model is not None:
            logps, _, _ = self._get_per_token_logps_and_entropies(
                self._ref_model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size
            )
            return logps
        model = self._unwrapped()
        with model.disable_adapter():
            logps, _, _ = self._get_per_token_logps_and_entropies(
                self.model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size
            )
        return logps

    # ---- rollout: rewards, values, GAE --------------------------------------------------

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._ppo_rewards_per_func = rewards_per_func
        return rewards_per_func

    def _local_scores(self, n: int, device) -> torch.Tensor:
        """(n,) weighted sum of the reward functions for this process's completions; NaN = unscorable."""
        rpf = self._ppo_rewards_per_func
        if rpf is None:
            return torch.zeros(n, device=device)
        start = self.accelerator.process_index * n
        rpf = rpf[start : start + n].to(device)
        scores = (rpf * self.reward_weights.to(device).unsqueeze(0)).nansum(dim=1)
        scores[torch.isnan(rpf).all(dim=1)] = torch.nan
        return scores

    def _generate_and_score_completions(self, inputs):
        self._cf_last_plans = None
        self._ppo_rewards_per_func = None
        output = super()._generate_and_score_completions(inputs)
        return self.ppo_rollout(output, "train" if self.model.training else "eval")

    def ppo_rollout(self, output: dict[str, Any], mode: str = "train") -> dict[str, Any]:
        """Add the PPO tensors to TRL's scored generation batch ``output`` (prompt/completion ids and masks):
        rollout and reference log-probs, critic values, per-token rewards, GAE advantages and returns.
        Scores come from the reward functions of this batch (0 when none ran, e.g. in benchmarks)."""
        prompt_ids, prompt_mask = output["prompt_ids"], output["prompt_mask"]
        completion_ids, completion_mask = output["completion_ids"], output["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        T = completion_ids.size(1)
        n = completion_ids.size(0)
        device = completion_ids.device
        batch_size = self.args.per_device_train_batch_size if mode == "train" else self.args.per_device_eval_batch_size
        mask = completion_mask.float()
        if "tool_mask" in output:
            mask = mask * output["tool_mask"].float()

        with torch.no_grad():
            logps = output.get("old_per_token_logps")
            if logps is None:
                logps, _, _ = self._get_per_token_logps_and_entropies(
                    self.model, input_ids, attention_mask, T, batch_size=batch_size
                )
            ref_logps = None
            if self._kl_term_on():
                ref_logps = self._reference_logps(input_ids, attention_mask, T, batch_size)
            values = self.critic_values(input_ids, attention_mask, T, batch_size=batch_size).float() * mask

        scores = self._local_scores(n, device)
        valid = ~torch.isnan(scores)  # every reward None (e.g. harness errors): left out of the update
        scores = torch.nan_to_num(scores, nan=0.0)
        plans = self._cf_last_plans
        fine = None
        if plans is not None and any(p is not None and p.penalized for p in plans):
            fine = per_token_advantages(torch.zeros(n, device=device), completion_mask, plans)
        rewards, kl = per_token_rewards(scores, logps, ref_logps, mask, self.kl_ctl.value, fine)
        if self.args.whiten_rewards:
            rewards = masked_whiten(rewards, mask, shift_mean=False)
        advantages, returns = compute_gae(rewards, values, mask, self.args.gamma, self.args.lam)
        raw_advantages = advantages
        if self.args.whiten_advantages:
            advantages = masked_whiten(advantages, mask)
        if plans is not None:
            for b, plan in enumerate(plans):
                if plan is not None and plan.unexecuted:
                    idx = torch.tensor([i for i in plan.unexecuted if i < T], dtype=torch.long, device=device)
                    advantages[b, idx] = 0.0  # StepCoder: no update on code the tests never ran
        ppo_mask = mask * valid.float().unsqueeze(1)

        output["advantages"] = advantages * ppo_mask
        self._log_ppo_advantages(output["advantages"][:, 0])
        output["returns"] = returns
        output["old_values"] = values
        output["old_per_token_logps"] = logps
        output["ppo_mask"] = ppo_mask
        output["ppo_rewards"] = rewards

        # metrics (summed over processes)
        seq_kl = (kl * mask).sum(1)
        local = torch.stack(
            [
                seq_kl.sum(),
                scores[valid].sum(),
                valid.float().sum(),
                (values * mask).sum(),
                (returns * mask).sum(),
                (raw_advantages * mask).sum(),
                mask.sum(),
                torch.tensor(float(n), device=device),
            ]
        ).double()
        kl_sum, score_sum, n_valid, v_sum, r_sum, a_sum, tok, n_all = self.accelerator.reduce(local, reduction="sum").tolist()
        metrics = self._metrics[mode]
        mean_kl = kl_sum / max(n_all, 1.0)
        if ref_logps is not None:  # without a KL term the reference is not run
            metrics["ppo/kl"].append(mean_kl)
        metrics["ppo/kl_coef"].append(self.kl_ctl.value)
        metrics["ppo/score"].append(score_sum / max(n_valid, 1.0))
        metrics["ppo/values"].append(v_sum / max(tok, 1.0))
        metrics["ppo/returns"].append(r_sum / max(tok, 1.0))
        metrics["ppo/advantages_raw"].append(a_sum / max(tok, 1.0))
        if mode == "train":
            self.kl_ctl.update(mean_kl, int(n_all))
        return output

    def _kl_term_on(self) -> bool:
        """Whether rewards carry a KL term (a coefficient, or a target for the adaptive controller): only then is the reference run."""
        return self.kl_ctl.value != 0.0 or self.args.kl_target is not None

    def _log_table_advantages(self, sequence_advantages, token_advantages, completion_mask) -> None:
        """Nothing here: the group advantages are not PPO's; :meth:`_log_ppo_advantages` fills the table."""

    def _log_ppo_advantages(self, first_token_advantages: torch.Tensor) -> None:
        """Show the PPO advantage (at each completion's first token) in the completions table.

        TRL logged its group advantage there, which is 0 with one generation per prompt.
        """
        gathered = self.accelerator.gather(first_token_advantages.float().contiguous()).tolist()
        logged = self._logs["advantages"]
        for _ in range(min(len(gathered), len(logged))):
            logged.pop()
        logged.extend(gathered)

    # ---- loss ------------------------------------------------------------------------------

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise ValueError("CodeFeedbackPPOTrainer does not support returning outputs")
        mode = "train" if self.model.training else "eval"
        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        T = completion_ids.size(1)
        mask = inputs["ppo_mask"]

        scale = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        # critic first: its adapter is switched back before the policy forward (see critic_values)
        if self._inline_critic_backward():
            unwrapped = self._unwrapped()
            with self._critic_adapter(unwrapped):
                values = self._values(unwrapped, input_ids, attention_mask, T)
                vf_loss, vf_clipfrac = clipped_value_loss(
                    values, inputs["old_values"], inputs["returns"], mask, self.args.cliprange_value
                )
                self.accelerator.backward(self.args.vf_coef * vf_loss / scale)
            vf_loss = vf_loss.detach()  # its gradient is in; the returned loss still reports it
        else:
            values = self.critic_values(input_ids, attention_mask, T)
            vf_loss, vf_clipfrac = clipped_value_loss(
                values, inputs["old_values"], inputs["returns"], mask, self.args.cliprange_value
            )
        logps, entropies, _ = self._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, T, compute_entropy=True
        )
        pg_loss, clipfrac, approx_kl = clipped_policy_loss(
            logps, inputs["old_per_token_logps"], inputs["advantages"], mask, self.epsilon_low, self.epsilon_high
        )
        loss = (pg_loss + self.args.vf_coef * vf_loss) / scale

        stats = torch.stack(
            [pg_loss.detach(), vf_loss.detach(), clipfrac, vf_clipfrac.to(clipfrac), approx_kl,
             masked_mean(entropies.detach(), mask)]
        ).float()
        stats = self.accelerator.reduce(stats, reduction="mean").tolist()
        metrics = self._metrics[mode]
        for name, value in zip(("policy_loss", "value_loss", "clipfrac", "vf_clipfrac", "approx_kl", "entropy"), stats):
            metrics[f"ppo/{name}"].append(value)
        return loss

    # ---- checkpoints ------------------------------------------------------------------------

    def _save(self, output_dir: str | None = None, state_dict=None):
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if state_dict is not None:
            state_dict = {k: v for k, v in state_dict.items() if VALUE_HEAD not in k and CRITIC_MODULE not in k}
        with self._critic_detached():
            super()._save(output_dir, state_dict=state_dict)
        self.save_critic(os.path.join(output_dir, CRITIC_DIR))

    def save_critic(self, directory: str) -> None:
        """Write the critic's own weights (value head; the whole separate critic) into ``directory``.

        In the shared setup PEFT writes the critic adapter into the same folder when the policy is saved.
        """
        from safetensors.torch import save_file

        os.makedirs(directory, exist_ok=True)
        model = self._unwrapped()
        if self.critic_mode == "shared":
            state = model._modules[VALUE_HEAD].state_dict()
            save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, os.path.join(directory, VALUE_HEAD_FILE))
        else:
            state = model._modules[CRITIC_MODULE].state_dict()
            save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, os.path.join(directory, CRITIC_FILE))

    def load_critic(self, directory: str) -> None:
        """Load what :meth:`save_critic` (and PEFT, for the critic adapter) wrote into ``directory``."""
        from safetensors.torch import load_file

        model = self._unwrapped()
        if self.critic_mode == "shared":
            adapter = os.path.join(directory, "adapter_model.safetensors")
            if os.path.isfile(adapter):
                from peft import set_peft_model_state_dict

                set_peft_model_state_dict(model, load_file(adapter), adapter_name=CRITIC_ADAPTER)
            head = model._modules[VALUE_HEAD]
            head.load_state_dict({k: v.to(head.weight.device) for k, v in load_file(os.path.join(directory, VALUE_HEAD_FILE)).items()})
        else:
            critic = model._modules[CRITIC_MODULE]
            missing, unexpected = critic.load_state_dict(load_file(os.path.join(directory, CRITIC_FILE)), strict=False)
            if unexpected or [k for k in missing if "rotary" not in k]:
                raise ValueError(f"critic checkpoint does not match: missing {missing}, unexpected {unexpected}")
        self._restore_trainable(model)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        target = model if model is not None else self.model
        with self._critic_detached(self.accelerator.unwrap_model(target)):
            super()._load_from_checkpoint(resume_from_checkpoint, model=model)
        self.load_critic(os.path.join(resume_from_checkpoint, CRITIC_DIR))

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            with open(os.path.join(folder, PPO_STATE_FILE), "w") as f:
                json.dump({"kl_ctl": self.kl_ctl.state_dict(), "critic_mode": self.critic_mode}, f)

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None:
            path = os.path.join(checkpoint, PPO_STATE_FILE)
            if os.path.isfile(path):
                with open(path) as f:
                    self.kl_ctl.load_state_dict(json.load(f)["kl_ctl"])

    # ---- hub ----------------------------------------------------------------------------

    def save_policy(self, output_dir: str) -> str:
        """Save the policy alone (adapter or full weights, no critic) plus the tokenizer into ``output_dir``."""
        model = self._unwrapped()
        with self._critic_detached(model):
            if _is_peft_model(model):
                model.save_pretrained(output_dir, selected_adapters=["default"])
            else:
                model.save_pretrained(output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        return output_dir

    def push_to_hub(self, commit_message: str | None = None, blocking: bool = True, token: str | None = None,
                    revision: str | None = None, dataset: str | None = None, eval_results: dict | None = None, **kwargs):
        """Push the policy (not the critic) with a model card that records the feedback configuration."""
        from huggingface_hub import HfApi

        from trl_codefeedback.hub import save_model_card

        if not self.is_world_process_zero():
            return None
        out = self.save_policy(os.path.join(self.args.output_dir, "policy"))
        base = getattr(getattr(self._unwrapped(), "config", None), "_name_or_path", None)
        save_model_card(out, base_model=base, dataset=dataset, reward_funcs=self.reward_funcs, trainer_args=self.args,
                        eval_results=eval_results, model_name=self.args.hub_model_id)
        repo_id = self.args.hub_model_id or os.path.basename(os.path.normpath(self.args.output_dir))
        api = HfApi(token=token or self.args.hub_token)
        api.create_repo(repo_id, exist_ok=True, private=self.args.hub_private_repo)
        api.upload_folder(folder_path=out, repo_id=repo_id, revision=revision,
                          commit_message=commit_message or "trl-codefeedback PPO: policy trained with execution feedback")
        return repo_id
