"""Code extraction from completions: fences, chat messages, offsets, CRLF."""

import pytest

from trl_codefeedback.feedback.extract import (
    code_line_to_completion_span,
    completion_text,
    count_line_breaks,
    extract_code,
)


def _check_offsets(ex):
    """Every code line's span must be the exact text of that line."""
    assert ex.text[ex.start : ex.end] == ex.code
    lines = ex.code.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if ex.code.endswith(("\n", "\r")):
        lines = lines[:-1]
    lines = lines or [""]
    assert ex.num_lines == len(lines)
    for i, line in enumerate(lines, start=1):
        s, e = code_line_to_completion_span(ex, i)
        assert ex.text[s:e] == line


def test_plain_text_is_whole_completion():
    ex = extract_code("def f(x):\n    return x + 1\n")
    assert ex.code == "def f(x):\n    return x + 1\n"
    assert (ex.start, ex.was_fenced, ex.language, ex.closed) == (0, False, None, True)
    _check_offsets(ex)


@pytest.mark.parametrize("tag", ["python", "py", "Python", "python3"])
def test_tagged_fence(tag):
    text = f"Here is the code:\n```{tag}\ndef f():\n    return 1\n```\nIt returns one."
    ex = extract_code(text)
    assert ex.code == "def f():\n    return 1\n"
    assert ex.was_fenced and ex.language == tag.lower() and ex.closed
    assert ex.start == text.index("def f")
    _check_offsets(ex)


def test_untagged_fence():
    ex = extract_code("```\nx = 1\n```")
    assert (ex.code, ex.language, ex.was_fenced) == ("x = 1\n", None, True)
    _check_offsets(ex)


def test_prefers_first_python_tagged_block():
    text = "```text\noutput\n```\n```\nuntagged = 1\n```\n```python\nfirst = 1\n```\n```python\nsecond = 2\n```"
    ex = extract_code(text)
    assert ex.code == "first = 1\n"
    assert ex.start == text.index("first")


def test_untagged_block_beats_other_language():
    ex = extract_code("```java\nclass A {}\n```\n```\nx = 1\n```")
    assert ex.code == "x = 1\n"


def test_other_language_block_used_when_only_one():
    ex = extract_code("```javascript\nlet x = 1;\n```")
    assert ex.code == "let x = 1;\n" and ex.language == "javascript"


def test_language_argument_selects_java():
    ex = extract_code("```python\nx = 1\n```\n```java\nclass A {}\n```", language="java")
    assert ex.code == "class A {}\n"


def test_unterminated_fence_runs_to_end():
    text = "Sure!\n```python\ndef f(x):\n    return (x +"
    ex = extract_code(text)
    assert ex.code == "def f(x):\n    return (x +"
    assert ex.was_fenced and not ex.closed
    assert ex.end == len(text)
    _check_offsets(ex)


def test_fence_with_nothing_after_it_is_empty():
    for text in ("```python", "```python\n", "```python\n```", "", "   \n\n"):
        assert extract_code(text).is_empty


def test_chat_completion_takes_assistant_content():
    completion = [{"role": "assistant", "content": "Answer:\n```py\nx = 2\n```"}]
    ex = extract_code(completion)
    assert ex.code == "x = 2\n"
    assert ex.text == completion[0]["content"]
    assert ex.start == completion[0]["content"].index("x = 2")


def test_chat_completion_last_assistant_message_and_blocks():
    completion = [
        {"role": "assistant", "content": "first"},
        {"role": "tool", "content": "ignored"},
        {"role": "assistant", "content": [{"type": "text", "text": "```\n"}, {"type": "text", "text": "y = 3\n```"}]},
    ]
    assert completion_text(completion) == "```\ny = 3\n```"
    assert extract_code(completion).code == "y = 3\n"


def test_chat_completion_without_assistant_or_content():
    assert extract_code([{"role": "assistant", "content": None}]).is_empty
    assert extract_code([]).is_empty
    assert extract_code(None).is_empty


def test_bad_completion_type():
    with pytest.raises(TypeError, match="completion must be"):
        extract_code(42)


def test_crlf_offsets_and_line_spans():
    text = "Code:\r\n```python\r\ndef f():\r\n    return 1\r\n\r\nx = f()\r\n```\r\nbye"
    ex = extract_code(text)
    assert ex.code == "def f():\r\n    return 1\r\n\r\nx = f()\r\n"
    assert ex.num_lines == 4
    assert ex.text[slice(*ex.line_span(1))] == "def f():"
    assert ex.text[slice(*ex.line_span(2))] == "    return 1"
    assert ex.line_span(3)[0] == ex.line_span(3)[1]  # empty line
    assert ex.text[slice(*ex.line_span(4))] == "x = f()"
    _check_offsets(ex)


def test_lone_cr_is_a_line_break_but_form_feed_is_not():
    # Python's tokenizer treats \r as a line break and \x0c as whitespace (str.splitlines differs).
    ex = extract_code("a = 1\rb = 2\x0cc = 3\n")
    assert ex.num_lines == 2
    assert ex.text[slice(*ex.line_span(2))] == "b = 2\x0cc = 3"


def test_line_span_out_of_range():
    ex = extract_code("x = 1\n")
    with pytest.raises(IndexError):
        ex.line_span(2)
    with pytest.raises(IndexError):
        ex.line_span(0)


def test_indented_fence_is_code_not_a_fence():
    ex = extract_code("s = '''\n    ```\n'''\n")
    assert not ex.was_fenced and ex.code == "s = '''\n    ```\n'''\n"


def test_continuation_cuts_at_closing_fence():
    text = "    return x + 1\n```\n\nThis adds one."
    ex = extract_code(text, continuation=True)
    assert ex.code == "    return x + 1\n" and ex.start == 0 and not ex.was_fenced
    assert extract_code("    return x\n", continuation=True).code == "    return x\n"


def test_continuation_that_opens_a_fence_is_extracted():
    ex = extract_code("\n```python\ndef f(x):\n    return x\n```", continuation=True)
    assert ex.code == "def f(x):\n    return x\n" and ex.was_fenced


def test_count_line_breaks():
    assert count_line_breaks("a\r\nb\rc\nd") == 3
    assert count_line_breaks("") == 0
