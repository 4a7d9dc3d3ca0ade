"""A tiny random causal LM + tokenizer built locally: smoke runs of the recipes and quickstart on a laptop.

No Hub access and no GPU needed; the model learns nothing useful, it only makes every code
path run in seconds (``trl-codefeedback tiny-model DIR`` on the command line).

* tokenizer: byte-level BPE trained on a few KB of Python code (MBPP reference solutions
  when the benchmark data is at hand, else a built-in snippet), ``<|endoftext|>`` as EOS and
  pad, and a small ChatML chat template, so plain and conversational prompts both work;
* model: a randomly initialised Qwen2 causal LM (hidden 64, 2 layers, 4 heads; ~100k
  parameters with the default vocabulary).

Example:
    >>> from transformers import AutoModelForCausalLM
    >>> path = build_tiny_model("tiny-qwen2")                  # doctest: +SKIP
    >>> model = AutoModelForCausalLM.from_pretrained(path)     # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EOS = "<|endoftext|>"
SPECIAL_TOKENS = [EOS, "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_FALLBACK_CODE = '''
def add(a, b):
    """Return the sum of a and b."""
    return a + b

def is_prime(n):
    if n < 2:
        return False
    for i in range(2, int(n ** 0.5) + 1):
        if n % i == 0:
            return False
    return True

class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        return self.items.pop()

assert add(1, 2) == 3
print([x * x for x in range(10) if x % 2 == 0])
'''


def _corpus(data_dir: Path | None, max_chars: int) -> list[str]:
    texts: list[str] = []
    mbpp = data_dir / "mbpp" / "mbpp.jsonl" if data_dir is not None else None
    if mbpp is not None and mbpp.is_file():
        size = 0
        with mbpp.open() as f:
            for line in f:
                row = json.loads(line)
                chunk = row["text"] + "\n" + row["code"].replace("\r\n", "\n") + "\n" + "\n".join(row["test_list"])
                texts.append(chunk)
                size += len(chunk)
                if size >= max_chars:
                    break
    return texts or [_FALLBACK_CODE] * 4


def _default_data_dir() -> Path | None:
    from trl_codefeedback.data import default_data_dir

    path = default_data_dir()
    return path if path is not None and Path(path).is_dir() else None


def build_tiny_model(
    path: str | Path,
    *,
    data_dir: str | Path | None = None,
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
    corpus_chars: int = 30_000,
) -> Path:
    """Write a tiny tokenizer + Qwen2 causal LM to ``path`` and return it.

    Args:
        path: output directory (created).
        data_dir: benchmark data dir whose ``mbpp/mbpp.jsonl`` trains the tokenizer
            (default: the library's data dir when it exists, else a built-in snippet).
        vocab_size: BPE vocabulary size (special tokens included).
        hidden_size: model width.
        num_layers: transformer layers.
        seed: torch seed for the random weights.
        corpus_chars: about how many characters of code train the tokenizer.
    """
    import torch
    from transformers import Qwen2ForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    data = Path(data_dir) if data_dir is not None else _default_data_dir()
    tokenizer = train_tokenizer(path, data, vocab_size, corpus_chars)

    torch.manual_seed(seed)
    config = qwen2_config(tokenizer, hidden_size, num_layers, max_position_embeddings=512, tie_word_embeddings=True)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    return path


def qwen2_config(tokenizer: Any, hidden_size: int, num_layers: int, **extra: Any):
    """A tiny Qwen2 config sized to ``tokenizer`` (4 heads, 2 KV heads, MLP 2x hidden); ``extra`` adds or overrides fields."""
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        **extra,
    )


def train_tokenizer(path: Path, data_dir: Path | None, vocab_size: int, corpus_chars: int):
    """Train a byte-level BPE tokenizer with the chat template on code, save it to ``path`` and return it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(data_dir, corpus_chars), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token=EOS, pad_token=EOS, bos_token=None, unk_token=None
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)
    return tokenizer
