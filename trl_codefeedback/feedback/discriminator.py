"""RLCF discriminator: a second model that compares a generated program with the reference program.

:class:`DiscriminatorReward` scores ``(prompt, generated code, reference code)`` triples with the
probability that the generated program is "like a reference" (1.0) rather than a policy sample
(0.0). Two backends:

* ``"classifier"``: any Hugging Face encoder or decoder with a sequence-classification head
  (``AutoModelForSequenceClassification``), fed one text built from the prompt, the reference
  and the candidate (:attr:`DiscriminatorReward.classifier_template`). With ``num_labels=1`` the
  score is ``sigmoid(logit)``; otherwise ``softmax(logits)[positive_label]``.
* ``"judge"``: a causal LM asked a yes/no question (:attr:`DiscriminatorReward.judge_template`);
  the score is ``P(yes) / (P(yes) + P(no))`` for the next token.

Both run in batches, on the model's device, on a device you name, or on the trainer's device
(:meth:`DiscriminatorReward.attach_trainer`), and both expose :meth:`DiscriminatorReward.logits`
(one differentiable "reference-vs-policy" logit per triple) that
:func:`~trl_codefeedback.feedback.discriminator_training.train_discriminator` trains.

Used alone it is a TRL reward function (``(prompts, completions, **kwargs)``) reading the reference
program from the ``reference`` column. Every call records its rollouts in
:attr:`DiscriminatorReward.rollouts`, which
:class:`~trl_codefeedback.feedback.discriminator_training.DiscriminatorRefreshCallback` uses to
retrain it during RL (the GAN-style loop).

Example:
    >>> disc = DiscriminatorReward("path/to/classifier")                          # doctest: +SKIP
    >>> disc.score(["Add one."], ["def f(x): return x+1"], ["def f(x):\\n    return x + 1"])  # doctest: +SKIP
    [0.73]
    >>> trainer = GRPOTrainer(model, reward_funcs=[disc], train_dataset=ds, ...)  # doctest: +SKIP
    >>> disc.attach_trainer(trainer)  # run on the trainer's device                # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trl_codefeedback.feedback.base import _column_or, _required_column
from trl_codefeedback.feedback.extract import completion_text, extract_code

BACKENDS = ("classifier", "judge")
CONFIG_NAME = "discriminator_config.json"

DEFAULT_CLASSIFIER_TEMPLATE = "### Task\n{prompt}\n### Reference\n{reference}\n### Candidate\n{code}"
DEFAULT_JUDGE_TEMPLATE = (
    "### Task\n{prompt}\n### Reference solution\n{reference}\n### Candidate solution\n{code}\n"
    "### Could the candidate be the reference author's own solution? Answer yes or no.\nAnswer:"
)


@dataclass(frozen=True)
class Rollout:
    """One policy sample seen by a reward call: the discriminator's negative example."""

    prompt: str
    code: str
    reference: str


def prompt_text(prompt: Any) -> str:
    """Plain text of a TRL prompt: the string itself, or the message contents of a chat joined by newlines."""
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, dict):
        return str(prompt.get("content", ""))
    return "\n".join(prompt_text(m) for m in prompt)


class DiscriminatorReward:
    """Scores generated code against the reference program (RLCF's discriminator); a TRL reward function.

    Args:
        model: a model directory / Hub id, or a loaded ``transformers`` model
            (sequence-classification model for ``"classifier"``, causal LM for ``"judge"``).
        tokenizer: tokenizer (default: loaded from ``model`` when it is a path, else from
            ``model.name_or_path``).
        backend: ``"classifier"`` or ``"judge"``.
        reference_column: dataset column with the reference program of each row.
        language: language of the programs (for code extraction) when there is no ``language`` column.
        template: input text template with ``{prompt}``, ``{reference}`` and ``{code}`` fields
            (default: :data:`DEFAULT_CLASSIFIER_TEMPLATE` / :data:`DEFAULT_JUDGE_TEMPLATE`).
        yes_token, no_token: judge answers; their first token is read.
        positive_label: classifier label index of "reference" (ignored when ``num_labels == 1``).
        batch_size: triples per forward pass.
        max_length: token limit per input; the prompt gets at most a quarter of it, the code and
            the reference share the rest (each field is cut at its end).
        device: device to run on (default: where the model already is).
        rollout_buffer_size: how many recent rollouts :attr:`rollouts` keeps (0: record none).
        name: ``__name__`` (TRL names the reward's logged metrics after it).

    A reward call extracts the code of each completion (plain or fenced) and scores it against the
    reference with the row's ``code_prefix`` stripped from its start (completion-style rows); the
    result is in ``[0, 1]``, higher = more like the reference.
    A missing reference column raises ``KeyError`` naming the column and the available ones
    before anything is scored.
    """

    default_name = "discriminator_reward"

    def __init__(
        self,
        model: Any,
        tokenizer: Any | None = None,
        *,
        backend: str = "classifier",
        reference_column: str = "reference",
        code_prefix_column: str | None = "code_prefix",
        language: str = "python",
        template: str | None = None,
        yes_token: str = " yes",
        no_token: str = " no",
        positive_label: int = 1,
        batch_size: int = 8,
        max_length: int = 512,
        device: Any | None = None,
        rollout_buffer_size: int = 512,
        name: str | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown discriminator backend {backend!r}; expected one of {list(BACKENDS)}")
        self.backend = backend
        if isinstance(model, (str, Path)):
            model = self._load_model(str(model), backend)
        self.model = model
        if tokenizer is None:
            from transformers import AutoTokenizer

            source = getattr(model, "name_or_path", None)
            if not source:
                raise ValueError("pass tokenizer=... (the model has no name_or_path to load one from)")
            tokenizer = AutoTokenizer.from_pretrained(source)
        self.tokenizer = tokenizer
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if backend == "classifier" and getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = self.tokenizer.pad_token_id  # decoders pool the last non-pad token
        self.reference_column = reference_column
        self.code_prefix_column = code_prefix_column
        self.language = language
        self.template = template or (DEFAULT_CLASSIFIER_TEMPLATE if backend == "classifier" else DEFAULT_JUDGE_TEMPLATE)
        for fld in ("{prompt}", "{reference}", "{code}"):
            if fld not in self.template:
                raise ValueError(f"template must hold {fld}; got {self.template!r}")
        self.yes_token, self.no_token = yes_token, no_token
        self.positive_label = positive_label
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        if device is not None:
            self.model.to(device)
        self.rollouts: deque[Rollout] = deque(maxlen=max(rollout_buffer_size, 1))
        self.record_rollouts = rollout_buffer_size > 0
        self.last_scores: list[float] = []
        self.training_metrics: dict[str, float] = {}  # set by train_discriminator / the refresh callback
        self.__name__ = name or self.default_name
        if backend == "judge":
            self._yes_id, self._no_id = self._answer_ids()

    # ---- loading / saving ----------------------------------------------------------------

    @staticmethod
    def _load_model(path: str, backend: str) -> Any:
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

        cls = AutoModelForSequenceClassification if backend == "classifier" else AutoModelForCausalLM
        return cls.from_pretrained(path)

    def _answer_ids(self) -> tuple[int, int]:
        ids = []
        for word in (self.yes_token, self.no_token):
            toks = self.tokenizer.encode(word, add_special_tokens=False)
            if not toks:
                raise ValueError(f"judge answer {word!r} encodes to no token")
            ids.append(toks[0])
        if ids[0] == ids[1]:
            raise ValueError(f"judge answers {self.yes_token!r} and {self.no_token!r} start with the same token")
        return ids[0], ids[1]

    def _settings(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "reference_column": self.reference_column,
            "code_prefix_column": self.code_prefix_column,
            "language": self.language,
            "template": self.template,
            "yes_token": self.yes_token,
            "no_token": self.no_token,
            "positive_label": self.positive_label,
            "batch_size": self.batch_size,
            "max_length": self.max_length,
        }

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the model, the tokenizer and the discriminator settings to ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        (path / CONFIG_NAME).write_text(json.dumps(self._settings(), indent=2))
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, **overrides: Any) -> DiscriminatorReward:
        """Load a discriminator written by :meth:`save_pretrained` (``overrides`` replace saved settings).

        Example:
            >>> disc.save_pretrained("disc"); DiscriminatorReward.from_pretrained("disc", device="cpu")  # doctest: +SKIP
        """
        from transformers import AutoTokenizer

        path = Path(path)
        cfg_file = path / CONFIG_NAME
        if not cfg_file.is_file():
            raise FileNotFoundError(f"{cfg_file} not found: not a directory written by DiscriminatorReward.save_pretrained")
        settings = {**json.loads(cfg_file.read_text()), **overrides}
        model = cls._load_model(str(path), settings["backend"])
        return cls(model, AutoTokenizer.from_pretrained(path), **settings)

    def attach_trainer(self, trainer: Any) -> DiscriminatorReward:
        """Move the discriminator to the trainer's device unless a ``device`` was given."""
        if self.device is None:
            acc = getattr(trainer, "accelerator", None)
            device = getattr(acc, "device", None) or getattr(getattr(trainer, "args", None), "device", None)
            if device is not None:
                self.model.to(device)
        return self

    # ---- scoring ---------------------------------------------------------------------------

    @property
    def model_device(self) -> Any:
        return next(self.model.parameters()).device

    def format(self, prompt: str, code: str, reference: str) -> str:
        """The model input text of one triple."""
        return self.template.format(prompt=prompt, code=code, reference=reference)

    def _fit(self, prompt: str, code: str, reference: str) -> tuple[str, str, str]:
        """Cut each field to its share of ``max_length`` tokens (prompt at most a quarter, code and
        reference split the rest), so that no field, the candidate above all, is cut away whole."""
        tok = self.tokenizer
        template_len = len(tok.encode(self.template.format(prompt="", code="", reference=""), add_special_tokens=False))
        budget = max(self.max_length - template_len - 2, 8)
        ids = [tok.encode(x, add_special_tokens=False) for x in (prompt, code, reference)]
        if sum(map(len, ids)) <= budget:
            return prompt, code, reference
        p_len = min(len(ids[0]), budget // 4)
        rest = budget - p_len
        c_len = min(len(ids[1]), max(rest - len(ids[2]), rest // 2))
        r_len = min(len(ids[2]), rest - c_len)
        return tuple(  # type: ignore[return-value]
            tok.decode(x[:k]) if len(x) > k else text
            for x, k, text in zip(ids, (p_len, c_len, r_len), (prompt, code, reference))
        )

    def logits(self, prompts: Sequence[str], codes: Sequence[str], references: Sequence[str]) -> Any:
        """One "reference (positive) vs policy (negative)" logit per triple, differentiable; ``sigmoid`` = score.

        One forward pass over the whole list: batch it yourself (or use :meth:`score`).
        """
        import torch

        if not (len(prompts) == len(codes) == len(references)):
            raise ValueError(f"got {len(prompts)} prompts, {len(codes)} codes, {len(references)} references")
        texts = [self.format(*self._fit(p, c, r)) for p, c, r in zip(prompts, codes, references)]
        tok = self.tokenizer
        old_side = tok.truncation_side
        tok.truncation_side = "left"  # after _fit this only trims template text; the end (question / candidate) stays
        try:
            enc = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
        finally:
            tok.truncation_side = old_side
        enc = {k: v.to(self.model_device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        if tok.padding_side != "right":  # logits are read at the last real token below
            raise ValueError("the discriminator's tokenizer must pad on the right (tokenizer.padding_side = 'right')")
        out = self.model(**enc)
        logits = out.logits
        if self.backend == "classifier":
            if logits.shape[-1] == 1:
                return logits[:, 0].float()
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            pos = log_probs[:, self.positive_label]
            neg = torch.logsumexp(
                torch.cat([log_probs[:, : self.positive_label], log_probs[:, self.positive_label + 1 :]], dim=-1), dim=-1
            )
            return pos - neg
        last = enc["attention_mask"].sum(dim=-1) - 1
        step = logits[torch.arange(logits.shape[0], device=logits.device), last].float()
        return step[:, self._yes_id] - step[:, self._no_id]

    def score(self, prompts: Sequence[Any], codes: Sequence[str], references: Sequence[str]) -> list[float]:
        """Probability in ``[0, 1]`` that each code is a reference-like program, batched, without gradients.

        Example:
            >>> disc.score(["Add one."], ["def f(x): return x + 1"], ["def f(x): return x + 1"])  # doctest: +SKIP
            [0.91]
        """
        import torch

        prompts = [prompt_text(p) for p in prompts]
        scores: list[float] = []
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for i in range(0, len(codes), self.batch_size):
                    sl = slice(i, i + self.batch_size)
                    logit = self.logits(prompts[sl], list(codes[sl]), list(references[sl]))
                    scores.extend(torch.sigmoid(logit).tolist())
        finally:
            self.model.train(was_training)
        scores = [min(1.0, max(0.0, s)) if math.isfinite(s) else 0.0 for s in scores]
        self.last_scores = scores
        return scores

    def record(self, prompts: Sequence[Any], codes: Sequence[str], references: Sequence[str]) -> None:
        """Add policy samples to :attr:`rollouts` (the negatives of the next refresh)."""
        if not self.record_rollouts:
            return
        for p, c, r in zip(prompts, codes, references):
            self.rollouts.append(Rollout(prompt_text(p), c, r))

    # ---- the reward call -------------------------------------------------------------------

    def references(self, kwargs: dict[str, Any], n: int, owner: str | None = None) -> list[str]:
        """The reference column of a reward call, validated; raises ``KeyError`` naming the column when missing."""
        refs = _required_column(
            kwargs, self.reference_column, n, owner=owner or self.__name__, what="the reference program of each row",
            option="reference_column", cls="DiscriminatorReward",
        )
        for i, r in enumerate(refs):
            if not isinstance(r, str):
                raise TypeError(f"row {i} of column {self.reference_column!r} is not a string: {r!r}")
        return refs

    def prefixes(self, kwargs: dict[str, Any], n: int) -> list[str]:
        """The ``code_prefix`` of each row ("" when the column is absent)."""
        return _column_or(kwargs, self.code_prefix_column, n, "")

    @staticmethod
    def strip_prefix(references: Sequence[str], prefixes: Sequence[str]) -> list[str]:
        """Each reference without its row's code prefix (when it starts with it).

        Completion-style rows (HumanEval, MBJP) put the function header in ``code_prefix`` and in
        the prompt; the discriminator compares what the model wrote with the matching part of the
        reference, so that a long shared header cannot crowd the candidate out of ``max_length``.
        """
        return [r[len(p) :] if p and r.startswith(p) else r for r, p in zip(references, prefixes)]

    def codes(self, completions: Sequence[Any], kwargs: dict[str, Any]) -> list[str]:
        """The code each completion holds (extracted from fences; without the row's code prefix)."""
        n = len(completions)
        langs = _column_or(kwargs, "language", n, self.language)
        return [
            extract_code(completion_text(c), language=lang, continuation=bool(p)).code
            for c, lang, p in zip(completions, langs, self.prefixes(kwargs, n))
        ]

    def __call__(
        self, prompts: list[Any] | None = None, completions: list[Any] | None = None, **kwargs: Any
    ) -> list[float | None]:
        completions = list(completions or [])
        n = len(completions)
        refs = self.references(kwargs, n)
        prompts = list(prompts) if prompts is not None else [""] * n
        codes = self.codes(completions, kwargs)
        refs = self.strip_prefix(refs, self.prefixes(kwargs, n))
        scores = self.score(prompts, codes, refs)
        self.record(prompts, codes, refs)
        self.log(kwargs.get("log_metric"), scores)
        return list(scores)

    def log(self, log_metric: Callable[[str, float], None] | None, scores: Sequence[float] = ()) -> None:
        """Log the mean score and the latest training metrics through TRL's ``log_metric`` hook."""
        if not callable(log_metric):
            return
        if scores:
            log_metric("discriminator/score", sum(scores) / len(scores))
        for key, value in self.training_metrics.items():
            log_metric(f"discriminator/{key}", value)
