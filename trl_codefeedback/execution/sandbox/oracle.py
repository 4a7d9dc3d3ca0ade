"""The trusted oracle: runs a program's tests against it from outside its process and decides the verdict.

Per test kind:

* ``asserts`` / ``check`` (MBPP, HumanEval, MBXP): the dataset's test code runs here, in a
  namespace of its own. Names that come from the program are :class:`Remote` stand-ins: a call
  sends the arguments to the program's process and gets the result back as plain data, decoded
  into fresh built-in objects (see :mod:`codec`), so ``==``, ``sorted``, ``abs``, ``math.isclose``
  are this interpreter's own. A result that is not plain data stays in the program's process as a
  handle: it can be passed back to the program, but comparing it, testing its truth or doing
  arithmetic with it fails the test.
* ``call`` (APPS call-based): arguments out, the result back as plain data, compared here.
* ``stdio`` (APPS): a fresh program process per case; its stdin and stdout are pipes of this
  side, so the expected output never enters the program's process.

Deadlines, the output cap and the end of the program are watched by :class:`session.ProgramSession`
from here. An exception the program raises is a runtime error at its line, even if the test code
catches and re-raises something else; nothing the program does is reported as ``harness_error``.

Example (what the worker does per job)::

    feedback = Oracle(zygote_sock, plans).run(job)
"""

from __future__ import annotations

import builtins
import importlib
import os
import time

try:
    from . import answers, codec, verdict
    from .clock import ProgramClock
    from .session import ProgramEnded, ProgramSession, ZygoteLost
    from .testplan import PlanCache, TestPlan
except ImportError:
    import answers
    import codec
    import verdict
    from clock import ProgramClock
    from session import ProgramEnded, ProgramSession, ZygoteLost
    from testplan import PlanCache, TestPlan

PLAIN_TYPES = "None, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset"
_REPLACED_EXCEPTIONS = {"SystemExit", "KeyboardInterrupt", "GeneratorExit", "StopIteration", "StopAsyncIteration"}


class HarnessFault(Exception):
    """Something on the trusted side cannot be done (e.g. a test passes a function to the program)."""


class ProgramRaised(Exception):
    """Marker base: an exception raised in the program's process, re-raised into the test code."""

    remote: dict = {}


_exception_classes: dict[str, type] = {}


def _exception_class(name: str) -> type:
    """A subclass of the built-in exception ``name`` (so ``except ValueError`` in tests works) marked as
    the program's; :class:`ProgramRaised` itself for any other name (the cache stays bounded)."""
    cls = _exception_classes.get(name)
    if cls is None:
        base = getattr(builtins, name, None)
        if not (isinstance(base, type) and issubclass(base, Exception)) or name in _REPLACED_EXCEPTIONS:
            return ProgramRaised
        try:
            cls = type(name, (base, ProgramRaised), {})
            cls("message")  # some take other arguments (ExceptionGroup, UnicodeDecodeError): not re-created
        except TypeError:  # layout conflict, or another constructor
            cls = ProgramRaised
        _exception_classes[name] = cls
    return cls


def program_exception(info: dict) -> ProgramRaised:
    name = str(info.get("type") or "Exception")[:100]
    exc = _exception_class(name if name.isidentifier() else "Exception")(str(info.get("msg") or "")[:verdict.MESSAGE_LIMIT])
    exc.remote = info
    return exc


class NonPlainValue(TypeError):
    """The test code used a value the program returned that is not plain data."""


class Remote:
    """Stand-in for something in the program's process: a global name or a handle, plus attribute path."""

    __slots__ = ("_oracle", "_ref", "_attrs", "_type_name", "_truth")

    def __init__(self, oracle: "Oracle", ref: list, attrs: tuple = (), type_name: str | None = None, truth: bool | None = None):
        object.__setattr__(self, "_oracle", oracle)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_attrs", attrs)
        object.__setattr__(self, "_type_name", type_name)
        object.__setattr__(self, "_truth", truth)

    def __call__(self, *args, **kwargs):
        return self._oracle.call(self._ref, self._attrs, args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return Remote(self._oracle, self._ref, self._attrs + (name,))

    def _refuse(self, *args, **kwargs):
        what = f"a {self._type_name} object" if self._type_name else f"{self._ref[1]!r}"
        raise NonPlainValue(f"the program gave {what}, not plain data ({PLAIN_TYPES})")

    def __bool__(self) -> bool:
        # The truth value the program computed when it returned the object: no more than it could
        # say by returning True or False (sanitized MBPP 737 returns an re.Match, tested for truth).
        if self._truth is None:
            self._refuse()
        return self._truth

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __len__ = __iter__ = __contains__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __mod__ = __abs__ = __neg__ = _refuse
    __float__ = __int__ = __index__ = __getitem__ = __hash__ = _refuse

    def __setattr__(self, name, value):
        self._refuse()

    def __repr__(self) -> str:
        return f"<{self._type_name or 'program'} object in the program's process>"


class Oracle:
    """Runs one job's tests against the program (see the module doc)."""

    def __init__(self, zygote_sock, plans: PlanCache | None = None):
        self.zsock = zygote_sock
        self.plans = plans or PlanCache()
        self.session: ProgramSession | None = None
        self.zygote_lost = False

    # ------------------------------------------------------------------ entry

    def run(self, job: dict) -> dict:
        t0 = time.monotonic()
        self.limits = job["limits"]
        self.clock = ProgramClock(self.limits, self._read_cpu, t0)
        self.cpu_s = 0.0
        self.code, self.truncated = job["code"], bool(job.get("truncated"))
        self.coverage = bool(job.get("coverage"))
        tests = job["tests"]
        plan = self.plans.get(tests) if tests is not None else None
        if plan is not None and plan.error:
            return {"status": "harness_error", "tests_total": job["num_tests"], "error_type": "HarnessError", "error_message": plan.error}
        self.total = plan.total if plan is not None else 0
        self.outcomes = ["not_run"] * self.total
        self.first_bad: dict | None = None
        self.covered: set[int] | None = set() if self.coverage else None
        try:
            if plan is not None and plan.kind == "stdio":
                compile_error = self._run_stdio(tests)
            else:
                compile_error = self._run_calls(tests, plan)
        except HarnessFault as e:
            return {"status": "harness_error", "tests_total": self.total, "error_type": "HarnessError",
                    "error_message": str(e)[:2000], "duration_s": time.monotonic() - t0, "cpu_time_s": self.cpu_s}
        except ZygoteLost as e:
            if self.session is not None:  # (the kinds' own clean-up has usually run already)
                self.session.zygote_lost = True
                self.session.close()
                self.session = None
            return {"status": "harness_error", "tests_total": self.total, "error_type": "HarnessError",
                    "error_message": f"sandbox zygote lost: {e}", "duration_s": time.monotonic() - t0, "cpu_time_s": self.cpu_s, "recycle": True}
        over = self.clock.over_program_limit() if compile_error is None else None
        if over is not None and self.first_bad is None:
            # Its time ran out during its last test, whose answer came before any reading caught it.
            last = max((i for i, o in enumerate(self.outcomes) if o != "not_run"), default=None)
            if last is not None:
                self.outcomes[last] = "timeout"
            self.first_bad = over
        fb = verdict.build_feedback(self.code, self.truncated, self.total, self.outcomes, self.first_bad,
                                    time.monotonic() - t0, sorted(self.covered) if self.covered is not None else None,
                                    compile_error)
        fb["cpu_time_s"] = round(self.cpu_s, 3)
        if self.zygote_lost:
            fb["recycle"] = True
        return fb

    def _read_cpu(self) -> float | None:
        return self.session.cpu_seconds() if self.session is not None else None

    # ------------------------------------------------------------------ outcomes

    def _record(self, i: int, outcome: dict) -> None:
        if 0 <= i < self.total:
            self.outcomes[i] = outcome["o"] if outcome["o"] in verdict.OUTCOMES else "error"
        if outcome["o"] != "pass" and self.first_bad is None:
            self.first_bad = outcome

    def _record_all(self, outcome: dict) -> None:
        for i in range(self.total):
            self._record(i, outcome)
        if self.total == 0 and outcome["o"] != "pass" and self.first_bad is None:
            self.first_bad = outcome

    def unit(self, fn) -> dict:
        """Run one test (or set-up step) ``fn`` of trusted code; return its outcome."""
        session = self.session
        self.clock.start_test(time.monotonic())
        session.reset_output_count()
        try:
            fn()
            outcome = {"o": "pass"}
        except ProgramEnded as e:
            outcome = e.outcome
        except ProgramRaised as e:
            info = e.remote
            kind = "resource" if info.get("type") == "MemoryError" else "error"
            outcome = {"o": kind, "type": str(info.get("type")), "msg": info.get("msg"), "line": info.get("line")}
        except AssertionError as e:
            outcome = {"o": "fail", "type": "AssertionError", "msg": _message(e) or "test assertion failed", "line": None}
        except HarnessFault:
            raise
        except Exception as e:  # noqa: BLE001 - raised by the test code on the values it got: a wrong answer
            outcome = {"o": "fail", "type": type(e).__name__, "msg": _message(e), "line": None}
        if session.ended is not None:  # sticky: the test code may have swallowed the exception
            outcome = session.ended
        self.clock.whole_program(time.monotonic())
        return outcome

    # ------------------------------------------------------------------ talking to the program

    def ask(self, req: dict | None) -> dict:
        """One request to the program (None: the next answer to a request sent earlier) within the
        current test's time limits; raises the program's exception."""
        answer = self.session.request(req, self.clock)
        if "exc" in answer:
            info = answer["exc"] if isinstance(answer["exc"], dict) else {}
            raise program_exception(info)
        if "ok" not in answer:
            raise self._malformed()
        return answer

    def _malformed(self) -> ProgramEnded:
        """End the program for an answer of the wrong shape (its outcome: a protocol error)."""
        return self.session.stop({"o": "error", "type": "ProtocolError", "msg": "malformed answer from the program", "line": None})

    def _names(self, answer: dict) -> list[str]:
        """The program's answer to a ``defined`` request, or a protocol error (the program's)."""
        found = answers.names(answer["ok"])
        if found is None:
            raise self._malformed()
        return found

    def _make_remote(self, tag: str, key, type_name: str | None = None, truth: bool | None = None):
        return Remote(self, [tag, key], type_name=type_name or "non-plain", truth=truth)

    def _encode_arg(self, value):
        """A test's argument for the program: plain data, with the program's own objects as references."""
        if isinstance(value, Remote):
            if value._attrs and value._ref[0] != "n":
                # An attribute of an object the program returned: a program returning plain data (as
                # the tests expect) never gets here, so it is the program's failure, not ours.
                value._refuse()
            if value._attrs:
                raise HarnessFault("a test passes an attribute of a program object to the program")
            return list(value._ref[:2])
        t = type(value)
        if t in (list, tuple, set, frozenset):
            tag = {list: "l", tuple: "t", set: "s", frozenset: "fs"}[t]
            return [tag, *[self._encode_arg(v) for v in value]]
        if t is dict:
            out = ["d"]
            for k, v in value.items():
                out += [self._encode_arg(k), self._encode_arg(v)]
            return out
        try:
            return codec.encode(value)
        except codec.NotPlain:
            raise HarnessFault(f"a test passes a {t.__name__} to the program; only plain data ({PLAIN_TYPES}) "
                               "and the program's own objects can cross the sandbox") from None

    def call(self, ref: list, attrs: tuple, args: tuple, kwargs: dict):
        mutable = [a for a in args if type(a) in (list, dict, set)]
        req = {"op": "call", "target": list(ref), "attrs": list(attrs), "args": self._encode_arg(list(args)),
               "kwargs": self._encode_arg(dict(kwargs)), "return_args": bool(mutable)}
        answer = self.ask(req)
        try:
            result = codec.decode(answer["ok"], self._make_remote)
            if mutable:
                new_args = [codec.decode(a, self._make_remote) for a in answer.get("args", [])]
                if len(new_args) != len(args):
                    raise codec.DecodeError("wrong number of returned arguments")
                for old, new in zip(args, new_args):
                    _update_in_place(old, new)
        except (codec.DecodeError, RecursionError, TypeError, ValueError) as e:
            raise self.session.stop({"o": "error", "type": "ProtocolError", "msg": f"undecodable answer: {e}"[:500], "line": None}) from None
        return result

    # ------------------------------------------------------------------ asserts / check / call

    def _start(self, mode: str, stdin: bytes = b"", keep_output: bool = False, then: list | None = None) -> dict | None:
        """Spawn the program process; return a compile error dict, or None when it compiled.

        ``then``: requests the program answers right after compiling, without waiting to be asked
        (read them in order with ``ask(None)``): one round trip instead of one per request.
        """
        self.session = ProgramSession(self.zsock, self.limits, self.code, mode, self.coverage, stdin, keep_output, then,
                                      start_deadline=self.clock.program_wall_cap)
        self.clock.whole_program(time.monotonic())
        try:
            answer = self.session.request(None, self.clock)
        except ProgramEnded:
            return None  # session.ended says how
        if "compile_error" in answer:
            err = answer["compile_error"] if isinstance(answer["compile_error"], dict) else {}
            return {"type": str(err.get("type") or "SyntaxError")[:100], "msg": str(err.get("msg") or ""), "line": err.get("line")}
        return None

    def _finish(self) -> None:
        session = self.session
        if session is None:
            return
        if self.coverage and session.ended is None and session.mode != "stdio":
            try:
                lines = self.ask({"op": "coverage"})["ok"]
                self.covered.update(x for x in lines if type(x) is int)
            except (ProgramEnded, ProgramRaised, ZygoteLost, TypeError):
                pass
        session.close()
        # The zygote's count, or the last reading when that is lower: with a PID namespace per
        # program (user-namespace mode), the kill at the end ends its waiters before they reap.
        cpu = max(session.cpu_s, self.clock.known_cpu)
        self.cpu_s += cpu
        self.clock.program_ended_process(cpu)
        if session.over_limit is not None and self.first_bad is None:
            # A process of the program was killed by a limit of all its processes together (memory,
            # scratch files), even if the answers it gave were right: the program broke its limit.
            self.first_bad = session.over_limit
        self.zygote_lost = self.zygote_lost or session.zygote_lost
        self.session = None

    @staticmethod
    def _first_requests(tests: dict | None, plan: TestPlan | None) -> list[dict]:
        """What every program of this spec is asked first (sent with the code, answered in order)."""
        then = [{"op": "module"}]
        if plan is None:
            return then
        if plan.kind == "asserts":
            if plan.setup_source:
                then.append({"op": "exec", "source": plan.setup_source})
            if plan.builtin_names:
                then.append({"op": "defined", "names": list(plan.builtin_names)})
        elif plan.kind == "check":
            then.append({"op": "defined", "names": [tests["entry_point"]]})
        elif plan.kind == "call":
            then.append({"op": "apps_target", "name": tests["fn_name"]})
        return then

    def _run_calls(self, tests: dict | None, plan: TestPlan | None) -> dict | None:
        mode = "apps" if plan is not None and plan.kind == "call" else "calls"
        compile_error = self._start(mode, then=self._first_requests(tests, plan))
        try:
            if compile_error is not None:
                return compile_error
            if self.session.ended is not None:
                self._record_all(self.session.ended)
                return None
            module = self.unit(lambda: self.ask(None))
            if module["o"] != "pass":
                self._record_all(module)
                return None
            if plan is None:
                return None
            getattr(self, "_run_" + plan.kind)(tests, plan)
            return None
        finally:
            self._finish()

    def _namespace(self, plan: TestPlan) -> dict:
        g = {"__name__": "__tcf_tests__", "__builtins__": builtins}
        for name in plan.modules:
            try:
                g[name] = importlib.import_module(name)
            except ImportError:
                pass
        for name in plan.program_names:
            g[name] = Remote(self, ["n", name])
        return g

    def _run_asserts(self, tests: dict, plan: TestPlan) -> None:
        g = self._namespace(plan)
        if plan.setup_source:
            # MBPP's set-up code builds inputs with the program's own classes (MBPP 367's Node):
            # it runs in the program's process, and the names it defines are program names here.
            setup = self.unit(lambda: self.ask(None))  # {"op": "exec", "source": setup}, sent with the code
            if setup["o"] != "pass":
                self._record_all(setup)
                return
        if plan.builtin_names:
            found = {}
            self.unit(lambda: found.update(names=self._names(self.ask(None))))  # {"op": "defined", ...}, sent with the code
            for name in found.get("names") or ():
                if name in plan.builtin_names:
                    g[name] = Remote(self, ["n", name])
        for i, code in enumerate(plan.asserts):
            outcome = self.unit(lambda: exec(code, g))
            self._record(i, outcome)
            if self.session.ended is not None:
                return  # timeout, crash, cap: later tests are not run

    def _run_check(self, tests: dict, plan: TestPlan) -> None:
        g = self._namespace(plan)
        try:
            exec(plan.prelude, g)
            exec(plan.test_code, g)
        except Exception as e:  # noqa: BLE001 - dataset code that does not load here is our problem
            raise HarnessFault(f"check code failed to load: {type(e).__name__}: {e}") from None
        entry = tests["entry_point"]
        candidate = Remote(self, ["n", entry])
        g[entry] = candidate
        box = {}
        exists = self.unit(lambda: box.update(ok=self._names(self.ask(None))))  # {"op": "defined", "names": [entry]}, sent with the code
        if exists["o"] != "pass":
            self._record_all(exists)
            return
        if entry not in box["ok"]:
            self._record_all({"o": "error", "type": "NameError", "msg": f"name {entry!r} is not defined by the program", "line": None})
            return
        if plan.check_arg is None:  # no splittable check(): one test, the whole call
            self._record(0, self.unit(lambda: g["check"](candidate)))
            return
        g[plan.check_arg] = candidate
        i = 0
        for code, is_test in plan.units:
            outcome = self.unit(lambda: exec(code, g))
            if is_test or outcome["o"] != "pass":
                # A failing set-up statement of check() counts against the next test, so the pass
                # ratio stays over the asserts.
                self._record(i, outcome)
                i += 1
            if self.session.ended is not None or i >= plan.total:
                return

    def _run_call(self, tests: dict, plan: TestPlan) -> None:
        box = {}
        found = self.unit(lambda: box.update(self.ask(None)))  # {"op": "apps_target", ...}, sent with the code
        if found["o"] != "pass":
            self._record_all(found)
            return
        try:
            handle = codec.decode(box.get("ok"), self._make_remote)
        except codec.DecodeError:
            handle = None
        if not isinstance(handle, Remote):
            self._record_all(self._malformed().outcome)
            return
        for i, case in enumerate(tests["cases"]):
            box = {}
            outcome = self.unit(lambda: box.update(r=handle(*codec.decode(codec.encode(list(case["input"]))))))
            if outcome["o"] == "pass":
                got = box.get("r")
                try:
                    matches = verdict.call_result_matches(got, case["output"])
                except Exception:  # noqa: BLE001 - e.g. a handle inside a list: not plain data, not a match
                    matches = False
                if not matches:
                    shown = _safe_repr(got) if not isinstance(got, Remote) else f"a non-plain object ({PLAIN_TYPES} expected)"
                    outcome = {"o": "fail", "type": "WrongAnswer", "msg": f"expected {_safe_repr(case['output'])}, got {shown}", "line": None}
            self._record(i, outcome)
            if self.session.ended is not None:
                return

    # ------------------------------------------------------------------ stdio

    def _run_stdio(self, tests: dict) -> dict | None:
        for i, case in enumerate(tests["cases"]):
            compile_error = self._start("stdio", case["input"].encode("utf-8", "surrogatepass"), keep_output=True)
            if compile_error is not None:
                self._finish()
                return compile_error
            session = self.session
            answer = {}
            if session.ended is None:
                outcome = self.unit(lambda: answer.update(self.ask_raw(None)))
            else:
                outcome = session.ended
            self._finish()
            if outcome.get("type") == "EarlyExit" and _exited_with(session.exit_status, 0):
                outcome = {"o": "pass"}  # os._exit(0) after printing: a normal end for a stdio program
            if self.covered is not None and isinstance(answer.get("covered"), list):
                self.covered.update(x for x in answer["covered"] if type(x) is int)
            if outcome["o"] == "pass":
                if session.output_count > self.limits["output_bytes"]:
                    outcome = {"o": "resource", "type": "OutputLimitExceeded", "msg": f"output exceeded {self.limits['output_bytes']} bytes", "line": None}
                else:
                    got = bytes(session.output).decode("utf-8", "replace")
                    if not verdict.outputs_match(got, case["output"]):
                        outcome = {"o": "fail", "type": "WrongAnswer", "line": None,
                                   "msg": f"expected output {case['output'][:200]!r}, got {got[:200]!r}"}
            self._record(i, outcome)
            if outcome["o"] == "timeout" or self.clock.program_spent(time.monotonic()):
                return None
        return None

    def ask_raw(self, req: dict | None) -> dict:
        answer = self.session.request(req, self.clock)
        if "exc" in answer:
            raise program_exception(answer["exc"] if isinstance(answer["exc"], dict) else {})
        return answer


def _exited_with(wait_status: int | None, code: int) -> bool:
    return wait_status is not None and os.WIFEXITED(wait_status) and os.WEXITSTATUS(wait_status) == code


def _update_in_place(old, new) -> None:
    """Mirror an argument the program mutated (lists, dicts, sets the test passed and may inspect later)."""
    if type(old) is list and type(new) is list:
        old[:] = new
    elif type(old) is dict and type(new) is dict:
        old.clear()
        old.update(new)
    elif type(old) is set and type(new) is set:
        old.clear()
        old.update(new)


def _safe_repr(value, limit: int = 200) -> str:
    try:
        return repr(value)[:limit]
    except Exception:  # noqa: BLE001 - e.g. an int too long to print, a handle
        return f"<{type(value).__name__}>"


def _message(exc: BaseException) -> str:
    try:
        return str(exc)[: verdict.MESSAGE_LIMIT]
    except Exception:  # noqa: BLE001
        return "<unprintable>"
