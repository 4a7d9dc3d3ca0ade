"""The trusted side of Java verdicts: one oracle JVM that never loads a program's classes.

:class:`TrustedOracle` plans each test once (javac on the test alone tells which statements
need the program, see :mod:`.plan`), compiles the trusted test class once (cached in the oracle
JVM by key, and re-sent if that JVM was restarted), and judges the values a candidate JVM
returned by running the test's own statements on them.

Example:
    >>> oracle = TrustedOracle(java, classes, isolate=True)        # doctest: +SKIP
    >>> plan = oracle.plan(test)                                    # doctest: +SKIP
    >>> oracle.judge(plan, {0: ["I8;"]}, test_timeout_s=5.0)        # doctest: +SKIP
    {0: {'o': 'pass'}}
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path

from trl_codefeedback.execution.java.jdk import EXPORTS, JVM_FLAGS
from trl_codefeedback.execution.java.jvm import ChannelError, JvmProcess
from trl_codefeedback.execution.java.plan import TRUSTED_IMPORTS, TrustedPlan, UnsupportedTest, build_plan

ORACLE_HEAP_MB = 256
COMPILE_TIMEOUT_S = 120.0
REPLY_CAP = 16 << 20
PLAN_CACHE = 4096
PLAN_BATCH = 16  # tests planned (analysed, then compiled) per javac task, ahead of the workers
FIRST_BATCH = 4  # when a worker has to plan its own test: a small batch, so it starts soon


class OracleError(RuntimeError):
    """The trusted side failed (its JVM died, hung or could not start): a harness error, never a program's."""


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def frame_values(values: list[str]) -> str:
    """``<n>;`` then ``<len>:<value>`` per value (lengths in UTF-16 units, as Java counts them)."""
    return f"{len(values)};" + "".join(f"{utf16_len(v)}:{v}" for v in values)


class TrustedOracle:
    """Thread-safe client of the oracle JVM, with the per-test plan cache."""

    def __init__(self, java: str, classes: Path, isolate: bool):
        self.java, self.classes, self.isolate = java, classes, isolate
        self._lock = threading.Lock()
        self._jvm: JvmProcess | None = None
        self._plans: collections.OrderedDict[str, TrustedPlan | UnsupportedTest] = collections.OrderedDict()
        self._wanted: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._compiled: set[str] = set()
        self.stats = {"plans": 0, "compiles": 0, "restarts": 0}
        self._start()

    def _start(self) -> None:
        if self._jvm is not None:
            self._jvm.kill()
            self.stats["restarts"] += 1
        self._compiled.clear()
        self._jvm = JvmProcess("oracle", 0, self.java, self.classes, "TcfJavaOracle", [f"-Xmx{ORACLE_HEAP_MB}m", *JVM_FLAGS, *EXPORTS], self.isolate)

    def _ask(self, req: dict, timeout: float) -> dict:
        """One request; on a dead or garbled oracle, restart it and retry once, then OracleError."""
        for attempt in (0, 1):
            try:
                if self._jvm is None or not self._jvm.alive():
                    self._start()
                self._jvm.send(req)
                resp = self._jvm.read_json(timeout, REPLY_CAP)
                if resp.get("recycle"):
                    self._start()
                if "error" in resp:
                    raise ChannelError("garbage", str(resp["error"]))
                return resp
            except (ChannelError, RuntimeError) as e:
                if attempt == 1:
                    raise OracleError(f"trusted Java oracle failed: {e}") from None
                try:
                    self._start()
                except RuntimeError as e2:
                    raise OracleError(f"trusted Java oracle could not restart: {e2}") from None
        raise AssertionError("unreachable")

    def want(self, tests: list[str]) -> None:
        """Tests about to be judged: planned together, in batches, when the first of them is needed."""
        with self._lock:
            for t in tests:
                if t not in self._plans:
                    self._wanted[t] = None

    def prefetch(self) -> None:
        """Plan the wanted tests ahead of the workers, a batch per javac task (run in a helper thread)."""
        while True:
            with self._lock:
                batch = []
                while self._wanted and len(batch) < PLAN_BATCH:
                    t, _ = self._wanted.popitem(last=False)
                    if t not in self._plans:
                        batch.append(t)
                if not batch:
                    return
                try:
                    plans = self._build(batch)
                except OracleError:
                    return  # the workers will ask again (and report it)
                for t, p in zip(batch, plans):
                    self._plans[t] = p
                while len(self._plans) > PLAN_CACHE:
                    self._plans.popitem(last=False)

    def plan(self, test: str) -> TrustedPlan:
        """The cached plan for ``test``; UnsupportedTest when the test cannot be judged apart from the program."""
        with self._lock:
            hit = self._plans.get(test)
            if hit is None:
                self._wanted.pop(test, None)
                batch = [test]
                while self._wanted and len(batch) < FIRST_BATCH:
                    t, _ = self._wanted.popitem(last=False)
                    if t not in self._plans:
                        batch.append(t)
                for t, p in zip(batch, self._build(batch)):
                    self._plans[t] = p
                while len(self._plans) > PLAN_CACHE:
                    self._plans.popitem(last=False)
                hit = self._plans[test]
            else:
                self._plans.move_to_end(test)
        if isinstance(hit, UnsupportedTest):
            raise hit
        return hit

    def _build(self, tests: list[str]) -> list[TrustedPlan | UnsupportedTest]:
        """Plans for ``tests``: one javac analysis of all of them, then one compilation of their trusted classes."""
        self.stats["plans"] += len(tests)
        prefixes = [f"package a{i};\n" + TRUSTED_IMPORTS for i in range(len(tests))]
        req = {"op": "analyze", "n": str(len(tests))}
        for i, t in enumerate(tests):
            req[f"path{i}"], req[f"source{i}"] = f"a{i}/Main", prefixes[i] + t
        resp = self._ask(req, COMPILE_TIMEOUT_S)
        errors: list[list] = [[] for _ in tests]
        for d in resp.get("diagnostics", []):
            unit = str(d.get("unit", ""))
            i = int(unit.split("/")[1][1:]) if unit.startswith("/a") else 0
            errors[i].append((_py_offset(tests[i], d["start"] - utf16_len(prefixes[i])), d.get("code") or "", d.get("message") or ""))
        out: list[TrustedPlan | UnsupportedTest] = []
        for t, errs in zip(tests, errors):
            try:
                out.append(build_plan(t, errs))
            except UnsupportedTest as e:
                out.append(e)
        self._compile([p for p in out if isinstance(p, TrustedPlan)], out)
        return out

    def _compile(self, plans: list[TrustedPlan], out: list | None = None) -> None:
        """Compile trusted classes in one javac task; a plan whose class does not compile becomes UnsupportedTest in ``out``."""
        plans = [p for p in {p.key: p for p in plans}.values() if p.key not in self._compiled]
        while plans:
            req = {"op": "compile", "n": str(len(plans))}
            for i, p in enumerate(plans):
                req[f"path{i}"], req[f"source{i}"] = f"{p.key}/Main", p.trusted_source
            resp = self._ask(req, COMPILE_TIMEOUT_S)
            self.stats["compiles"] += 1
            if resp.get("ok"):
                self._compiled.update(p.key for p in plans)
                return
            bad = {str(d.get("unit", "")).split("/")[1]: d for d in resp.get("diagnostics", []) if str(d.get("unit", "")).count("/") >= 2}
            if not bad:
                raise OracleError(f"trusted Java oracle could not compile: {str(resp)[:300]}")
            for p in plans:
                if p.key in bad:
                    msg = str(bad[p.key].get("message", "?")).splitlines()[0]
                    err = UnsupportedTest(f"the test's trusted part does not compile: {msg}")
                    if out is None:
                        raise err
                    out[out.index(p)] = err
            plans = [p for p in plans if p.key not in bad]

    def judge(self, plan: TrustedPlan, values: dict[int, list[str]], test_timeout_s: float) -> dict[int, dict]:
        """Outcome per check index (``{"o": "pass" | "fail" | "error" | "timeout", "type", "msg"}``)."""
        if not values:
            return {}
        order = sorted(values)
        req = {"op": "judge", "key": plan.key, "test_timeout_ms": str(int(test_timeout_s * 1000)),
               "checks": ",".join(f"{i}:__tcf_check_{i}" for i in order)}
        req.update({f"v{i}": frame_values(values[i]) for i in order})
        timeout = test_timeout_s * len(order) + 30.0
        with self._lock:
            for _ in (0, 1):
                if plan.key not in self._compiled:
                    try:
                        self._compile([plan])
                    except UnsupportedTest as e:  # compiled before: the oracle itself misbehaves
                        raise OracleError(str(e)) from None
                resp = self._ask(req, timeout)
                if resp.get("missing"):
                    self._compiled.discard(plan.key)
                    continue
                checks = resp.get("checks")
                if not isinstance(checks, list) or len(checks) != len(order):
                    raise OracleError(f"trusted Java oracle gave a malformed reply: {str(resp)[:200]}")
                return dict(zip(order, checks))
        raise OracleError("trusted Java oracle lost the compiled test twice")

    def pid(self) -> int | None:
        return self._jvm.pid if self._jvm is not None and self._jvm.alive() else None

    def close(self) -> None:
        if self._jvm is not None:
            self._jvm.kill()
            self._jvm = None


def _py_offset(text: str, utf16_offset: int) -> int:
    """Python index of a UTF-16 offset into ``text`` (javac counts UTF-16 units)."""
    if utf16_offset < 0 or text.isascii():
        return utf16_offset
    units = 0
    for i, ch in enumerate(text):
        if units >= utf16_offset:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text)
