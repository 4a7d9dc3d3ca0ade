"""Completion token ids <-> character spans of the completion text, exactly.

TRL decodes each completion with ``skip_special_tokens=True`` and hands the text to
the reward functions; error lines are located in that text (see
:mod:`trl_codefeedback.feedback.extract`). To penalise the tokens of an error line we
need, for every completion token, the characters of the decoded text it produced.

Re-tokenizing the text and reading the tokenizer's offsets is not exact: the model may
have generated a non-canonical tokenization, byte-level offsets are trimmed
(``trim_offsets``), and one token can span several lines (``":\\n    "``) or hold half
of a multi-byte character. We therefore decode *incrementally*: token ``i`` covers
``[len(common_prefix(decode(ids[:i]), text)), len(common_prefix(decode(ids[:i+1]), text)))``.
This is exact for any tokenizer whose decode is prefix-stable (byte-level BPE,
SentencePiece with byte fallback, WordPiece...). A token that only carries part of a
multi-byte character (its prefix decodes to ``\\ufffd``) is given the character it
helps to form, so it overlaps the line that character belongs to. Special tokens
(skipped by the decode) get empty spans.

Byte-level BPE tokenizers take a fast path (one byte string per token, O(T)), checked
against the full decode; any mismatch falls back to incremental decoding.

Example:
    >>> spans = token_char_spans(tokenizer, ids)                  # doctest: +SKIP
    >>> tokens_in_span(spans, *scored.error_span())               # doctest: +SKIP
    [7, 8, 9]
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

__all__ = ["token_char_spans", "tokens_in_span", "span_token_mask", "locate_text"]


def _decode(tokenizer: Any, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)


def _common_prefix_len(a: str, b: str) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # binary search for the first mismatch (a[:lo] == b[:lo])
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


@functools.lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    # GPT-2's reversible byte <-> unicode table (used by every ByteLevel BPE: GPT-2, Qwen, Llama-3, StarCoder...)
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def _is_byte_level(tokenizer: Any) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = getattr(backend, "decoder", None)
    return decoder is not None and type(decoder).__name__ == "ByteLevel"


def _byte_level_spans(tokenizer: Any, ids: Sequence[int], full: str) -> list[tuple[int, int]] | None:
    """O(T) spans for ByteLevel decoders; ``None`` when the bytes do not reproduce ``full``."""
    table = _byte_decoder()
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    pieces: list[bytes] = []
    for tok_id, tok in zip(ids, tokenizer.convert_ids_to_tokens(list(ids))):
        if tok_id in special or tok is None:
            pieces.append(b"")
        elif tok_id in added:  # added (non-special) tokens are plain text, not byte-mapped
            pieces.append(tok.encode("utf-8"))
        else:
            try:
                pieces.append(bytes(table[c] for c in tok))
            except KeyError:
                return None
    data = b"".join(pieces)
    try:
        if data.decode("utf-8") != full:
            return None
    except UnicodeDecodeError:
        return None
    # char index of every byte offset (a byte inside a multi-byte char maps to that char)
    char_of_byte = []
    for ci, ch in enumerate(full):
        char_of_byte.extend([ci] * len(ch.encode("utf-8")))
    char_of_byte.append(len(full))
    spans = []
    pos = 0
    for p in pieces:
        if not p:
            c = char_of_byte[pos]
            spans.append((c, c))
            continue
        start = char_of_byte[pos]
        end_byte = pos + len(p)
        # end: one past the char holding the token's last byte
        end = char_of_byte[end_byte - 1] + 1
        spans.append((start, end))
        pos = end_byte
    return spans


def _incremental_spans(tokenizer: Any, ids: Sequence[int], full: str) -> list[tuple[int, int]]:
    spans = []
    prev = 0
    for i in range(len(ids)):
        text = _decode(tokenizer, ids[: i + 1])
        common = _common_prefix_len(text, full)
        end = common
        if len(text) > common and common < len(full):
            end = common + 1  # a partial multi-byte char (decoded as U+FFFD so far): blame the char it forms
        spans.append((prev, max(prev, end)))
        prev = max(prev, common)
    return spans


def token_char_spans(tokenizer: Any, ids: Sequence[int], text: str | None = None) -> list[tuple[int, int]]:
    """Char span ``[start, end)`` of every token of ``ids`` in ``text``.

    Args:
        tokenizer: a transformers tokenizer (the trainer's ``processing_class``).
        ids: the completion's token ids as generated (special tokens such as EOS included).
        text: the text the spans refer to; default ``decode(ids, skip_special_tokens=True)``.
            When it differs (e.g. a chat parser stripped whitespace), it must occur inside the
            decode; spans are shifted to it and clipped to ``[0, len(text)]``.

    Returns:
        One ``(start, end)`` per token; consecutive tokens may share the one character that
        a multi-byte split puts across them; special tokens get empty spans.
    """
    ids = [int(i) for i in ids]
    full = _decode(tokenizer, ids)
    spans = None
    if _is_byte_level(tokenizer):
        spans = _byte_level_spans(tokenizer, ids, full)
    if spans is None:
        spans = _incremental_spans(tokenizer, ids, full)
    if text is None or text == full:
        return spans
    shift = locate_text(full, text)
    if shift is None:
        raise ValueError("the completion text is not a substring of the decoded completion ids")
    n = len(text)
    return [(min(max(s - shift, 0), n), min(max(e - shift, 0), n)) for s, e in spans]


def locate_text(full: str, text: str) -> int | None:
    """Offset of ``text`` in ``full`` (the decode of the ids), or ``None`` when it is not there."""
    if text == full:
        return 0
    i = full.find(text)
    return None if i < 0 else i


def tokens_in_span(spans: Sequence[tuple[int, int]], start: int, end: int) -> list[int]:
    """Indices of the tokens whose (non-empty) char span overlaps ``[start, end)``.

    An empty ``[start, end)`` (a blank line) selects the tokens that hold the position ``start``.
    """
    if end <= start:
        return [i for i, (s, e) in enumerate(spans) if s <= start < e]
    return [i for i, (s, e) in enumerate(spans) if e > s and s < end and e > start]


def span_token_mask(spans: Sequence[tuple[int, int]], start: int, end: int, length: int | None = None) -> list[bool]:
    """Boolean per token (padded with False to ``length``): does it overlap ``[start, end)``."""
    hit = set(tokens_in_span(spans, start, end))
    n = len(spans) if length is None else length
    return [i in hit for i in range(n)]
