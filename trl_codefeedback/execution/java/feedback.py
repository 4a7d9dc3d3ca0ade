"""Java replies -> :class:`Feedback`: statuses, error types, lines and RLTF scopes (tables in docs/java.md).

Example:
    >>> java_error_scope("Timeout", "", None, "", False)
    'global'
    >>> java_error_scope("expected", "';' expected", 3, "x\\n" * 9, False, compile_code="compiler.err.expected")
    'line'
"""

from __future__ import annotations

from dataclasses import dataclass

from trl_codefeedback.execution.feedback import Feedback
from trl_codefeedback.execution.java.source import normalize_newlines

IGNORE_CODES = ("compiler.err.unclosed.comment", "compiler.err.unclosed.text.block",
                "compiler.err.class.public.should.be.in.file")
GLOBAL_CODES = ("compiler.err.premature.eof",)
GLOBAL_RUNTIME = ("Timeout", "StackOverflowError", "OutOfMemoryError", "OutputLimitExceeded")
STATUS_OF = {"fail": "failed", "error": "runtime_error", "timeout": "timeout", "resource": "resource_limit"}
OUTCOMES = ("pass", "fail", "error", "timeout", "resource", "not_run")


@dataclass(frozen=True)
class JavaDiagnostic:
    """One javac error. ``line`` / ``column`` are in the candidate code; ``line`` is None in the test part."""

    kind: str
    code: str
    line: int | None
    column: int | None
    message: str


def last_code_line(code: str) -> int:
    """1-based number of the last non-blank line of ``code`` (1 when there is none)."""
    lines = normalize_newlines(code).split("\n")  # javac's lines, not str.splitlines' (\x0c, \u2028, ...)
    return next((i for i in range(len(lines), 0, -1) if lines[i - 1].strip()), 1)


def java_error_scope(error_type: str | None, message: str | None, line: int | None, code: str, truncated: bool,
                     compile_code: str | None = None) -> str | None:
    """RLTF's line / global / ignore taxonomy for Java. ``compile_code``: javac's key for compile errors."""
    if error_type is None:
        return None
    if compile_code is not None:
        if compile_code in IGNORE_CODES:
            return "ignore"
        if compile_code in GLOBAL_CODES or line is None:
            return "global"
        if truncated and line >= last_code_line(code):
            return "global"
        return "line"
    if error_type in GLOBAL_RUNTIME:
        return "global"
    if error_type in ("WrongAnswer", "NotPlainData"):
        return "ignore"
    return "line" if line is not None else "ignore"


def diagnostics_of(resp: dict, candidate_lines: int) -> list[JavaDiagnostic]:
    """The javac errors of a worker reply, with lines past the candidate code set to None."""
    out = []
    for d in resp.get("diagnostics", []):
        line = d.get("line")
        inside = isinstance(line, int) and 1 <= line <= candidate_lines
        out.append(JavaDiagnostic(str(d.get("kind", "error")), str(d.get("code") or ""), line if inside else None,
                                  d.get("column") if inside else None, str(d.get("message", ""))))
    return out


def compile_feedback(job: dict, resp: dict, candidate_lines: int, duration: float) -> Feedback:
    """A compile_error Feedback: the first error located in the candidate code, else the first one."""
    total = job["num_tests"] if job.get("tests") else 0
    diags = diagnostics_of(resp, candidate_lines)
    d = next((x for x in diags if x.line is not None), diags[0] if diags else JavaDiagnostic("error", "compiler.err", None, None, "compilation failed"))
    first_line = d.message.splitlines()[0] if d.message else ""
    where = f" (line {d.line}, column {d.column})" if d.line is not None else " (in the test code)"
    etype = d.code.removeprefix("compiler.err.") or "CompileError"
    return Feedback(status="compile_error", tests_total=total, error_type=etype, error_message=(first_line + where)[:2000],
                    error_line=d.line, duration_s=duration, test_outcomes=["not_run"] * total,
                    error_scope=java_error_scope(etype, d.message, d.line, job["code"], bool(job.get("truncated")), compile_code=d.code))


def program_feedback(job: dict, checks: list[dict], duration: float, leftover_thread: bool = False,
                     exit_line: int | None = None, exited: bool = False, cpu_time_s: float | None = None) -> Feedback:
    """Feedback from one judged outcome per check (``{"o", "type", "msg", "line"}``), in check order.

    The first non-passing check decides status, type, message and line. ``leftover_thread``: a
    non-daemon thread of the program outlived the deadline (a plain ``java Main`` would hang):
    passes become timeouts unless a check already errored. ``exited``: ``System.exit`` was called
    (even if caught): never a pass. ``cpu_time_s``: the program's CPU time as the worker measured it
    (None where not measured).
    """
    outcomes = [c["o"] for c in checks]
    first = next((c for c in checks if c["o"] != "pass"), None)
    if leftover_thread and (first is None or first["o"] == "fail"):
        first = {"o": "timeout", "type": "Timeout", "msg": "a thread started by the program was still running at the time limit"}
        outcomes = ["timeout" if o == "pass" else o for o in outcomes]
    if exited and (first is None or first.get("type") != "SystemExit"):
        first = {"o": "error", "type": "SystemExit", "msg": "System.exit called by the program", "line": exit_line}
        if "pass" in outcomes:
            outcomes[outcomes.index("pass")] = "error"
    passed = outcomes.count("pass")
    if first is None:
        return Feedback(status="passed", tests_passed=passed, tests_total=len(outcomes), duration_s=duration, test_outcomes=outcomes,
                        cpu_time_s=cpu_time_s)
    line = first.get("line")
    line = line if isinstance(line, int) and line >= 1 else None
    etype = first.get("type") or "Error"
    return Feedback(status=STATUS_OF.get(first["o"], "runtime_error"), tests_passed=passed, tests_total=len(outcomes),
                    error_type=etype, error_message=str(first.get("msg") or etype)[:2000], error_line=line,
                    error_scope=java_error_scope(etype, first.get("msg"), line, job["code"], bool(job.get("truncated"))),
                    duration_s=duration, test_outcomes=outcomes, cpu_time_s=cpu_time_s)


def whole_program_feedback(job: dict, outcome: str, etype: str, message: str, duration: float) -> Feedback:
    """Every check gets ``outcome`` (e.g. the candidate JVM was killed or broke its channel)."""
    total = job["num_tests"] if job.get("tests") else 0
    return program_feedback(job, [{"o": outcome, "type": etype, "msg": message}] * max(total, 1), duration) if total else \
        Feedback(status=STATUS_OF[outcome], error_type=etype, error_message=message[:2000], duration_s=duration,
                 error_scope=java_error_scope(etype, message, None, job["code"], bool(job.get("truncated"))))
