"""Pull the program out of a model completion, keeping exact character offsets.

A completion is plain text (standard prompts) or a list of chat messages
(conversational prompts, as TRL passes them). The code is either the whole text,
or the body of a Markdown fence (```` ```python ````, ```` ```py ````, ```` ``` ````);
the first block tagged with the wanted language wins, then the first untagged
block, then the first block. A fence with no closing line (generation cut at the
length limit) runs to the end of the text.

Offsets index into :func:`completion_text` of the completion, so an error line of
the code maps to an exact character span of the generated text (and from there
to tokens).

Example:
    >>> ex = extract_code("Here:\\n```python\\ndef f():\\n    return 1\\n```\\nDone.")
    >>> ex.code
    'def f():\\n    return 1\\n'
    >>> ex.start, ex.was_fenced, ex.language
    (16, True, 'python')
    >>> ex.line_span(2)   # chars of code line 2 in the completion text
    (25, 37)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Line breaks as the Python tokenizer sees them (str.splitlines also splits on \x0c, \x1c, \u2028...: not code).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# A fence line: up to 3 spaces of indent, 3+ backticks, an optional info string.
_FENCE = re.compile(r"^ {0,3}(`{3,})[ \t]*([^`\r\n]*?)[ \t]*(?:\r\n|\r|\n|$)", re.MULTILINE)

LANGUAGE_ALIASES: dict[str, tuple[str, ...]] = {
    "python": ("python", "py", "python3", "py3"),
    "java": ("java",),
}


@dataclass(frozen=True)
class ExtractedCode:
    """The code found in a completion and where it sits in the completion text.

    Attributes:
        code: the program text (``text[start:end]``).
        start: char offset of the code in :attr:`text`.
        end: char offset one past the code's last char.
        was_fenced: the code came from a Markdown fence.
        language: the fence's language tag (lower case), ``None`` when untagged or unfenced.
        closed: False when the fence had no closing line (likely a truncated generation).
        text: the completion text the offsets refer to (see :func:`completion_text`).
        line_starts: char offset in :attr:`text` of each line of the code (line 1 first).
    """

    code: str
    start: int
    end: int
    was_fenced: bool
    language: str | None
    closed: bool
    text: str
    line_starts: tuple[int, ...]

    @property
    def num_lines(self) -> int:
        return len(self.line_starts)

    @property
    def is_empty(self) -> bool:
        """True when there is no code at all (only whitespace)."""
        return not self.code.strip()

    def line_span(self, line: int) -> tuple[int, int]:
        """Char span ``[start, end)`` in :attr:`text` of 1-based code ``line``, line break excluded.

        Raises:
            IndexError: when the code has no such line.
        """
        if not 1 <= line <= len(self.line_starts):
            raise IndexError(f"code has {len(self.line_starts)} lines, asked for line {line}")
        s = self.line_starts[line - 1]
        m = _LINE_BREAK.search(self.text, s, self.end)
        return s, (m.start() if m else self.end)


def code_line_to_completion_span(extracted: ExtractedCode, line: int) -> tuple[int, int]:
    """Char span in the completion text of 1-based code ``line`` (see :meth:`ExtractedCode.line_span`)."""
    return extracted.line_span(line)


def line_starts(text: str, start: int = 0, end: int | None = None) -> tuple[int, ...]:
    """Offsets of the lines of ``text[start:end]`` (a trailing line break opens no new line)."""
    end = len(text) if end is None else end
    starts = [start]
    for m in _LINE_BREAK.finditer(text, start, end):
        if m.end() < end:
            starts.append(m.end())
    return tuple(starts)


def count_line_breaks(text: str) -> int:
    """Number of line breaks (``\\r\\n``, ``\\r``, ``\\n``) in ``text``."""
    return len(_LINE_BREAK.findall(text))


def completion_text(completion: Any) -> str:
    """The text of a completion: a string as is, or the last assistant message's content.

    TRL passes conversational completions as ``[{"role": "assistant", "content": ...}]``;
    content given as blocks (``[{"type": "text", "text": ...}]``) is concatenated.
    """
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, (list, tuple)):
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
        if not assistant:
            return ""
        content = assistant[-1].get("content")
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            blocks = [b for b in content if isinstance(b, dict) and b.get("type", "text") == "text"]
            return "".join(b.get("text", "") for b in blocks)
    raise TypeError(f"a completion must be a string or a list of chat messages, got {type(completion).__name__}")


@dataclass(frozen=True)
class _Block:
    start: int  # first char of the body
    end: int  # one past the body (start of the closing fence line, or len(text))
    tag: str | None
    closed: bool


def _fenced_blocks(text: str) -> list[_Block]:
    blocks: list[_Block] = []
    pos = 0
    while True:
        m = _FENCE.search(text, pos)
        if m is None:
            return blocks
        ticks, info = m.group(1), m.group(2)
        tag = info.split()[0].lower() if info.strip() else None
        body = m.end()
        # A closing fence: same or more backticks, nothing after them.
        closing = re.compile(r"^ {0,3}`{%d,}[ \t]*(?:\r\n|\r|\n|$)" % len(ticks), re.MULTILINE)
        c = closing.search(text, body)
        if c is None:
            blocks.append(_Block(body, len(text), tag, closed=False))
            return blocks
        blocks.append(_Block(body, c.start(), tag, closed=True))
        pos = c.end()
        if pos >= len(text):
            return blocks


def _make(text: str, start: int, end: int, fenced: bool, tag: str | None, closed: bool) -> ExtractedCode:
    return ExtractedCode(
        code=text[start:end],
        start=start,
        end=end,
        was_fenced=fenced,
        language=tag,
        closed=closed,
        text=text,
        line_starts=line_starts(text, start, end),
    )


def extract_code(completion: Any, language: str = "python", continuation: bool = False) -> ExtractedCode:
    """Find the program in a completion (string or chat messages).

    Args:
        completion: the completion as TRL passes it to reward functions.
        language: which fence tags count as "this language" (``python`` accepts py, python3...).
        continuation: the completion continues code given in the prompt (HumanEval-style
            ``code_prefix``). Then, unless the completion itself opens with a fence, the code is
            the text up to the first fence line (the model closing the prompt's code block).

    Returns:
        An :class:`ExtractedCode`; ``code`` is ``""`` when there is nothing to run.

    Example:
        >>> extract_code([{"role": "assistant", "content": "```\\nx = 1\\n```"}]).code
        'x = 1\\n'
        >>> extract_code("    return x\\n```\\nThat adds one.", continuation=True).code
        '    return x\\n'
    """
    text = completion_text(completion)
    if continuation:
        m = _FENCE.search(text)
        if m is None or text[: m.start()].strip():
            # The completion does not open with a fence: the code is everything before the first fence line.
            return _make(text, 0, m.start() if m else len(text), False, None, True)
    blocks = _fenced_blocks(text)
    if not blocks:
        return _make(text, 0, len(text), False, None, True)
    aliases = LANGUAGE_ALIASES.get(language, (language,))
    chosen = (
        next((b for b in blocks if b.tag in aliases), None)
        or next((b for b in blocks if b.tag is None), None)
        or blocks[0]
    )
    return _make(text, chosen.start, chosen.end, True, chosen.tag, chosen.closed)
