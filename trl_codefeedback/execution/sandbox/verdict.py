"""Verdicts, decided on the trusted side: comparisons, per-test outcomes -> a Feedback dict, error scopes.

Example:
    >>> fb = build_feedback(code="def f():\\n    return 1\\n", truncated=False, total=2,
    ...                     outcomes=["pass", "fail"], first_bad={"o": "fail", "type": "AssertionError"})
    >>> fb["status"], fb["tests_passed"], fb["error_scope"]
    ('failed', 1, None)
"""

from __future__ import annotations

import math
import re

MESSAGE_LIMIT = 1000
_STATUS_OF = {"fail": "failed", "error": "runtime_error", "timeout": "timeout", "resource": "resource_limit"}
OUTCOMES = ("pass", "fail", "error", "timeout", "resource", "not_run")


def _text(value, limit: int) -> str:
    """Program-chosen text, cut to ``limit`` and made encodable (a lone surrogate in an exception
    message would break every later UTF-8 write of it: logs, completion tables)."""
    return str(value)[:limit].encode("utf-8", "replace").decode("utf-8")


def build_feedback(code: str, truncated: bool, total: int, outcomes: list[str], first_bad: dict | None,
                   duration: float = 0.0, covered: list[int] | None = None, compile_error: dict | None = None) -> dict:
    """A Feedback dict from the per-test outcomes; the first failure decides status and error fields."""
    if compile_error is not None:
        line = compile_error.get("line")
        line = line if type(line) is int and 1 <= line <= code.count("\n") + 1 else None
        return {
            "status": "compile_error", "tests_passed": 0, "tests_total": total,
            "error_type": compile_error["type"], "error_message": _text(compile_error["msg"], MESSAGE_LIMIT), "error_line": line,
            "error_scope": python_error_scope(compile_error["type"], compile_error["msg"], line, code, truncated),
            "duration_s": duration, "test_outcomes": ["not_run"] * total,
        }
    passed = sum(1 for o in outcomes if o == "pass")
    if covered is not None:
        last = code.count("\n") + 1
        covered = [x for x in covered if 1 <= x <= last]
    fb = {"tests_passed": passed, "tests_total": total, "duration_s": duration, "test_outcomes": list(outcomes), "covered_lines": covered}
    if first_bad is None:
        fb["status"] = "passed" if passed == total else "failed"
        return fb
    status = _STATUS_OF[first_bad["o"]]
    line = first_bad.get("line")
    # The line comes from the program's side: only a line of the program counts.
    line = line if type(line) is int and 1 <= line <= code.count("\n") + 1 else None
    fb.update(
        status=status,
        error_type=_text(first_bad.get("type"), 200),
        error_message=_text(first_bad.get("msg") or "", MESSAGE_LIMIT),
        error_line=line,
        error_scope=None if status == "failed" else python_error_scope(first_bad.get("type"), first_bad.get("msg"), line, code, truncated),
    )
    return fb


# ----------------------------------------------------------------------------- comparisons


# Unambiguous (no two ways to split a digit run), so a long token is matched in linear time: the
# old ``[0-9]+\.?[0-9]*`` took 34 s on 40 000 digits and a letter, in the trusted worker.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")


def _as_float(tok: str):
    """A finite float for an ASCII decimal number token, else None (no "inf", "nan", "1_000", "１２")."""
    if not _NUMBER.match(tok):
        return None
    value = float(tok)
    return value if math.isfinite(value) else None


def _integer_key(tok: str) -> tuple[bool, str]:
    digits = tok.lstrip("+-").lstrip("0") or "0"
    return tok.startswith("-") and digits != "0", digits


def tokens_match(got: str, expected: str) -> bool:
    """One output token against the expected one: equal text, or equal numbers.

    An integer answer is exact (the same integer; written as a float only if that float is the
    same integer, e.g. ``1.0`` for ``1``); a decimal answer allows APPS's tolerance (relative 1e-5,
    absolute 1e-8). Numbers too large for a float are compared as text.

    Example:
        >>> tokens_match("0.3333333", "0.333333"), tokens_match("1000009", "1000000"), tokens_match("inf", "9" * 400)
        (True, False, False)
    """
    if got == expected:
        return True
    fg, fe = _as_float(got), _as_float(expected)
    if fg is None or fe is None:
        return False
    if _INTEGER.match(expected):
        if _INTEGER.match(got):
            return _integer_key(got) == _integer_key(expected)
        return fg.is_integer() and abs(fe) < 2**53 and fg == fe
    return math.isclose(fg, fe, rel_tol=1e-5, abs_tol=1e-8)


def outputs_match(got: str, expected: str) -> bool:
    """APPS-style stdout comparison: exact after stripping, then token-wise (:func:`tokens_match`)."""
    g_lines = [ln.strip() for ln in got.strip().splitlines()]
    e_lines = [ln.strip() for ln in expected.strip().splitlines()]
    if g_lines == e_lines:
        return True
    g_tok, e_tok = got.split(), expected.split()
    if g_tok == e_tok:
        return True
    if len(g_tok) != len(e_tok) or not g_tok:
        return False
    return all(tokens_match(a, b) for a, b in zip(g_tok, e_tok))


def _normalise(value):
    if isinstance(value, (tuple, list)):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    return value


def call_result_matches(result, expected) -> bool:
    """APPS call-based comparison: tuples as lists; the expected value may be wrapped in a one-element list."""
    r = _normalise(result)
    if r == expected:
        return True
    return isinstance(expected, list) and len(expected) == 1 and r == expected[0]


# ----------------------------------------------------------------------------- scopes


def python_error_scope(error_type: str | None, message: str | None, line: int | None, code: str, truncated: bool) -> str | None:
    """RLTF's line / global / ignore taxonomy for Python (the table is in docs/error_scopes.md)."""
    if error_type is None:
        return None
    message = message or ""
    if error_type in ("IndentationError", "TabError"):
        return "ignore"
    if error_type == "SyntaxError":
        if "unterminated triple-quoted string" in message:
            return "ignore"
        if truncated:
            last = last_code_line(code)
            if line is None or line >= last or "never closed" in message or "EOF" in message:
                return "global"
        return "line" if line is not None else "global"
    if error_type in ("Timeout", "RecursionError", "MemoryError", "OutputLimitExceeded"):
        return "global"
    if line is None:
        return "ignore"
    return "line"


def last_code_line(code: str) -> int:
    """1-based number of the last non-blank line of ``code`` (1 when there is none)."""
    lines = code.splitlines()
    for i in range(len(lines), 0, -1):
        if lines[i - 1].strip():
            return i
    return 1
