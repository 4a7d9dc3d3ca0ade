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
import ctypes
import ctypes.util
import functools
import io
import json
import math
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

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

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1

_libc = None


def _get_libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


# ----------------------------------------------------------------------------- isolation


def _mount(source, target, fstype, flags, data=None) -> None:
    libc = _get_libc()
    enc = lambda s: s.encode() if isinstance(s, str) else s  # noqa: E731
    _check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _mountpoints() -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            points.append(mp.encode().decode("unicode_escape"))
    return points


def _remount_readonly(keep_writable: tuple[str, ...]) -> int:
    """Remount every mount of this (private) namespace read-only except ``keep_writable`` trees."""
    count = 0
    for mp in _mountpoints():
        if any(mp == k or mp.startswith(k.rstrip("/") + "/") for k in keep_writable):
            continue
        st = os.statvfs(mp) if os.path.exists(mp) else None
        if st is None:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for bit, vf in ((MS_NOSUID, os.ST_NOSUID), (MS_NODEV, os.ST_NODEV), (MS_NOEXEC, os.ST_NOEXEC)):
            if st.f_flag & vf:
                flags |= bit
        try:
            _mount(None, mp, None, flags)
            count += 1
        except OSError:
            pass  # e.g. a mount we may not touch; the uid drop still protects it
    return count


def _interpreter_paths() -> set[str]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    return {os.path.realpath(p) for p in paths}


def _expose_interpreter(sandbox_uid: int) -> list[str]:
    """Let the sandbox uid read the interpreter even when it lives in a closed home (e.g. /root, mode 700).

    For each closed ancestor A of an interpreter path, a small tmpfs is mounted over A and
    only the needed sub-trees are bound back: the rest of A (tokens, caches) stays hidden.
    """
    blockers: dict[str, set[str]] = {}
    for path in _interpreter_paths():
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            ancestor = "/" + "/".join(parts[:depth])
            if not os.stat(ancestor).st_mode & 0o001:
                blockers.setdefault(ancestor, set()).add(parts[depth])
                break
    exposed = []
    for ancestor, children in sorted(blockers.items()):
        stage = f"/tmp/.tcf-stage-{len(exposed)}"
        os.mkdir(stage, 0o700)
        _mount(ancestor, stage, None, MS_BIND | MS_REC)
        _mount("tmpfs", ancestor, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
        for child in sorted(children):
            target = os.path.join(ancestor, child)
            os.mkdir(target, 0o755)
            _mount(os.path.join(stage, child), target, None, MS_BIND | MS_REC)
            exposed.append(target)
        _check(_get_libc().umount2(stage.encode(), 2), f"umount {stage}")  # MNT_DETACH
        os.rmdir(stage)
    return exposed


def setup_isolation(sandbox_uid: int, tmp_size_mb: int) -> dict:
    """Enter private network + mount namespaces; make the file system read-only but /tmp.

    Returns a dict saying what holds, for the executor to report honestly.
    """
    info = {"network": False, "filesystem": False, "pid_namespace": False, "setuid": False, "mode": "none"}
    libc = _get_libc()
    is_root = os.geteuid() == 0
    if not is_root:
        # An unprivileged user namespace makes us root inside it (no other uid is mapped).
        uid, gid = os.getuid(), os.getgid()
        if libc.unshare(CLONE_NEWUSER) == 0:
            try:
                with open("/proc/self/setgroups", "w") as f:
                    f.write("deny")
                with open("/proc/self/uid_map", "w") as f:
                    f.write(f"0 {uid} 1")
                with open("/proc/self/gid_map", "w") as f:
                    f.write(f"0 {gid} 1")
                info["mode"] = "user_namespace"
            except OSError:
                return info
        else:
            return info
    else:
        info["mode"] = "root"
    if libc.unshare(CLONE_NEWNET) == 0:
        info["network"] = True
    if libc.unshare(CLONE_NEWNS) == 0:
        try:
            _mount(None, "/", None, MS_REC | MS_PRIVATE)
            _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_size_mb}m,mode=1777")
            if os.path.isdir("/dev/shm"):
                _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
            if is_root and sandbox_uid > 0:
                info["exposed"] = _expose_interpreter(sandbox_uid)
            _remount_readonly(keep_writable=("/tmp", "/dev", "/proc", "/sys"))
            info["filesystem"] = True
        except OSError as e:
            info["filesystem_error"] = str(e)
    # Probe the PID namespace once: a child that unshares and forks.
    pid = os.fork()
    if pid == 0:
        ok = libc.unshare(CLONE_NEWPID) == 0
        if ok:
            p2 = os.fork()
            if p2 == 0:
                os._exit(0 if os.getpid() == 1 else 1)
            _, st = os.waitpid(p2, 0)
            ok = os.waitstatus_to_exitcode(st) == 0
        os._exit(0 if ok else 1)
    _, st = os.waitpid(pid, 0)
    info["pid_namespace"] = os.waitstatus_to_exitcode(st) == 0
    info["setuid"] = is_root and sandbox_uid > 0 and _can_setuid(sandbox_uid)
    return info


def _can_setuid(uid: int) -> bool:
    """Probe in a child: a container may map only a small uid range."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st) == 0


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


class Worker:
    def __init__(self, sandbox_uid: int, isolation: dict):
        self.uid = sandbox_uid if isolation.get("setuid") else -1
        self.isolation = isolation
        self.libc = _get_libc()
        self.job_counter = 0
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

    def _child(self, job: dict, w: int, workdir: str, compiled, plan) -> None:
        limits = job["limits"]
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        os.closerange(3, w)
        os.closerange(w + 1, 4096)
        mem = int(limits["memory_mb"]) * 1024 * 1024
        cpu = int(math.ceil(limits["program_timeout_s"])) + 1
        for res, val in (
            (resource.RLIMIT_AS, mem),
            (resource.RLIMIT_CPU, cpu),
            (resource.RLIMIT_FSIZE, 16 * 1024 * 1024),
            (resource.RLIMIT_CORE, 0),
        ):
            try:
                resource.setrlimit(res, (val, val))
            except (ValueError, OSError):
                pass
        nproc = int(limits["max_processes"])
        if self.uid <= 0:
            # Without a dedicated uid the limit counts every process of this user: add what exists.
            nproc += _count_user_processes()
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        except (ValueError, OSError):
            pass
        if self.uid > 0:
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)
        os.chdir(workdir)
        # The executor started this worker with a scrubbed environment; only drop our own marker.
        os.environ.pop("TCF_PRIVATE_TMP", None)
        os.environ["HOME"] = os.environ["TMPDIR"] = workdir
        tempfile.tempdir = workdir
        sys.setrecursionlimit(3000)
        runner = _Runner(job, w)
        try:
            runner.run(compiled, plan)
        finally:
            runner.flush()

    def run_job(self, job: dict) -> dict:
        t0 = time.monotonic()
        # Compile here, before forking: a syntax error costs no process, and children
        # inherit the compiled candidate and test code.
        compiled, error = compile_candidate(job["code"])
        if error is not None:
            return build_feedback(job, [error], False, 0, time.monotonic() - t0)
        plan = self._plan(job["tests"])
        self.job_counter += 1
        workdir = f"/tmp/tcf-job-{os.getpid()}-{self.job_counter}"
        os.mkdir(workdir, 0o700)
        if self.uid > 0:
            os.chown(workdir, self.uid, self.uid)
        r, w = os.pipe()
        # With a dedicated uid, the uid-wide kill in _sweep already reaches every process the
        # program started; a PID namespace (1-2 ms per program) is only needed without one.
        use_pidns = self.isolation.get("pid_namespace") and self.uid <= 0
        pid = fork_bare()
        if pid == 0:  # child A
            try:
                os.close(r)
                os.setsid()
                if use_pidns and self.libc.unshare(CLONE_NEWPID) == 0:
                    p2 = os.fork()
                    if p2 == 0:  # child B: PID 1 of a new namespace
                        self._child(job, w, workdir, compiled, plan)
                        os._exit(0)
                    os.close(w)
                    _, st = os.waitpid(p2, 0)
                    os._exit(_relay_status(st))
                self._child(job, w, workdir, compiled, plan)
                os._exit(0)
            except BaseException:  # noqa: BLE001
                try:
                    msg = traceback.format_exc()[-MESSAGE_LIMIT:]
                    os.write(w, (json.dumps({"e": "harness_error", "msg": "sandbox setup failed: " + msg}) + "\n").encode())
                finally:
                    os._exit(70)
        os.close(w)
        deadline = t0 + job["limits"]["program_timeout_s"] + 0.25
        events, killed = self._collect(r, pid, deadline)
        os.close(r)
        st = _wait_or_kill(pid, deadline)
        self._sweep(pid)
        try:
            os.rmdir(workdir)
        except OSError:
            shutil.rmtree(workdir, ignore_errors=True)
        if os.environ.get("TCF_PRIVATE_TMP") == "1":
            _clean_tmp()
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
                _kill_tree(pid)
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
                _kill_tree(pid)
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

    def _sweep(self, pid: int) -> None:
        """Kill whatever the program left running, then reap every zombie."""
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        # We are a child subreaper: once the program's first process is reaped, every process it
        # left behind (double-forked daemons included) is a child of ours. No child at all -> done.
        if not _has_children():
            return
        if self.uid > 0:
            # Kill everything running as the sandbox uid (reaches processes that left the group).
            p = os.fork()
            if p == 0:
                try:
                    os.setuid(self.uid)
                    os.kill(-1, signal.SIGKILL)
                finally:
                    os._exit(0)
            os.waitpid(p, 0)
            # SIGKILL is asynchronous: wait until the uid owns nothing, not even a zombie.
            for _ in range(2000):
                _reap_all()
                if not _uid_has_processes(self.uid):
                    break
                time.sleep(0.001)
        elif not self.isolation.get("pid_namespace"):
            # We are a child subreaper: orphans of the program were re-parented to us.
            for _ in range(10):
                kids = _children_of(os.getpid())
                if not kids:
                    break
                for k in kids:
                    try:
                        os.kill(k, signal.SIGKILL)
                    except OSError:
                        pass
                _reap_all()
        _reap_all()


TERMINAL_EVENTS = ("end", "harness_error")


def _wait_or_kill(pid: int, deadline: float) -> int:
    """Reap the program's first process; kill its tree if it is still running at the deadline.

    Waits on a pidfd (readable when the process exits) where the kernel has them, else polls.
    """
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        return st
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill_tree(pid)
                return os.waitpid(pid, 0)[1]
            if pidfd is not None:
                select.select([pidfd], [], [], remaining)
            else:
                time.sleep(0.0005)
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                return st
    finally:
        if pidfd is not None:
            os.close(pidfd)


_libc_fork = None


def fork_bare() -> int:
    """fork(2) without CPython's at-fork hooks, where that is safe; else :func:`os.fork`.

    ``os.fork`` runs the interpreter's after-fork work in the child (``threading`` rebuilds
    its state, ``random`` reseeds): Python code that touches copy-on-write pages, about
    0.4 ms per fork on a 2-core VM. The zygote is single-threaded, so the only part the
    child needs is a fresh random seed, which it gets here. Falls back to ``os.fork``
    when another thread exists (its locks would need the hooks) or ctypes is missing.
    """
    global _libc_fork
    if threading.active_count() != 1:
        return os.fork()
    if _libc_fork is None:
        try:
            fork = ctypes.PyDLL(None, use_errno=True).fork  # PyDLL: the call keeps the GIL, as os.fork does
            fork.restype = ctypes.c_int
            fork.argtypes = []
            _libc_fork = fork
        except (OSError, AttributeError):
            _libc_fork = False
    if _libc_fork is False:
        return os.fork()
    pid = _libc_fork()
    if pid < 0:
        raise OSError(ctypes.get_errno(), "fork failed")
    if pid == 0 and "random" in sys.modules:
        sys.modules["random"].seed()  # what random's own at-fork hook does
    return pid


def _relay_status(st: int) -> int:
    if os.WIFSIGNALED(st):
        return 128 + os.WTERMSIG(st)
    return os.WEXITSTATUS(st)


def _kill_tree(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass


def _reap_all() -> None:
    while True:
        try:
            p, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if p == 0:
            return


def _children_of(ppid: int) -> list[int]:
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == ppid:
                kids.append(int(name))
        except (OSError, IndexError, ValueError):
            continue
    return kids


def _has_children() -> bool:
    """Reap exited children; True if any child (running or not yet reaped) remains."""
    try:
        while True:
            p, _ = os.waitpid(-1, os.WNOHANG)
            if p == 0:
                return True
    except ChildProcessError:
        return False


def _uid_has_processes(uid: int) -> bool:
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    return True
            except OSError:
                pass
    return False


def _count_user_processes() -> int:
    uid = os.getuid()
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


def _clean_tmp() -> None:
    """Remove what the program left in /tmp (a private tmpfs in isolated mode)."""
    try:
        entries = os.listdir("/tmp")
    except OSError:
        return
    for e in entries:
        if os.environ.get("TCF_PRIVATE_TMP") == "1":
            p = os.path.join("/tmp", e)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                try:
                    os.unlink(p)
                except OSError:
                    pass


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
    libc = _get_libc()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the executor
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
    uid = args.uid_base + os.getpid() if args.uid_base >= 0 else -1
    if args.no_isolation:
        isolation = {"network": False, "filesystem": False, "pid_namespace": False, "setuid": False, "mode": "disabled"}
    else:
        isolation = setup_isolation(uid, args.tmp_mb)
        if isolation["filesystem"]:
            os.environ["TCF_PRIVATE_TMP"] = "1"
    _preload()
    _warm_up_harness()
    import gc

    gc.collect()
    gc.freeze()  # keep the collector in forked children off the zygote's pages (fewer copy-on-write faults)
    worker = Worker(uid, isolation)
    proto_out.write((json.dumps({"ready": True, "isolation": isolation, "pid": os.getpid()}) + "\n").encode())
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
