"""Verdicts, decided on the trusted side: comparisons, per-test outcomes -> a Feedback dict, error scopes.

Example:
    >>> fb = build_feedback(code="def f():\\n    return 1\\n", truncated=False, total=2,
    ...                     outcomes=["pass", "fail"], first_bad={"o": "fail", "type": "AssertionError"})
    >>> fb["status"], fb["tests_passed"], fb["error_scope"]
    ('failed', 1, None)
"""

from __future__ import annotations

import math

MESSAGE_LIMIT = 1000
_STATUS_OF = {"fail": "failed", "error": "runtime_error", "timeout": "timeout", "resource": "resource_limit"}
OUTCOMES = ("pass", "fail", "error", "timeout", "resource", "not_run")


def build_feedback(code: str, truncated: bool, total: int, outcomes: list[str], first_bad: dict | None,
                   duration: float = 0.0, covered: list[int] | None = None, compile_error: dict | None = None) -> dict:
    """A Feedback dict from the per-test outcomes; the first failure decides status and error fields."""
    if compile_error is not None:
        line = compile_error.get("line")
        line = line if type(line) is int and 1 <= line <= code.count("\n") + 1 else None
        return {
            "status": "compile_error", "tests_passed": 0, "tests_total": total,
            "error_type": compile_error["type"], "error_message": compile_error["msg"][:MESSAGE_LIMIT], "error_line": line,
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
        error_type=str(first_bad.get("type"))[:200],
        error_message=str(first_bad.get("msg") or "")[:MESSAGE_LIMIT],
        error_line=line,
        error_scope=None if status == "failed" else python_error_scope(first_bad.get("type"), first_bad.get("msg"), line, code, truncated),
    )
    return fb


# ----------------------------------------------------------------------------- comparisons


def _as_float(tok: str):
    try:
        return float(tok)
    except ValueError:
        return None


def outputs_match(got: str, expected: str) -> bool:
    """APPS-style stdout comparison: exact after stripping, then token-wise, then floats (rel 1e-5, abs 1e-8)."""
    g_lines = [ln.strip() for ln in got.strip().splitlines()]
    e_lines = [ln.strip() for ln in expected.strip().splitlines()]
    if g_lines == e_lines:
        return True
    g_tok, e_tok = got.split(), expected.split()
    if g_tok == e_tok:
        return True
    if len(g_tok) != len(e_tok) or not g_tok:
        return False
    for a, b in zip(g_tok, e_tok):
        if a == b:
            continue
        fa, fb = _as_float(a), _as_float(b)
        if fa is None or fb is None or not math.isclose(fa, fb, rel_tol=1e-5, abs_tol=1e-8):
            return False
    return True


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
