"""RLCF discriminator: a second model that compares a generated program with the reference program.

:class:`DiscriminatorReward` turns ``(prompt, generated code, reference code)`` into a score ``d``
in ``[0, 1]``. Two backends, two different things:

* ``"scorer"`` (the trained RLCF discriminator, default): a scalar scorer ``f(prompt, program)``,
  any Hugging Face encoder or decoder with a one-logit head (``AutoModelForSequenceClassification``
  with ``num_labels=1``; LoRA through ``peft_config``). Each program is scored *alone* with its
  prompt (:data:`DEFAULT_SCORER_TEMPLATE`), so the candidate and the reference never share an
  input and "is a copy of the reference" cannot be a learned feature. The score is

  ``d = sigmoid(f(x ∘ y) - f(x ∘ ref))``

  the Bradley-Terry probability that ``y`` is the reference of the pair ``{y, ref}``. A program
  the scorer cannot tell from the reference gets 0.5 (an exact copy gets exactly 0.5), a program
  it finds less reference-like tends to 0. :func:`~trl_codefeedback.feedback.discriminator_training.train_discriminator`
  trains ``f`` with the matching pairwise loss on (policy sample, reference) pairs.
* ``"judge"`` (zero-shot, not trained here): a causal LM asked whether the candidate does what the
  reference does (:data:`DEFAULT_JUDGE_TEMPLATE`, both programs in one prompt); ``d = P(yes) /
  (P(yes) + P(no))`` for the next token. A semantic-equivalence judge, not RLCF's discriminator.

Both run in batches, on the model's device, on a device you name, or on the trainer's device
(:meth:`DiscriminatorReward.attach_trainer`). Used alone it is a TRL reward function
(``(prompts, completions, **kwargs)``) reading the reference program from the ``reference``
column. Every call records its rollouts in :attr:`DiscriminatorReward.rollouts`, which
:class:`~trl_codefeedback.feedback.discriminator_refresh.DiscriminatorRefreshCallback` uses to
retrain the scorer during RL (the GAN-style loop).

Example:
    >>> disc = DiscriminatorReward("path/to/scorer")                               # doctest: +SKIP
    >>> disc.score(["Add one."], ["def f(x): return x+1"], ["def f(x):\\n    return x + 1"])  # doctest: +SKIP
    [0.47]
    >>> trainer = GRPOTrainer(model, reward_funcs=[disc], train_dataset=ds, ...)   # doctest: +SKIP
    >>> disc.attach_trainer(trainer)  # run on the trainer's device                 # doctest: +SKIP
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

BACKENDS = ("scorer", "judge")
BACKEND_ALIASES = {"classifier": "scorer"}  # the name of the scorer backend before it became pairwise
CONFIG_NAME = "discriminator_config.json"
ADAPTER_CONFIG_NAME = "adapter_config.json"

DEFAULT_SCORER_TEMPLATE = "### Task\n{prompt}\n### Program\n{code}"
DEFAULT_JUDGE_TEMPLATE = (
    "### Task\n{prompt}\n### Reference solution\n{reference}\n### Candidate solution\n{code}\n"
    "### Does the candidate do what the reference does? Answer yes or no.\nAnswer:"
)
TEMPLATE_FIELDS = {"scorer": ("{prompt}", "{code}"), "judge": ("{prompt}", "{reference}", "{code}")}


@dataclass(frozen=True)
class Rollout:
    """One program seen next to its prompt and reference: a policy sample recorded by a reward call,
    or an extra negative (e.g. a failing program) given to training."""

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


def sigmoid(z: float) -> float:
    """Logistic function without overflow; 0.0 for NaN (an unusable score counts as "not the reference")."""
    if math.isnan(z):
        return 0.0
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _check_template(template: str, backend: str) -> None:
    for fld in TEMPLATE_FIELDS[backend]:
        if fld not in template:
            raise ValueError(f"the {backend} template must hold {fld}; got {template!r}")
    if backend == "scorer" and "{reference}" in template:
        raise ValueError(
            "the scorer template must not hold {reference}: the pairwise scorer sees one program per input "
            f"(the reference is scored in an input of its own); got {template!r}"
        )


class DiscriminatorReward:
    """Scores generated code against the reference program (RLCF's discriminator); a TRL reward function.

    Args:
        model: a model directory / Hub id, or a loaded ``transformers`` model (a sequence-classification
            model, ideally ``num_labels=1``, for ``"scorer"``; a causal LM for ``"judge"``). A directory
            holding a PEFT adapter (``adapter_config.json``) loads base + adapter.
        tokenizer: tokenizer (default: loaded from ``model`` when it is a path, else from
            ``model.name_or_path``).
        backend: ``"scorer"`` (trained pairwise discriminator; ``"classifier"`` is accepted as its old
            name) or ``"judge"`` (zero-shot LLM judge).
        reference_column: dataset column with the reference program of each row.
        code_prefix_column: column with code put before the completion (stripped from the reference).
        language: language of the programs (for code extraction) when there is no ``language`` column.
        template: input text template; ``{prompt}`` and ``{code}`` for the scorer (one program per
            input, ``{reference}`` is refused), plus ``{reference}`` for the judge (default:
            :data:`DEFAULT_SCORER_TEMPLATE` / :data:`DEFAULT_JUDGE_TEMPLATE`).
        yes_token, no_token: judge answers; their first token is read.
        positive_label: with ``num_labels > 1``, the label whose log-odds is ``f`` (ignored when
            ``num_labels == 1``, where the logit is ``f``).
        batch_size: (prompt, program) inputs per forward pass.
        max_length: token limit per input; the prompt gets at most a quarter of it (the judge's two
            programs share the rest; each field is cut at its end).
        device: device to run on (default: where the model already is).
        peft_config: a ``peft`` config (e.g. ``LoraConfig(task_type="SEQ_CLS")``) to wrap the scorer
            with trainable adapters; ``None`` trains every parameter.
        rollout_buffer_size: how many recent rollouts :attr:`rollouts` keeps (0: record none).
        name: ``__name__`` (TRL names the reward's logged metrics after it).

    A reward call extracts the code of each completion (plain or fenced) and scores it against the
    reference with the row's ``code_prefix`` stripped from its start (completion-style rows); the
    result is in ``[0, 1]`` (see the module docstring for what it means per backend).
    A missing reference column raises ``KeyError`` naming the column and the available ones
    before anything is scored.
    """

    default_name = "discriminator_reward"

    def __init__(
        self,
        model: Any,
        tokenizer: Any | None = None,
        *,
        backend: str = "scorer",
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
        peft_config: Any | None = None,
        rollout_buffer_size: int = 512,
        name: str | None = None,
    ) -> None:
        backend = BACKEND_ALIASES.get(backend, backend)
        if backend not in BACKENDS:
            raise ValueError(f"unknown discriminator backend {backend!r}; expected one of {list(BACKENDS)}")
        self.backend = backend
        self.template = template or (DEFAULT_SCORER_TEMPLATE if backend == "scorer" else DEFAULT_JUDGE_TEMPLATE)
        _check_template(self.template, backend)
        if batch_size < 1 or max_length < 16:
            raise ValueError(f"need batch_size >= 1 and max_length >= 16; got {batch_size} and {max_length}")
        if isinstance(model, (str, Path)):
            model = self._load_model(str(model), backend)
        if peft_config is not None:
            if backend != "scorer":
                raise ValueError("peft_config applies to the trained scorer backend only")
            from peft import get_peft_model

            model = get_peft_model(model, peft_config)
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
        if backend == "scorer" and getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = self.tokenizer.pad_token_id  # decoders pool the last non-pad token
        self.reference_column = reference_column
        self.code_prefix_column = code_prefix_column
        self.language = language
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
        if backend == "scorer" and (Path(path) / ADAPTER_CONFIG_NAME).is_file():
            from peft import AutoPeftModelForSequenceClassification

            return AutoPeftModelForSequenceClassification.from_pretrained(path, is_trainable=True)
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

        cls = AutoModelForSequenceClassification if backend == "scorer" else AutoModelForCausalLM
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
        """Write the model (or its PEFT adapter), the tokenizer and the discriminator settings to ``path``."""
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
        backend = BACKEND_ALIASES.get(settings["backend"], settings["backend"])
        if backend == "scorer" and "{reference}" in settings.get("template", ""):
            raise ValueError(
                f"{path} holds a discriminator trained on (reference, candidate) inputs, before the scorer became "
                "pairwise; its weights learned a different task. Retrain it with train_discriminator, or pass "
                "template=... and backend=... to load it anyway."
            )
        model = cls._load_model(str(path), backend)
        return cls(model, AutoTokenizer.from_pretrained(path), **settings)

    def attach_trainer(self, trainer: Any) -> DiscriminatorReward:
        """Move the discriminator to the trainer's device unless a ``device`` was given."""
        if self.device is None:
            acc = getattr(trainer, "accelerator", None)
            device = getattr(acc, "device", None) or getattr(getattr(trainer, "args", None), "device", None)
            if device is not None:
                self.model.to(device)
        return self

    # ---- model inputs ----------------------------------------------------------------------

    @property
    def model_device(self) -> Any:
        return next(self.model.parameters()).device

    def format(self, prompt: str, code: str, reference: str = "") -> str:
        """The model input text: of one (prompt, program) for the scorer, of one triple for the judge."""
        if self.backend == "scorer":
            return self.template.format(prompt=prompt, code=code)
        return self.template.format(prompt=prompt, code=code, reference=reference)

    def _fit(self, fields: Sequence[str]) -> list[str]:
        """Cut ``fields`` (prompt, then one or two programs) to their shares of ``max_length`` tokens: the prompt
        at most a quarter, the programs split the rest, so that no field, the candidate above all, is cut away whole."""
        tok = self.tokenizer
        empty = self.format(*([""] * len(fields)))
        budget = max(self.max_length - len(tok.encode(empty, add_special_tokens=False)) - 2, 8)
        ids = [tok.encode(x, add_special_tokens=False) for x in fields]
        if sum(map(len, ids)) <= budget:
            return list(fields)
        keep = [min(len(ids[0]), budget // 4)]
        rest = budget - keep[0]
        if len(ids) == 2:
            keep.append(rest)
        else:  # judge: candidate first, the reference gets what is left
            keep.append(min(len(ids[1]), max(rest - len(ids[2]), rest // 2)))
            keep.append(rest - keep[1])
        return [tok.decode(x[:k]) if len(x) > k else text for x, k, text in zip(ids, keep, fields)]

    def encode(self, texts: Sequence[str]) -> dict[str, Any]:
        """Tokenise finished input texts onto the model's device: padded on the right (encoders pool the first
        token, the judge reads the last real one), cut at ``max_length`` from the left (after :meth:`_fit` this
        only trims template text; the end, program or question, stays)."""
        tok = self.tokenizer
        sides = tok.padding_side, tok.truncation_side
        tok.padding_side, tok.truncation_side = "right", "left"
        try:
            enc = tok(list(texts), return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
        finally:
            tok.padding_side, tok.truncation_side = sides
        return {k: v.to(self.model_device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}

    def scorer_input(self, prompt: str, program: str) -> str:
        """The text the scorer reads for one (prompt, program): one program, never two."""
        return self.format(*self._fit([prompt, program]))

    # ---- scores ----------------------------------------------------------------------------

    def program_scores(self, prompts: Sequence[Any], programs: Sequence[str]) -> Any:
        """``f(prompt ∘ program)``: one differentiable scalar per pair, each program in its own input.

        Identical (prompt, program) pairs are run once. One forward pass over the whole list: batch
        it yourself (or use :meth:`score`).
        """
        import torch

        if self.backend != "scorer":
            raise ValueError("program_scores needs the scorer backend (the judge reads two programs at once)")
        if len(prompts) != len(programs):
            raise ValueError(f"got {len(prompts)} prompts and {len(programs)} programs")
        keys = [(prompt_text(p), c) for p, c in zip(prompts, programs)]
        if not keys:
            return torch.zeros(0, device=self.model_device)
        unique = list(dict.fromkeys(keys))
        enc = self.encode([self.scorer_input(p, c) for p, c in unique])
        logits = self.model(**enc).logits.float()
        if logits.shape[-1] == 1:
            f = logits[:, 0]
        else:
            log_probs = torch.log_softmax(logits, dim=-1)
            others = torch.cat([log_probs[:, : self.positive_label], log_probs[:, self.positive_label + 1 :]], dim=-1)
            f = log_probs[:, self.positive_label] - torch.logsumexp(others, dim=-1)
        index = {k: i for i, k in enumerate(unique)}
        return f[torch.tensor([index[k] for k in keys], device=f.device, dtype=torch.long)]

    def logits(self, prompts: Sequence[Any], codes: Sequence[str], references: Sequence[str]) -> Any:
        """One differentiable logit per triple, ``sigmoid`` of which is the score ``d``.

        Scorer: ``f(x ∘ code) - f(x ∘ reference)``, code and reference in separate inputs of one
        forward pass. Judge: ``logit P(yes) - logit P(no)`` of one input holding both programs.
        """
        import torch

        if not (len(prompts) == len(codes) == len(references)):
            raise ValueError(f"got {len(prompts)} prompts, {len(codes)} codes, {len(references)} references")
        prompts = [prompt_text(p) for p in prompts]
        if self.backend == "scorer":
            f = self.program_scores(prompts + prompts, list(codes) + list(references))
            return f[: len(codes)] - f[len(codes) :]
        texts = [self.format(*self._fit([p, c, r])) for p, c, r in zip(prompts, codes, references)]
        enc = self.encode(texts)
        logits = self.model(**enc).logits
        last = enc["attention_mask"].sum(dim=-1) - 1
        step = logits[torch.arange(logits.shape[0], device=logits.device), last].float()
        return step[:, self._yes_id] - step[:, self._no_id]

    def score(self, prompts: Sequence[Any], codes: Sequence[str], references: Sequence[str]) -> list[float]:
        """``d`` in ``[0, 1]`` for each code against its reference, batched, without gradients.

        Scorer: ``sigmoid(f(x ∘ code) - f(x ∘ reference))``, the probability that the code is the
        reference of the pair (0.5: indistinguishable). Judge: ``P(yes)``.

        Example:
            >>> disc.score(["Add one."], ["def f(x): return x + 1"], ["def f(x): return x + 1"])  # doctest: +SKIP
            [0.5]
        """
        import torch

        if not (len(prompts) == len(codes) == len(references)):
            raise ValueError(f"got {len(prompts)} prompts, {len(codes)} codes, {len(references)} references")
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                if self.backend == "scorer":
                    scores = self._pairwise_scores(prompts, codes, references)
                else:
                    scores = []
                    for i in range(0, len(codes), self.batch_size):
                        sl = slice(i, i + self.batch_size)
                        logit = self.logits(list(prompts[sl]), list(codes[sl]), list(references[sl]))
                        scores.extend(torch.sigmoid(logit).tolist())
        finally:
            self.model.train(was_training)
        scores = [min(1.0, max(0.0, s)) if math.isfinite(s) else 0.0 for s in scores]
        self.last_scores = scores
        return scores

    def _pairwise_scores(self, prompts: Sequence[Any], codes: Sequence[str], references: Sequence[str]) -> list[float]:
        """``sigmoid(f(x ∘ code) - f(x ∘ reference))`` with ``f`` run once per distinct (prompt, program)
        (a GRPO group shares its prompt and reference), ``batch_size`` inputs per forward pass."""
        xs = [prompt_text(p) for p in prompts]
        unique = list(dict.fromkeys([*zip(xs, codes), *zip(xs, references)]))
        f: dict[tuple[str, str], float] = {}
        for i in range(0, len(unique), self.batch_size):
            chunk = unique[i : i + self.batch_size]
            values = self.program_scores([k[0] for k in chunk], [k[1] for k in chunk]).tolist()
            f.update(zip(chunk, values))
        return [sigmoid(f[(x, c)] - f[(x, r)]) for x, c, r in zip(xs, codes, references)]

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
