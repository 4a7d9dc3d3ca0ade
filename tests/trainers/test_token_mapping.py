"""Error line -> char span -> token indices, exact on two tokenizer families with multi-line tokens."""

from __future__ import annotations

import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("transformers")

from trl_codefeedback.execution.feedback import ErrorScope, Feedback, Status  # noqa: E402
from trl_codefeedback.feedback.base import ScoredCompletion  # noqa: E402
from trl_codefeedback.feedback.extract import count_line_breaks, extract_code  # noqa: E402
from trl_codefeedback.feedback.token_mapping import (  # noqa: E402
    _decode,
    _incremental_spans,
    span_token_mask,
    token_char_spans,
    tokens_in_span,
)
from trl_codefeedback.trainers.fine_grained import FineGrainedSettings, token_plan  # noqa: E402

CORPUS = [
    "def add(a, b):\n    return a + b\n\n",
    "def f(x):\n    y = x + 1\n    return y\n\n",
    "```python\ndef g(xs):\n    return [x * 2 for x in xs]\n```\n",
    "for i in range(10):\n    print(i)\n\r\n",
    "if x:\r\n    return None\r\n",
    "Here is the code:\n```py\nz = undefined_name\n```\nDone.",
    "# é ü 漢字\nclass A:\n    pass\n",
] * 30


def _byte_level_tokenizer():
    """GPT-2 / Qwen family: byte-level BPE; no regex split, so merges cross line breaks (":\\n    ")."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<eos>")


def _metaspace_tokenizer():
    """SentencePiece / Llama-1 / T5 family: "▁" for spaces, no split, so tokens span line breaks."""
    from tokenizers import Tokenizer, decoders, models, normalizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))  # Llama-1/2 tokenizer.json layout, minus byte fallback
    bpe.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    bpe.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "</s>"], show_progress=False)
    bpe.train_from_iterator(CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="</s>", pad_token="</s>", unk_token="<unk>")


@pytest.fixture(scope="module", params=["byte_level", "metaspace"])
def tok(request):
    return _byte_level_tokenizer() if request.param == "byte_level" else _metaspace_tokenizer()


def _ids(tok, text, eos=True):
    ids = tok(text, add_special_tokens=False).input_ids
    return ids + ([tok.eos_token_id] if eos else [])


def _scored(text, error_line, scope=ErrorScope.LINE, status=Status.RUNTIME_ERROR, prefix="", truncated=False):
    ex = extract_code(text, continuation=bool(prefix))
    fb = Feedback(status=status, error_line=error_line, error_scope=scope, error_type="NameError")
    return ScoredCompletion(fb, ex, count_line_breaks(prefix), error_line, truncated, -0.6)


def _blamed_text(tok, text, ids, line, **kw):
    r = _scored(text, line, **kw)
    spans = token_char_spans(tok, ids, text)
    idx = tokens_in_span(spans, *r.error_span())
    return "".join(tok.decode([ids[i]]) for i in idx), idx, spans, r


def test_tokenizers_have_multiline_tokens(tok):
    ids = _ids(tok, CORPUS[1], eos=False)
    pieces = [tok.decode([i]) for i in ids]
    assert any("\n" in p and p.strip("\n") for p in pieces), pieces


def test_spans_cover_the_decode_exactly(tok):
    for text in CORPUS[:7]:
        ids = _ids(tok, text)
        full = _decode(tok, ids)
        spans = token_char_spans(tok, ids)
        assert spans[-1][0] == spans[-1][1]  # EOS: skipped by the decode, empty span
        assert spans == _incremental_spans(tok, ids, full)  # fast path (byte level) == generic path
        # the tokens' spans tile the text: each token decodes to exactly its chars (ASCII texts)
        if text.isascii():
            assert "".join(full[s:e] for s, e in spans) == full
            for (s, e), i in zip(spans, ids):
                piece = _decode(tok, [i])
                assert full[s:e] == piece or (s == 0 and full[s:e] == piece.lstrip())  # SentencePiece: first "▁"


@pytest.mark.parametrize(
    "text,line,expected",
    [
        ("def f(x):\n    y = x + 1\n    return y\n", 1, "def f(x):"),  # first line
        ("def f(x):\n    y = x + 1\n    return y\n", 2, "    y = x + 1"),  # a line that starts inside a token
        ("def f(x):\n    y = x + 1\n    return y", 3, "    return y"),  # last line, no trailing newline
        ("if x:\r\n    return None\r\n", 2, "    return None"),  # CRLF
        ("Here is the code:\n```py\nz = undefined_name\n```\nDone.", 1, "z = undefined_name"),  # fenced, tag
    ],
)
def test_error_line_tokens(tok, text, line, expected):
    ids = _ids(tok, text)
    blamed, idx, spans, r = _blamed_text(tok, text, ids, line)
    s, e = r.error_span()
    assert text[s:e] == expected
    # every char of the line is covered by a blamed token, and every blamed token touches the line
    covered = set()
    for i in idx:
        covered.update(range(*spans[i]))
        assert spans[i][0] < e and spans[i][1] > s
    assert set(range(s, e)) <= covered
    # tokens wholly outside the line are not blamed
    for i, (a, b) in enumerate(spans):
        if b <= s or a >= e:
            assert i not in idx
    assert expected.strip() in blamed.replace("▁", " ")


def test_line_starting_mid_token_blames_the_shared_token(tok):
    text = "def f(x):\n    y = x + 1\n    return y\n"
    ids = _ids(tok, text)
    spans = token_char_spans(tok, ids, text)
    s, e = _scored(text, 2).error_span()
    starts_inside = [i for i, (a, b) in enumerate(spans) if a < s < b]
    if starts_inside:  # e.g. ":\n    " holds the end of line 1 and the start of line 2
        assert starts_inside[0] in tokens_in_span(spans, s, e)
        assert starts_inside[0] in tokens_in_span(spans, *_scored(text, 1).error_span())


def test_completion_cut_at_length_limit(tok):
    text = "```python\ndef h(values):\n    total = sum(v * 3 for v in values if v > 0)\n    return total\n```\n"
    full_ids = _ids(tok, text, eos=False)
    limit = text.index("for v")
    k = max(k for k in range(len(full_ids) + 1) if len(_decode(tok, full_ids[:k])) <= limit)
    ids = full_ids[:k]  # cut at the length limit: unclosed fence, last line partial
    cut = _decode(tok, ids)
    ex = extract_code(cut)
    assert not ex.closed
    r = _scored(cut, ex.num_lines, scope=ErrorScope.GLOBAL, status=Status.COMPILE_ERROR, truncated=True)
    spans = token_char_spans(tok, ids, cut)
    plan = token_plan(r, spans, len(ids), FineGrainedSettings())
    assert plan.scope == "global"
    code_tokens = tokens_in_span(spans, ex.start, ex.end)
    assert plan.penalized == code_tokens and len(code_tokens) < len(ids)  # the fence opener is not blamed
    assert plan.value == pytest.approx(-0.3 * len(ids) / len(code_tokens))
    line_r = _scored(cut, ex.num_lines)  # the last (partial) line in line scope
    last = tokens_in_span(spans, *line_r.error_span())
    assert last and last[-1] == len(ids) - 1


def test_completion_style_prefix():
    """HumanEval-style: the program is code_prefix + completion; the reward maps the program line back."""
    tok = _byte_level_tokenizer()
    text = "    y = x + 1\n    return z\n```\nThat is all."
    ids = _ids(tok, text)
    prefix = "def f(x):\n"
    r = _scored(text, 2, prefix=prefix)  # code line 2 == program line 3
    spans = token_char_spans(tok, ids, text)
    s, e = r.error_span()
    assert text[s:e] == "    return z"
    assert tokens_in_span(spans, s, e)


def test_multibyte_split_tokens_are_blamed_with_their_char():
    tok = _byte_level_tokenizer()
    text = "x = 1\ns = '漢' + y\nprint(s)\n"
    ids = _ids(tok, text)
    spans = token_char_spans(tok, ids, text)
    full = _decode(tok, ids)
    assert full == text
    assert spans == _incremental_spans(tok, ids, full)
    s, e = _scored(text, 2).error_span()
    idx = tokens_in_span(spans, s, e)
    han = text.index("漢")
    holding = [i for i, (a, b) in enumerate(spans) if a <= han < b]
    assert len(holding) >= 1 and set(holding) <= set(idx)
    assert not set(tokens_in_span(spans, *_scored(text, 1).error_span())) & set(holding)


def test_text_shifted_inside_decode():
    tok = _byte_level_tokenizer()
    text = "def f(x):\n    return y\n"
    ids = _ids(tok, "  " + text)
    spans = token_char_spans(tok, ids, text)  # e.g. a chat parser stripped leading blanks
    s, e = _scored(text, 2).error_span()
    assert text[s:e] == "    return y"
    assert tokens_in_span(spans, s, e)
    with pytest.raises(ValueError):
        token_char_spans(tok, ids, "not in there")


def test_span_token_mask_pads():
    assert span_token_mask([(0, 3), (3, 5)], 3, 4, length=4) == [False, True, False, False]
