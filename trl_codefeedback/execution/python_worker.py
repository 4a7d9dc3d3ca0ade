"""Long-lived Python worker ("zygote") that runs untrusted programs in sandboxed children.

This file is stdlib-only and runs as a script in a fresh interpreter started by
:class:`~trl_codefeedback.execution.executor.Executor` (never forked from a trainer
that holds torch). It sets up its isolation once (network and mount namespaces,
read-only file system except a private ``/tmp``), pre-imports common modules, then
for every job forks a child that:

* starts a new session and, where possible, a new PID namespace (when the program's
  first process ends, the kernel kills everything it started, double-forked
  daemons included);
* drops to a dedicated unprivileged uid (when the worker is root), sets rlimits
  (address space, CPU, processes, file size), scrubs the environment, changes to a
  private temp dir;
* compiles and runs the candidate against its tests in-process, one test at a
  time with a per-test timer, and streams one JSON event per test back on a pipe.

The worker kills the child's whole process tree at the program deadline, sweeps
leftovers, removes the temp dir and reaps every zombie.

Protocol: one JSON job per line on stdin, one JSON Feedback dict per line on stdout.
The module can also be imported (tests use :func:`split_check_units`).
"""

from __future__ import annotations

import ast
import functools
import io
import json
import math
import os
import select
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox"))
import isolation  # noqa: E402
from isolation import fork_bare  # noqa: E402,F401  (tests import it from here)

CANDIDATE_FILE = "<candidate>"
TESTS_FILE = "<tests>"
MESSAGE_LIMIT = 1000

# Modules most programs in MBPP / HumanEval / APPS import: imported once here so
# forked children do not pay for them.
PRELOAD = (
    "math cmath re collections collections.abc itertools functools heapq bisect string random "
    "typing operator statistics fractions decimal copy json datetime hashlib array fractions "
    "sys os io textwrap unicodedata dataclasses enum numbers queue struct calendar"
).split()

# ----------------------------------------------------------------------------- test running (child side)


class _TestTimeout(BaseException):
    """Raised by the per-test timer. BaseException so ``except Exception`` in candidate code cannot swallow it."""


class _OutputLimit(BaseException):
    """The program printed more than the output cap."""


class _CappedWriter(io.TextIOBase):
    def __init__(self, cap: int, keep: bool):
        self.cap, self.keep, self.size, self.parts = cap, keep, 0, []

    def writable(self) -> bool:
        return True

    def write(self, s) -> int:
        s = str(s)
        self.size += len(s)
        if self.size > self.cap:
            raise _OutputLimit(f"output exceeded {self.cap} characters")
        if self.keep:
            self.parts.append(s)
        return len(s)

    def getvalue(self) -> str:
        return "".join(self.parts)


def _innermost_candidate_line(tb) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == CANDIDATE_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a candidate exception whose __str__ raises
        text = "<unprintable>"
    return text[:MESSAGE_LIMIT]


def _classify_exception(exc: BaseException, stdio: bool = False) -> dict | None:
    """Map an exception raised while a test ran to an outcome dict, or None for 'normal end'."""
    if isinstance(exc, _TestTimeout):
        return {"o": "timeout", "type": "Timeout", "msg": "test exceeded its time limit", "line": _innermost_candidate_line(exc.__traceback__)}
    if isinstance(exc, MemoryError):
        return {"o": "resource", "type": "MemoryError", "msg": _message(exc), "line": _innermost_candidate_line(exc.__traceback__)}
    if isinstance(exc, _OutputLimit):
        return {"o": "resource", "type": "OutputLimitExceeded", "msg": _message(exc), "line": None}
    if isinstance(exc, SystemExit):
        if stdio and exc.code in (None, 0):
            return None
        return {"o": "error", "type": "SystemExit", "msg": f"program called exit({exc.code!r})", "line": _innermost_candidate_line(exc.__traceback__)}
    line = _innermost_candidate_line(exc.__traceback__)
    name = type(exc).__name__
    if line is None and isinstance(exc, AssertionError):
        return {"o": "fail", "type": "AssertionError", "msg": _message(exc) or "test assertion failed", "line": None}
    if line is None:
        # Raised in test code, not in the candidate: the candidate returned something wrong.
        return {"o": "fail", "type": name, "msg": _message(exc), "line": None}
    return {"o": "error", "type": name, "msg": _message(exc), "line": line}


def split_check_units(test_src: str, entry_point: str | None = None) -> tuple[str | None, list[tuple[ast.stmt, bool]]]:
    """Split a HumanEval-style ``check(candidate)`` into statements; flag the ones holding an ``assert``.

    Returns ``(argument name, [(statement, is_test), ...])``; ``(None, [])`` when
    there is no top-level ``check`` function (the whole call then counts as one test).
    """
    tree = ast.parse(test_src, TESTS_FILE)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check":
            if not node.args.args:
                return None, []
            arg = node.args.args[0].arg
            units = [(stmt, any(isinstance(n, ast.Assert) for n in ast.walk(stmt))) for stmt in node.body]
            if not any(is_test for _, is_test in units) or any(isinstance(n, ast.Return) for n in ast.walk(node)):
                return None, []
            return arg, units
    return None, []


@functools.lru_cache(maxsize=4096)
def count_check_units(test_src: str) -> int:
    """Number of tests :func:`split_check_units` yields (memoised: GRPO reuses a row's tests many times)."""
    try:
        _, units = split_check_units(test_src)
    except SyntaxError:
        return 1
    return sum(1 for _, t in units if t) or 1


def compile_candidate(code: str):
    """Compile candidate code in the worker (before any fork). Returns (code object, None) or (None, compile_error event)."""
    try:
        return compile(code, CANDIDATE_FILE, "exec", dont_inherit=True), None
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
        line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
        msg = exc.msg if isinstance(exc, SyntaxError) else _message(exc)
        return None, {"e": "compile_error", "type": type(exc).__name__, "msg": str(msg)[:MESSAGE_LIMIT], "line": line}


def compile_test_plan(tests: dict) -> dict | None:
    """Compile a test spec's code once; forked children inherit the code objects.

    Returns None for kinds with nothing to compile, or ``{"error": ...}`` for broken test code.
    """
    kind = tests["kind"]
    try:
        if kind == "asserts":
            setup = compile(tests["setup"], TESTS_FILE, "exec") if tests.get("setup") else None
            return {"setup": setup, "asserts": [compile(src, TESTS_FILE, "exec") for src in tests["asserts"]]}
        if kind == "check":
            arg, units = split_check_units(tests["test"])
            return {
                "arg": arg,
                "units": [(compile(ast.Module(body=[stmt], type_ignores=[]), TESTS_FILE, "exec"), is_test) for stmt, is_test in units],
                "test_code": compile(tests["test"], TESTS_FILE, "exec"),
                "total": sum(1 for _, t in units if t) or 1,
            }
    except SyntaxError as exc:
        return {"error": f"test code is not valid Python: {exc}"}
    return None


class _Runner:
    """Runs one program's tests inside the sandboxed child and streams events."""

    def __init__(self, job: dict, out_fd: int):
        self.job = job
        self.out_fd = out_fd
        self.limits = job["limits"]
        self.covered: set[int] = set()
        self.pending: list[str] = []
        self.last_flush = time.monotonic()
        self.failed = False

    FLUSH_INTERVAL_S = 0.05

    def emit(self, event: dict) -> None:
        """Queue an event; flush at the end, on the first failure, and at least every 50 ms.

        Batching saves the worker a wake-up per test; the interval keeps partial results
        flowing for slow programs that may be killed at the deadline.
        """
        self.pending.append(json.dumps(event))
        now = time.monotonic()
        # "compiled" marks where the harness ends and candidate code starts: it must reach the
        # worker before any candidate code runs, or an os._exit would look like our failure.
        # The first failure decides the status: it is sent at once, later ones are batched.
        first_failure = event.get("o") not in (None, "pass") and not self.failed
        if first_failure:
            self.failed = True
        if event.get("e") in ("compiled", "end", "harness_error") or first_failure or now - self.last_flush > self.FLUSH_INTERVAL_S:
            self.flush()
            self.last_flush = now

    def flush(self) -> None:
        if not self.pending:
            return
        data = ("\n".join(self.pending) + "\n").encode()
        self.pending = []
        while data:
            n = os.write(self.out_fd, data)
            data = data[n:]

    # -- per-test execution with timer, output capture and exception mapping

    def _alarm(self, signum, frame):
        raise _TestTimeout()

    def run_one(self, fn, stdio: bool = False) -> dict:
        t = self.limits["test_timeout_s"]
        signal.setitimer(signal.ITIMER_REAL, t)
        try:
            fn()
            result = {"o": "pass"}
        except BaseException as exc:  # noqa: BLE001 - everything a candidate raises is an outcome
            signal.setitimer(signal.ITIMER_REAL, 0)
            result = _classify_exception(exc, stdio=stdio) or {"o": "pass"}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return result

    def _tracer(self, frame, event, arg):
        if frame.f_code.co_filename != CANDIDATE_FILE:
            return None
        if event == "line":
            self.covered.add(frame.f_lineno)
        return self._tracer

    def _with_coverage(self, fn):
        if not self.job.get("coverage"):
            return fn

        def traced():
            sys.settrace(self._tracer)
            try:
                fn()
            finally:
                sys.settrace(None)

        return traced

    def _fresh_io(self, stdin_text: str = "", keep_output: bool = False) -> _CappedWriter:
        cap = self.limits["output_bytes"]
        out = _CappedWriter(cap, keep_output)
        sys.stdout = out
        sys.stderr = _CappedWriter(cap, False)
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin_text.encode()), encoding="utf-8")
        return out

    # -- entry

    def run(self, compiled, plan: dict | None) -> None:
        signal.signal(signal.SIGALRM, self._alarm)
        self.emit({"e": "compiled"})
        tests = self.job["tests"]
        if tests is None:
            self.emit({"e": "end"})
            return
        if plan is not None and "error" in plan:
            self.emit({"e": "harness_error", "msg": plan["error"]})
            return
        getattr(self, "_run_" + tests["kind"])(compiled, tests, plan)
        if self.job.get("coverage"):
            self.emit({"e": "coverage", "lines": sorted(self.covered)})
        self.emit({"e": "end"})

    def _exec_module(self, compiled, g: dict) -> dict:
        """Run the candidate's top level; a failure there fails every test."""
        self._fresh_io()
        return self.run_one(self._with_coverage(lambda: exec(compiled, g)))

    def _emit_all_failed(self, outcome: dict, total: int) -> None:
        self.emit({"e": "module_error", "total": total, **outcome})

    def _run_asserts(self, compiled, tests: dict, plan: dict) -> None:
        total = len(plan["asserts"])
        g = {"__name__": "__main__", "__builtins__": __builtins__}
        first = self._exec_module(compiled, g)
        if first["o"] != "pass":
            self._emit_all_failed(first, total)
            return
        if plan["setup"] is not None:
            # MBPP's harness runs code, then test_setup_code, then the asserts (the setup may use
            # the candidate's classes, e.g. MBPP 367's Node).
            self._fresh_io()
            setup = self.run_one(lambda: exec(plan["setup"], g))
            if setup["o"] != "pass":
                self._emit_all_failed({**setup, "o": "fail" if setup.get("line") is None else setup["o"]}, total)
                return
        for i, code in enumerate(plan["asserts"]):
            self._fresh_io()
            result = self.run_one(self._with_coverage(lambda: exec(code, g)))
            self.emit({"e": "test", "i": i, **result})
            if result["o"] == "timeout":
                return  # later tests cannot change the status; don't spend the budget on them

    def _run_check(self, compiled, tests: dict, plan: dict) -> None:
        g = {"__name__": "__main__", "__builtins__": __builtins__}
        arg, units, test_code, total = plan["arg"], plan["units"], plan["test_code"], plan["total"]
        first = self._exec_module(compiled, g)
        if first["o"] != "pass":
            self._emit_all_failed(first, total)
            return
        entry = tests["entry_point"]
        if entry not in g:
            err = {"o": "error", "type": "NameError", "msg": f"name {entry!r} is not defined by the program", "line": None}
            self._emit_all_failed(err, total)
            return
        candidate = g[entry]  # taken before the test code runs: it may define a name of its own (MBXP MBPP/56)
        self._fresh_io()
        setup = self.run_one(lambda: exec(test_code, g))
        if setup["o"] != "pass":
            self.emit({"e": "harness_error", "msg": f"check code failed to load: {setup.get('type')}: {setup.get('msg')}"})
            return
        if arg is None:  # no splittable check(): one test, the whole call
            self._fresh_io()
            self.emit({"e": "test", "i": 0, **self.run_one(self._with_coverage(lambda: g["check"](candidate)))})
            return
        g[arg] = candidate
        i = 0
        for code, is_test in units:
            self._fresh_io()
            result = self.run_one(self._with_coverage(lambda: exec(code, g)))
            if is_test:
                self.emit({"e": "test", "i": i, **result})
                i += 1
                if result["o"] == "timeout":
                    return
            elif result["o"] != "pass":
                # A setup statement of check() failed (e.g. it called the candidate): count it
                # against the next test so that the pass ratio stays over the asserts.
                self.emit({"e": "test", "i": i, **result})
                i += 1
                if i >= total:
                    return

    def _apps_globals(self) -> dict:
        """Globals pre-filled with APPS's import header (its harness prepends these lines to every solution)."""
        g = {"__name__": "__main__", "__builtins__": __builtins__}
        if _APPS_HEADER_CODE is not None:
            try:
                exec(_APPS_HEADER_CODE, g)
            except Exception:  # noqa: BLE001 - e.g. numpy missing: the header is best effort
                pass
        return g

    def _run_stdio(self, compiled, tests: dict, plan) -> None:
        for i, case in enumerate(tests["cases"]):
            g = self._apps_globals()
            out = self._fresh_io(case["input"], keep_output=True)
            result = self.run_one(self._with_coverage(lambda: exec(compiled, g)), stdio=True)
            if result["o"] == "pass" and not outputs_match(out.getvalue(), case["output"]):
                result = {"o": "fail", "type": "WrongAnswer", "msg": _wrong_answer_message(out.getvalue(), case["output"]), "line": None}
            self.emit({"e": "test", "i": i, **result})
            if result["o"] == "timeout":
                return

    def _run_call(self, compiled, tests: dict, plan) -> None:
        g = self._apps_globals()
        cases = tests["cases"]
        first = self._exec_module(compiled, g)
        if first["o"] != "pass":
            self._emit_all_failed(first, len(cases))
            return
        name = tests["fn_name"]
        fn = g.get(name)
        if not callable(fn) and isinstance(g.get("Solution"), type):
            try:
                fn = getattr(g["Solution"](), name, None)
            except Exception:  # noqa: BLE001
                fn = None
        if not callable(fn):
            err = {"o": "error", "type": "NameError", "msg": f"function {name!r} is not defined by the program", "line": None}
            self._emit_all_failed(err, len(cases))
            return
        for i, case in enumerate(cases):
            args = json.loads(json.dumps(case["input"]))
            box = {}

            def call():
                box["r"] = fn(*args)

            self._fresh_io()
            result = self.run_one(self._with_coverage(call))
            if result["o"] == "pass" and not call_result_matches(box.get("r"), case["output"]):
                result = {"o": "fail", "type": "WrongAnswer", "msg": f"expected {case['output']!r:.200}, got {box.get('r')!r:.200}", "line": None}
            self.emit({"e": "test", "i": i, **result})
            if result["o"] == "timeout":
                return


# The import header APPS's evaluation puts before every solution (without it, e.g. APPS 2404's
# ``List`` annotation fails). Executed into the program's globals so line numbers do not move.
APPS_HEADER = """import sys
import time
import itertools
from itertools import accumulate, product, permutations, combinations
import collections
from collections import Counter, OrderedDict, deque, defaultdict, ChainMap
from functools import lru_cache
import math
from math import sqrt, sin, cos, tan, ceil, fabs, floor, gcd, exp, log, log2
import fractions
from typing import List, Tuple
import random
import heapq
from heapq import *
"""
try:
    _APPS_HEADER_CODE = compile(APPS_HEADER, "<apps-header>", "exec")
except SyntaxError:  # pragma: no cover
    _APPS_HEADER_CODE = None


def _wrong_answer_message(got: str, expected: str) -> str:
    return f"expected output {expected[:200]!r}, got {got[:200]!r}"


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
    if isinstance(value, tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    return value


def call_result_matches(result, expected) -> bool:
    """APPS call-based comparison: tuples as lists; the expected value may be wrapped in a one-element list."""
    r = _normalise(result)
    if r == expected:
        return True
    if isinstance(expected, list) and len(expected) == 1 and r == expected[0]:
        return True
    return False


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


# ----------------------------------------------------------------------------- worker (parent side)


TERMINAL_EVENTS = ("end", "harness_error")


class Worker:
    def __init__(self, sandbox_uid: int, isolation: dict):
        self.uid = sandbox_uid if isolation.get("setuid") else -1
        self.isolation = isolation
        self.plans: dict[str, dict | None] = {}  # compiled test plans, LRU by insertion order

    # The child: everything between fork and the candidate's first line.
    def _plan(self, tests: dict | None) -> dict | None:
        if tests is None:
            return None
        key = json.dumps(tests, sort_keys=True)
        plan = self.plans.pop(key, None)
        if plan is None:
            plan = compile_test_plan(tests)
        self.plans[key] = plan  # re-insert: most recently used last
        while len(self.plans) > 512:
            self.plans.pop(next(iter(self.plans)))
        return plan

    def run_job(self, job: dict) -> dict:
        t0 = time.monotonic()
        # Compile here, before forking: a syntax error costs no process, and children
        # inherit the compiled candidate and test code.
        compiled, error = compile_candidate(job["code"])
        if error is not None:
            return build_feedback(job, [error], False, 0, time.monotonic() - t0)
        plan = self._plan(job["tests"])
        r, w = os.pipe()
        devnull = os.open(os.devnull, os.O_RDWR)

        def body() -> None:
            sys.setrecursionlimit(3000)
            runner = _Runner(job, 3)
            try:
                runner.run(compiled, plan)
            finally:
                runner.flush()

        try:
            pid, workdir = isolation.spawn_sandboxed(body, job["limits"], self.uid, self.isolation, (devnull, devnull, devnull, w))
        finally:
            os.close(w)
            os.close(devnull)
        deadline = t0 + job["limits"]["program_timeout_s"] + 0.25
        events, killed = self._collect(r, pid, deadline)
        os.close(r)
        st = isolation.wait_or_kill(pid, deadline)
        isolation.finish_program(pid, self.uid, self.isolation, workdir)
        duration = time.monotonic() - t0
        return build_feedback(job, events, killed, st, duration)

    def _collect(self, r: int, pid: int, deadline: float) -> tuple[list[dict], bool]:
        buf = b""
        events = []
        killed = False
        max_bytes = 64 * 1024 * 1024
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                isolation.kill_tree(pid)
                killed = True
                break
            ready, _, _ = select.select([r], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            buf += chunk
            if len(buf) > max_bytes:
                isolation.kill_tree(pid)
                killed = True
                break
            *lines, buf = buf.split(b"\n")
            for line in lines:
                try:
                    events.append(json.loads(line))
                except ValueError:
                    pass  # garbage written to our pipe by the candidate: ignored
            if events and events[-1].get("e") in TERMINAL_EVENTS:
                # Done: do not wait for EOF, which a daemon that inherited the pipe would delay.
                break
        return events, killed


def build_feedback(job: dict, events: list[dict], killed: bool, wait_status: int, duration: float) -> dict:
    """Turn the child's event stream and exit status into a Feedback dict."""
    code = job["code"]
    truncated = bool(job.get("truncated"))
    total = job["num_tests"]
    outcomes = ["not_run"] * total
    first_bad = None
    status = None
    covered = None
    compiled = False
    for ev in events:
        kind = ev.get("e")
        if kind == "harness_error":
            return {"status": "harness_error", "tests_total": total, "error_type": "HarnessError", "error_message": ev.get("msg", "")[:2000], "duration_s": duration, "test_outcomes": outcomes}
        if kind == "compile_error":
            line = ev.get("line")
            return {
                "status": "compile_error", "tests_passed": 0, "tests_total": total,
                "error_type": ev["type"], "error_message": ev["msg"], "error_line": line,
                "error_scope": python_error_scope(ev["type"], ev["msg"], line, code, truncated),
                "duration_s": duration, "test_outcomes": outcomes,
            }
        if kind == "compiled":
            compiled = True
        elif kind == "module_error":
            outcomes = [_outcome_name(ev["o"])] * total
            first_bad = first_bad or ev
        elif kind == "test":
            i = ev["i"]
            if 0 <= i < total:
                outcomes[i] = _outcome_name(ev["o"])
            if ev["o"] != "pass" and first_bad is None:
                first_bad = ev
        elif kind == "coverage":
            covered = ev.get("lines")
    ended = any(ev.get("e") == "end" for ev in events)
    passed = sum(1 for o in outcomes if o == "pass")
    fb = {"tests_passed": passed, "tests_total": total, "duration_s": duration, "test_outcomes": outcomes, "covered_lines": covered}
    if first_bad is None and not ended:
        # The program ended (or was killed) before the harness finished.
        if not compiled and not killed:
            fb.update(status="harness_error", error_type="HarnessError", error_message=f"sandboxed child died before compiling (exit status {wait_status})")
            return fb
        if killed:
            first_bad = {"o": "timeout", "type": "Timeout", "msg": "program exceeded its time limit", "line": None}
        else:
            first_bad = _abnormal_exit(wait_status)
        for i, o in enumerate(outcomes):
            if o == "not_run":
                outcomes[i] = _outcome_name(first_bad["o"])
                break
    elif not ended and killed:
        # Killed mid-run after a first failure was already recorded: the status stays with that failure.
        pass
    if first_bad is None:
        fb["status"] = "passed" if total == 0 or passed == total else "failed"
        return fb
    status = {"fail": "failed", "error": "runtime_error", "timeout": "timeout", "resource": "resource_limit"}[first_bad["o"]]
    line = first_bad.get("line")
    fb.update(
        status=status,
        error_type=first_bad.get("type"),
        error_message=(first_bad.get("msg") or "")[:MESSAGE_LIMIT],
        error_line=line,
        error_scope=None if status == "failed" else python_error_scope(first_bad.get("type"), first_bad.get("msg"), line, code, truncated),
    )
    return fb


def _outcome_name(o: str) -> str:
    return {"pass": "pass", "fail": "fail", "error": "error", "timeout": "timeout", "resource": "resource"}.get(o, "error")


def _abnormal_exit(wait_status: int) -> dict:
    code = os.waitstatus_to_exitcode(wait_status)
    if code < 0 or code > 128:
        sig = -code if code < 0 else code - 128
        if sig == signal.SIGXCPU:
            return {"o": "timeout", "type": "Timeout", "msg": "CPU time limit exceeded", "line": None}
        if sig == signal.SIGXFSZ:
            return {"o": "resource", "type": "FileSizeLimitExceeded", "msg": "file size limit exceeded", "line": None}
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return {"o": "error", "type": "Crash", "msg": f"program was killed by signal {name}", "line": None}
    return {"o": "error", "type": "EarlyExit", "msg": f"program exited with status {code} before its tests finished", "line": None}


WARM_UP_JOBS = (
    {"code": "def add(a, b):\n    return a + b\n", "num_tests": 2,
     "tests": {"kind": "check", "entry_point": "add", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 5\n"}},
    {"code": "def add(a, b):\n    return a + b\n", "num_tests": 3,
     "tests": {"kind": "asserts", "asserts": ["assert add(1, 2) == 3", "assert add(1, 1) == 3", "assert add(1) == 3"]}},
    {"code": "def add(a, b):\n    return a + c\n", "num_tests": 1,
     "tests": {"kind": "check", "entry_point": "add", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n"}},
)


def _warm_up_harness(rounds: int = 12) -> list[str]:
    """Run the in-child harness a few times in the zygote, on fixed trusted jobs.

    CPython 3.11+ writes into code objects while it warms them up and specialises them;
    done once here, those writes are not repeated as copy-on-write page faults in every
    forked child.
    Returns the statuses of the last round (tests check them).
    """
    statuses = []
    saved = sys.stdin, sys.stdout, sys.stderr
    saved_alarm = signal.getsignal(signal.SIGALRM)
    r, w = os.pipe()
    try:
        for _ in range(rounds):
            statuses = []
            for spec in WARM_UP_JOBS:
                job = {**spec, "limits": {"test_timeout_s": 3.0, "program_timeout_s": 10.0, "output_bytes": 1 << 16}}
                compiled, _ = compile_candidate(job["code"])
                runner = _Runner(job, w)
                runner.run(compiled, compile_test_plan(job["tests"]))
                runner.flush()
                events = [json.loads(line) for line in os.read(r, 1 << 20).splitlines()]
                feedback = build_feedback(job, events, False, 0, 0.0)
                json.dumps(feedback)
                statuses.append(feedback["status"])
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, saved_alarm)
        os.close(r)
        os.close(w)
    return statuses


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--uid-base", type=int, default=-1, help="programs run as uid BASE + this worker's pid (unique on the host)")
    ap.add_argument("--tmp-mb", type=int, default=512)
    ap.add_argument("--no-isolation", action="store_true")
    args = ap.parse_args()
    # The executor talks to us over our stdin/stdout; candidates never see these fds.
    # Buffered input: an unbuffered file object's readline() costs one read(2) per byte.
    proto_in = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    os.set_inheritable(proto_in.fileno(), False)
    os.set_inheritable(proto_out.fileno(), False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    isolation.become_subreaper_and_die_with_parent()
    uid = args.uid_base + os.getpid() if args.uid_base >= 0 else -1
    if args.no_isolation:
        info = {"network": False, "filesystem": False, "pid_namespace": False, "setuid": False, "mode": "disabled"}
    else:
        info = isolation.setup_isolation(uid, args.tmp_mb)
        if info["filesystem"]:
            os.environ["TCF_PRIVATE_TMP"] = "1"
    _preload()
    _warm_up_harness()
    import gc

    gc.collect()
    gc.freeze()  # keep the collector in forked children off the zygote's pages (fewer copy-on-write faults)
    worker = Worker(uid, info)
    proto_out.write((json.dumps({"ready": True, "isolation": info, "pid": os.getpid()}) + "\n").encode())
    for line in proto_in:
        try:
            job = json.loads(line)
            result = worker.run_job(job)
        except Exception:  # noqa: BLE001 - never die on one bad job
            result = {"status": "harness_error", "error_type": "HarnessError", "error_message": traceback.format_exc()[-2000:]}
        result["id"] = job.get("id") if isinstance(job, dict) else None
        proto_out.write((json.dumps(result) + "\n").encode())


if __name__ == "__main__":
    main()
