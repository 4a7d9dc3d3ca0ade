"""GRPO with RLTF fine-grained execution feedback: per-token advantages at error locations."""

from __future__ import annotations

import inspect
import logging
import warnings
from typing import Any

import torch
from accelerate.utils import gather_object
from trl import GRPOTrainer

from trl_codefeedback.execution.feedback import Status
from trl_codefeedback.feedback.base import ExecutionReward
from trl_codefeedback.feedback.extract import completion_text
from trl_codefeedback.feedback.token_mapping import token_char_spans
from trl_codefeedback.trainers.fine_grained import FineGrainedSettings, TokenPlan, per_token_advantages, token_plan

logger = logging.getLogger(__name__)

METRIC_PREFIX = "codefeedback"


def _execution_rewards(reward_funcs: Any) -> list[ExecutionReward]:
    funcs = reward_funcs if isinstance(reward_funcs, (list, tuple)) else [reward_funcs]
    # An AsyncReward (reward.as_async()) wraps the execution reward that holds the Feedback.
    return [r for r in (getattr(f, "reward", f) for f in funcs) if isinstance(r, ExecutionReward)]


def validate_datasets(*args: Any, **kwargs: Any) -> None:
    """Check the train (and eval) data set against each execution reward of a ``GRPOTrainer(...)`` call.

    Every row's test spec is parsed with the executor's own parser, its kind checked against the
    row's language; a missing tests column, an unknown language or a malformed row raises naming
    the data set's row index and ``task_id``; Java rows need a JDK here. Nothing is loaded or run.
    """
    try:
        bound = inspect.signature(GRPOTrainer.__init__).bind_partial(None, *args, **kwargs).arguments
    except TypeError:
        return  # GRPOTrainer's own error, with its own message
    rewards = _execution_rewards(bound.get("reward_funcs"))
    datasets = [("train_dataset", bound.get("train_dataset"))]
    evals = bound.get("eval_dataset")
    if isinstance(evals, dict):
        datasets += [(f"eval_dataset[{k!r}]", v) for k, v in evals.items()]
    else:
        datasets.append(("eval_dataset", evals))
    for reward in rewards:
        for name, dataset in datasets:
            reward.validate_dataset(dataset, name)
        reward.check_host()


class CodeFeedbackGRPOTrainer(GRPOTrainer):
    r"""
    [`~trl.GRPOTrainer`] whose advantages are per token: the group-relative sequence advantage
    plus RLTF's fine-grained penalty on the tokens that caused an execution error.

    A drop-in replacement: swap `GRPOTrainer` for it (and `GRPOConfig` for
    [`CodeFeedbackGRPOConfig`], or keep a plain `GRPOConfig`: the fine-grained defaults apply).
    The execution reward in `reward_funcs` (e.g. [`~trl_codefeedback.feedback.UnitTestReward`],
    coarse or adaptive) supplies the scalar reward *and* the error locations; plain callables
    and reward models work next to it as in TRL. Without an execution reward the trainer is
    plain GRPO.

    Per step and process, for each local completion: error line (in the extracted code)
    -> char span in the completion text -> token indices (exact incremental decoding of the
    generated ids, see [`~trl_codefeedback.feedback.token_mapping.token_char_spans`]) ->
    `A[b, t] = A_seq[b] + penalty * T / (E - S)` on those tokens. TRL's `_compute_loss` accepts the
    (B, T) advantages. Everything is computed on the process's own slice of the batch (the reward
    objects only see local completions), so the rows line up with TRL's `process_slice`.

    Logged per step (averaged over processes), next to the reward's own `<name>/<status>`,
    `<name>/pass_ratio` and `<name>/truncated`: `codefeedback/penalized_token_frac`,
    `codefeedback/unexecuted_token_frac`, `codefeedback/unmapped`. The completions table
    (`log_completions=True`) shows as `advantage` the mean per-token advantage the loss used,
    and gets the reward's `<name>/status`, `<name>/error_type`, `<name>/error_line` columns,
    `codefeedback/penalized_tokens` and `codefeedback/sequence_advantage` (TRL's group advantage).

    Example:
        ```python
        import json
        from datasets import Dataset
        from trl_codefeedback.feedback import UnitTestReward
        from trl_codefeedback.trainers import CodeFeedbackGRPOConfig, CodeFeedbackGRPOTrainer

        dataset = Dataset.from_list([{
            "prompt": "Write a function add(a, b) returning a + b.\n",
            "tests": json.dumps({"kind": "asserts", "asserts": ["assert add(1, 2) == 3"]}),
        }] * 8)
        trainer = CodeFeedbackGRPOTrainer(
            model="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            reward_funcs=[UnitTestReward(mode="adaptive")],
            args=CodeFeedbackGRPOConfig(output_dir="out", max_completion_length=128),
            train_dataset=dataset,
        )
        trainer.train()
        ```
    """

    _tag_names = ["trl", "grpo", "trl-codefeedback", "rltf"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        validate_datasets(*args, **kwargs)  # before the model loads: a bad row or a missing JDK fails here
        super().__init__(*args, **kwargs)
        self._execution_reward = self._find_execution_reward()
        if self._execution_reward is not None:
            if self._execution_reward.max_completion_length is None:
                self._execution_reward.attach_trainer(self)
            if self._setting("mask_unexecuted_tokens", False):
                self._execution_reward.coverage = True
        self._cf_completions: list[Any] | None = None
        self._cf_completion_ids: list[list[int]] | None = None
        self._cf_warned_unmapped = False

    # ---- configuration -----------------------------------------------------------------

    def _setting(self, name: str, default: Any) -> Any:
        return getattr(self.args, name, default)

    def _settings(self) -> FineGrainedSettings:
        return FineGrainedSettings(
            penalty=float(self._setting("fine_grained_penalty", -0.3)),
            alpha_scaling=bool(self._setting("fine_grained_alpha_scaling", True)),
            scopes=tuple(self._setting("fine_grained_scopes", ["line", "global"])) if self._setting("fine_grained", True) else (),
            mask_unexecuted=bool(self._setting("mask_unexecuted_tokens", False)),
        )

    def _find_execution_reward(self) -> ExecutionReward | None:
        wanted = self._setting("fine_grained_reward", None)
        found = _execution_rewards(self.reward_funcs)
        if wanted is not None:
            found = [f for f in found if f.__name__ == wanted]
            if not found:
                raise ValueError(f"fine_grained_reward={wanted!r} names no execution reward in reward_funcs")
        return found[0] if found else None

    # ---- hooks into GRPOTrainer --------------------------------------------------------

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # Keep the local completions (text as the rewards saw it, and ids) for the token mapping.
        self._cf_completions = list(completions)
        self._cf_completion_ids = [list(map(int, ids)) for ids in completion_ids_list]
        return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        reward = self._execution_reward
        if reward is None:
            return output
        mode = "train" if self.model.training else "eval"
        completion_mask = output["completion_mask"]
        results = reward.last_results
        texts = self._cf_completions or []
        ids_list = self._cf_completion_ids or []
        n = completion_mask.size(0)
        plans: list[TokenPlan | None] = [None] * n
        unmapped = 0
        if len(results) == n == len(texts) == len(ids_list):
            settings = self._settings()
            for b in range(n):
                r = results[b]
                text = completion_text(texts[b])
                if r.extracted.text != text:
                    unmapped += 1  # the reward saw another batch: never blame the wrong tokens
                    continue
                if r.feedback.status in (Status.PASSED, Status.FAILED, Status.HARNESS_ERROR) and not (
                    settings.mask_unexecuted
                ):
                    plans[b] = TokenPlan()
                    continue
                try:
                    spans = token_char_spans(self.processing_class, ids_list[b], text)
                except ValueError:
                    unmapped += 1
                    continue
                num_tokens = int(completion_mask[b].sum().item())
                plans[b] = token_plan(r, spans, num_tokens, settings)
        else:
            unmapped = n
        if unmapped and not self._cf_warned_unmapped:
            self._cf_warned_unmapped = True
            warnings.warn(
                f"CodeFeedbackGRPOTrainer: {unmapped} of {n} completions could not be mapped to tokens "
                "(reward results out of step with the batch, or text not found in the decoded ids); "
                "they get the plain sequence advantage.",
                RuntimeWarning,
                stacklevel=2,
            )
        self._cf_last_plans = plans  # read by subclasses (the PPO trainer puts the penalty into its rewards)
        sequence_advantages = output["advantages"]
        output["advantages"] = per_token_advantages(sequence_advantages, completion_mask, plans)
        self._log_fine_grained(mode, results if len(results) == n else [], plans, completion_mask, unmapped)
        self._log_table_advantages(sequence_advantages, output["advantages"], completion_mask)
        return output

    # ---- logging -----------------------------------------------------------------------

    def _log_fine_grained(self, mode, results, plans, completion_mask, unmapped) -> None:
        # Status fractions and pass ratio are the reward's own metrics (`<reward>/<status>`,
        # `<reward>/pass_ratio`, averaged over processes by TRL); only the token-level figures are ours.
        device = self.accelerator.device
        n = completion_mask.size(0)
        tokens = float(completion_mask.sum().item())
        penalized = float(sum(len(p.penalized) for p in plans if p is not None))
        unexecuted = float(sum(len(p.unexecuted) for p in plans if p is not None))
        local = torch.tensor([penalized, unexecuted, tokens, float(unmapped), float(n)], dtype=torch.float64, device=device)
        pen, unexe, tok, unm, num = self.accelerator.gather(local.unsqueeze(0)).sum(dim=0).tolist()
        metrics = self._metrics[mode]
        metrics[f"{METRIC_PREFIX}/penalized_token_frac"].append(pen / tok if tok else 0.0)
        metrics[f"{METRIC_PREFIX}/unexecuted_token_frac"].append(unexe / tok if tok else 0.0)
        metrics[f"{METRIC_PREFIX}/unmapped"].append(unm / num if num else 0.0)
        column = [len(p.penalized) if p is not None else 0 for p in plans]
        self._logs["extra"][f"{METRIC_PREFIX}/penalized_tokens"].extend(gather_object(column))

    def _log_table_advantages(self, sequence_advantages, token_advantages, completion_mask) -> None:
        """Completions table: `advantage` is the mean per-token advantage the loss used; the group one moves to a column.

        TRL logs its sequence (group) advantage there, which reads 0.00 next to penalised tokens
        when a whole group scored alike. With alpha scaling the mean is `A_seq + penalty` on a
        penalised completion.
        """
        mask = completion_mask.to(token_advantages.dtype)
        mean = (token_advantages * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        gathered = self.accelerator.gather(mean.float().contiguous()).tolist()
        logged = self._logs["advantages"]
        for _ in range(min(len(gathered), len(logged))):
            logged.pop()
        logged.extend(gathered)
        sequence = sequence_advantages if sequence_advantages.dim() == 1 else sequence_advantages[:, 0]
        self._logs["extra"][f"{METRIC_PREFIX}/sequence_advantage"].extend(
            self.accelerator.gather(sequence.float().contiguous()).tolist()
        )
