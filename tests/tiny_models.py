"""Tiny local models + tokenizers for tests (no Hugging Face Hub access needed).

:func:`build_tiny_model` (from :mod:`trl_codefeedback.tiny_model`) writes a directory loadable
with ``AutoTokenizer.from_pretrained(path)`` and ``AutoModelForCausalLM.from_pretrained(path)``:
a byte-level BPE tokenizer trained on a few KB of Python code with a ChatML chat template,
and a randomly initialised Qwen2 causal LM (hidden 64, 2 layers, 4 heads).
:func:`build_tiny_classifier` writes a sequence-classification model on the same tokenizer.

Use the session fixture ``tiny_model_path`` from ``tests/conftest.py`` rather than
calling this directly, so the directory is built once per test session.

Example:
    >>> path = build_tiny_model(tmp_path)                      # doctest: +SKIP
    >>> tok = AutoTokenizer.from_pretrained(path)              # doctest: +SKIP
    >>> model = AutoModelForCausalLM.from_pretrained(path)     # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

# The causal LM builder is part of the library (``trl-codefeedback tiny-model DIR``); tests reuse it.
from trl_codefeedback.tiny_model import build_tiny_model  # noqa: F401
from trl_codefeedback.tiny_model import qwen2_config as _qwen2_config
from trl_codefeedback.tiny_model import train_tokenizer as _train_tokenizer


def build_tiny_classifier(
    path: str | Path,
    *,
    data_dir: str | Path | None = None,
    arch: str = "qwen2",
    num_labels: int = 2,
    vocab_size: int = 512,
    hidden_size: int = 32,
    num_layers: int = 2,
    seed: int = 0,
    corpus_chars: int = 30_000,
) -> Path:
    """Write a tiny tokenizer + sequence-classification model to ``path`` (a discriminator for tests).

    ``arch="qwen2"`` builds a decoder (``Qwen2ForSequenceClassification``, pools the last non-pad
    token), ``arch="bert"`` an encoder (``BertForSequenceClassification``). Loadable with
    ``AutoModelForSequenceClassification.from_pretrained(path)``.

    Example:
        >>> path = build_tiny_classifier(tmp_path)                              # doctest: +SKIP
        >>> AutoModelForSequenceClassification.from_pretrained(path)            # doctest: +SKIP
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Qwen2ForSequenceClassification

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(path, Path(data_dir) if data_dir else None, vocab_size, corpus_chars)
    torch.manual_seed(seed)
    if arch == "qwen2":
        config = _qwen2_config(tokenizer, hidden_size, num_layers, max_position_embeddings=1024, num_labels=num_labels)
        model = Qwen2ForSequenceClassification(config)
    elif arch == "bert":
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            intermediate_size=hidden_size * 2,
            num_hidden_layers=num_layers,
            num_attention_heads=4,
            max_position_embeddings=1024,
            pad_token_id=tokenizer.pad_token_id,
            num_labels=num_labels,
        )
        model = BertForSequenceClassification(config)
    else:
        raise ValueError(f"unknown arch {arch!r}; expected 'qwen2' or 'bert'")
    model.save_pretrained(path)
    return path


class ModelInputRecorder:
    """Records the text of every input a model's forward pass receives (``input_ids`` decoded, padding dropped).

    Instrumentation, not a stand-in: the model runs as usual, a forward pre-hook reads its inputs.
    Use as a context manager; :attr:`texts` holds one string per input row, in call order.

    Example:
        >>> with ModelInputRecorder(disc.model, disc.tokenizer) as rec:        # doctest: +SKIP
        ...     disc.score(prompts, codes, refs)
        >>> rec.texts[0]                                                       # doctest: +SKIP
        '### Task\\nAdd one.\\n### Program\\ndef f(x): ...'
    """

    def __init__(self, model, tokenizer) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.texts: list[str] = []
        self._handle = None

    def _hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        for i, row in enumerate(ids.tolist()):
            keep = row if mask is None else [t for t, m in zip(row, mask[i].tolist()) if m]
            self.texts.append(self.tokenizer.decode(keep))

    def __enter__(self):
        self._handle = self.model.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()
