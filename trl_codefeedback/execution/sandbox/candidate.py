"""The candidate side: runs the program's code, and nothing else, in a sandboxed process.

This process holds no test, no expected value and no verdict. It reads requests from the
trusted side on its channel (fd 3, one JSON object per line) and answers with plain data:

| request | answer |
|---|---|
| ``{"op": "start", "code", "mode", "coverage", "then": [requests]}`` (first) | ``{"compiled": true}`` or ``{"compile_error": {...}}``, then one answer per request in ``then`` (saves round trips) |
| ``{"op": "module"}`` | runs the program's top level: ``{"ok": null}`` or ``{"exc": {...}}`` |
| ``{"op": "exec", "source"}`` | runs dataset set-up code in the program's globals (MBPP's ``test_setup_code``) |
| ``{"op": "defined", "names"}`` | which of ``names`` the program defines: ``{"ok": [...]}`` |
| ``{"op": "call", "target", "args", "kwargs"}`` | ``{"ok": result, "args": [mutated args]}`` or ``{"exc": ...}`` |
| ``{"op": "apps_target", "name"}`` | APPS: the function ``name`` or ``Solution().name``, as a handle |
| ``{"op": "coverage"}`` | the program lines that ran |

In ``stdio`` mode the program's top level runs at once with fd 0 / fd 1 as its stdin / stdout,
and the answer is ``{"ok": null}`` or ``{"exc": ...}``. Values travel in :mod:`codec`'s
encoding; whatever this side sends, the trusted side decodes it into fresh built-in objects
and judges it. An exception is reported with the innermost line of the program it came from.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import sys

try:
    from . import codec
except ImportError:  # run as a script: the sandbox folder is on sys.path
    import codec

CANDIDATE_FILE = "<candidate>"
MESSAGE_LIMIT = 1000
CHANNEL_FD = 3

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
_APPS_HEADER_CODE = compile(APPS_HEADER, "<apps-header>", "exec")


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 - a program's exception whose __str__ raises
        text = "<unprintable>"
    return text[:MESSAGE_LIMIT]


def innermost_candidate_line(tb) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == CANDIDATE_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def describe_exception(exc: BaseException) -> dict:
    return {"type": type(exc).__name__, "msg": _message(exc), "line": innermost_candidate_line(exc.__traceback__)}


def compile_program(code: str):
    """(code object, None) or (None, compile error dict)."""
    try:
        return compile(code, CANDIDATE_FILE, "exec", dont_inherit=True), None
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
        line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
        msg = exc.msg if isinstance(exc, SyntaxError) else _message(exc)
        return None, {"type": type(exc).__name__, "msg": str(msg)[:MESSAGE_LIMIT], "line": line}


class CandidateRunner:
    """Answers the trusted side's requests for one program (see the module doc)."""

    def __init__(self, code: str, mode: str = "calls", coverage: bool = False):
        self.code, self.mode, self.coverage = code, mode, coverage
        self.compiled = None
        self.globals: dict = {"__name__": "__main__", "__builtins__": builtins}
        self.handles: list = []
        self.covered: set[int] = set()

    # -- handles for non-plain objects (they never leave this process)
    def _handle_of(self, obj) -> int:
        self.handles.append(obj)
        return len(self.handles) - 1

    def _resolve(self, tag: str, key, type_name=None, truth=None):
        if tag == "r":
            if type(key) is not int or not 0 <= key < len(self.handles):
                raise LookupError(f"unknown handle {key!r}")
            return self.handles[key]
        if key not in self.globals:
            raise NameError(f"name {key!r} is not defined by the program")
        return self.globals[key]

    def _encode(self, value):
        return codec.encode(value, self._handle_of)

    # -- coverage
    def _tracer(self, frame, event, arg):
        if frame.f_code.co_filename != CANDIDATE_FILE:
            return None
        if event == "line":
            self.covered.add(frame.f_lineno)
        return self._tracer

    def _traced(self, fn):
        if not self.coverage:
            return fn()
        sys.settrace(self._tracer)
        try:
            return fn()
        finally:
            sys.settrace(None)

    # -- requests
    def start(self) -> dict:
        self.compiled, error = compile_program(self.code)
        if error is not None:
            return {"compile_error": error}
        if self.mode in ("apps", "stdio"):
            try:
                exec(_APPS_HEADER_CODE, self.globals)
            except Exception:  # noqa: BLE001 - e.g. a module missing: the header is best effort
                pass
        return {"compiled": True}

    def handle(self, req: dict) -> dict:
        op = req.get("op")
        try:
            if op == "module":
                self._traced(lambda: exec(self.compiled, self.globals))
                return {"ok": None}
            if op == "exec":
                exec(compile(req["source"], "<tests>", "exec"), self.globals)
                return {"ok": None}
            if op == "defined":
                return {"ok": [n for n in req["names"] if n in self.globals]}
            if op == "call":
                return self._call(req)
            if op == "apps_target":
                return self._apps_target(req["name"])
            if op == "coverage":
                return {"ok": sorted(self.covered)}
        except BaseException as exc:  # noqa: BLE001 - everything the program raises is an answer
            if isinstance(exc, SystemExit) and self.mode == "stdio" and exc.code in (None, 0):
                return {"ok": None}
            return {"exc": describe_exception(exc)}
        return {"exc": {"type": "ProtocolError", "msg": f"unknown request {op!r}", "line": None}}

    def _call(self, req: dict) -> dict:
        target = codec.decode(req["target"], self._resolve)
        for attr in req.get("attrs", ()):
            target = getattr(target, attr)
        args = codec.decode(req["args"], self._resolve)
        kwargs = codec.decode(req["kwargs"], self._resolve)
        result = self._traced(lambda: target(*args, **kwargs))
        answer = {"ok": self._encode(result)}
        if req.get("return_args"):
            answer["args"] = [self._encode(a) for a in args]
        return answer

    def _apps_target(self, name: str) -> dict:
        fn = self.globals.get(name)
        if not callable(fn) and isinstance(self.globals.get("Solution"), type):
            fn = getattr(self.globals["Solution"](), name, None)
        if not callable(fn):
            return {"exc": {"type": "NameError", "msg": f"function {name!r} is not defined by the program", "line": None}}
        return {"ok": ["r", self._handle_of(fn), "function"]}


def _fresh_stdio(stdio_mode: bool) -> None:
    """sys.stdin / stdout / stderr on fds 0, 1, 2 (pipes of the trusted side, or /dev/null)."""
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                  write_through=not stdio_mode)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                  write_through=True)


class _Channel:
    def __init__(self, fd: int):
        self.fd = fd
        self.reader = io.BufferedReader(io.FileIO(fd, "r", closefd=False), 1 << 16)

    def read(self) -> dict | None:
        line = self.reader.readline()
        return json.loads(line) if line else None

    def send(self, obj: dict) -> None:
        try:
            data = (json.dumps(obj) + "\n").encode()
        except (TypeError, ValueError) as exc:  # e.g. a str with a lone surrogate that json refuses
            data = (json.dumps({"exc": {"type": "EncodingError", "msg": str(exc)[:MESSAGE_LIMIT], "line": None}}) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]


def serve() -> None:
    """Body of the sandboxed program process: read the start request, then answer until EOF."""
    channel = _Channel(CHANNEL_FD)
    first = channel.read()
    if not first or first.get("op") != "start":
        return
    runner = CandidateRunner(first["code"], first.get("mode", "calls"), bool(first.get("coverage")))
    sys.setrecursionlimit(3000)
    stdio_mode = runner.mode == "stdio"
    _fresh_stdio(stdio_mode)
    started = runner.start()
    channel.send(started)
    if "compile_error" in started:
        return
    for req in first.get("then") or ():
        channel.send(runner.handle(req) if isinstance(req, dict) else {"exc": {"type": "ProtocolError", "msg": "bad request", "line": None}})
    if stdio_mode:
        answer = runner.handle({"op": "module"})
        if "exc" not in answer:
            answer = _wait_for_threads(answer)  # as the interpreter does at exit (APPS's threading.Thread(target=main))
        try:
            sys.stdout.flush()
        except BaseException as exc:  # noqa: BLE001 - e.g. the output pipe was closed on us
            answer = answer if "exc" in answer else {"exc": describe_exception(exc)}
        if runner.coverage:
            answer["covered"] = sorted(runner.covered)
        channel.send(answer)
        return
    while True:
        req = channel.read()
        if req is None:
            return
        channel.send(runner.handle(req))


def _wait_for_threads(answer: dict) -> dict:
    """Join the program's non-daemon threads, as CPython does before it exits; an exception a
    thread raised was printed to stderr by ``threading`` and, as in CPython, does not fail the run."""
    threading = sys.modules.get("threading")
    if threading is None:
        return answer
    main = threading.main_thread()
    try:
        for t in threading.enumerate():
            if t is not main and not t.daemon:
                t.join()
    except BaseException as exc:  # noqa: BLE001 - e.g. SystemExit raised into this thread
        return {"exc": describe_exception(exc)}
    return answer


def warm_up(rounds: int = 12) -> None:
    """Exercise this side's code paths in the zygote before ``gc.freeze`` (fewer copy-on-write faults per program)."""
    for _ in range(rounds):
        runner = CandidateRunner("def add(a, b):\n    return a + b\n\nclass P:\n    pass\n")
        runner.start()
        runner.handle({"op": "module"})
        runner.handle({"op": "defined", "names": ["add", "zz"]})
        for args in (["l", 1, 2], ["l", ["l", 1], ["l", 2]], ["l", "a", ["f", "nan"]]):
            json.dumps(runner.handle({"op": "call", "target": ["n", "add"], "args": args, "kwargs": ["d"], "return_args": True}))
        runner.handle({"op": "call", "target": ["n", "P"], "args": ["l"], "kwargs": ["d"]})
        runner.handle({"op": "call", "target": ["n", "add"], "args": ["l", 1], "kwargs": ["d"]})
