"""The Java backend: a pool of candidate worker JVMs, the trusted oracle, and the per-program flow.

Per program: the oracle's plan for its test (cached) gives the probe class; a candidate JVM
compiles program + probe in memory and returns each check's actual values as tagged data (or
the program's error); the oracle judges those values with the test's own code; the two replies
become one :class:`Feedback`. Whatever the candidate JVM does (dies, hangs, floods or garbles its
stdout, answers for another request) is the program's outcome, and that JVM is replaced;
``harness_error`` only comes from the trusted side or a JVM that cannot start.

Example:
    >>> with JavaBackend(num_workers=2) as be:                       # doctest: +SKIP
    ...     [fb] = be.run([(job, program)])
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import queue
import secrets
import threading
import time
import warnings

from trl_codefeedback.execution.feedback import Feedback
from trl_codefeedback.execution.java.fallback import run_plain
from trl_codefeedback.execution.java.feedback import OUTCOMES, compile_feedback, program_feedback, whole_program_feedback
from trl_codefeedback.execution.java.jdk import JVM_FLAGS, SECURITY_MANAGER_FLAG, EXPORTS, find_jdk, service_classes
from trl_codefeedback.execution.java.jvm import ChannelError, JvmProcess
from trl_codefeedback.execution.java.oracle import OracleError, TrustedOracle
from trl_codefeedback.execution.java.plan import UnsupportedTest
from trl_codefeedback.execution.java.source import build_java_source
from trl_codefeedback.execution.program import Program
from trl_codefeedback.execution.sandbox import policy

logger = logging.getLogger(__name__)

COMPILE_ALLOWANCE_S = 30.0  # on top of the program's wall cap before a candidate JVM is declared hung and killed
DEFAULT_WALL_TIME_FACTOR = 4.0
MIN_HEAP_MB = 256  # javac shares the heap with the programs
VALUE_CHARS = 1_000_000  # per check, once encoded
REPLY_CAP = 16 << 20
_CHANNEL_OUTCOME = {  # ChannelError.kind -> (outcome, error_type, message)
    "died": ("error", "JVMDied", "the program's JVM died before answering"),
    "timeout": ("timeout", "Timeout", "the program's JVM did not answer before the deadline and was killed"),
    "too_large": ("resource", "OutputLimitExceeded", "the program's JVM sent more data than the cap"),
    "garbage": ("error", "ProtocolError", "the program's JVM wrote something other than its reply on the protocol stream"),
}


class JavaBackend:
    """Pool of candidate worker JVMs plus one trusted oracle JVM, behind the executor's Java hook.

    Candidate JVMs are sized to the work: the first starts with the pool, another only when more
    programs run at once than JVMs exist (idle JVMs are reused most-recent first), up to
    ``num_workers``. A node service with 96 cores that scores a few Java programs at a time runs
    a few JVMs, not 96.

    Args:
        num_workers: candidate JVMs at most (each holds one warm javac and runs one program at a time).
        isolate: launch the JVMs inside the sandbox's namespaces (no network, read-only FS), as a
            dedicated uid when running as root.
    """

    def __init__(self, num_workers: int = 1, isolate: bool = True):
        self.num_workers = max(1, num_workers)
        self.isolate = isolate
        self.javac, self.java = find_jdk()
        self.mode = "service"
        self.stats = {"programs": 0, "worker_restarts": 0, "harness_errors": 0}
        self.oracle: TrustedOracle | None = None
        self._workers: list[JvmProcess | None] = []
        self._heap: list[int] = []
        self._started: set[int] = set()  # slots whose JVM was started once (a dead one is then a restart)
        self._idle: queue.LifoQueue = queue.LifoQueue()  # most recently used (warm) JVM first
        self._pool: cf.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._fallback_warned = False
        self._fallback_error = ""
        self._closed = False
        self._refusal: policy.SandboxUnavailableError | None = None  # raised again on every later call

    # -- lifecycle
    def _spawn(self, slot: int, heap_mb: int) -> JvmProcess:
        """Start one worker JVM, trying once more before giving up (a start can fail under load)."""
        flags = [f"-Xmx{heap_mb}m", *JVM_FLAGS, SECURITY_MANAGER_FLAG, *EXPORTS]
        try:
            return JvmProcess("java", slot, self.java, service_classes(), "TcfJavaWorker", flags, self.isolate)
        except RuntimeError as first:
            logger.warning("java worker %d did not start, trying once more: %s", slot, first)
            return JvmProcess("java", slot, self.java, service_classes(), "TcfJavaWorker", flags, self.isolate)

    def _start(self, heap_mb: int) -> None:
        with self._lock:
            if self._workers or self.mode == "javac":
                return
            try:
                self.oracle = TrustedOracle(self.java, service_classes(), self.isolate)
                # One JVM now (a host that cannot run one falls back at once); the others on demand.
                self._workers = [self._spawn(0, heap_mb)] + [None] * (self.num_workers - 1)
                self._heap = [heap_mb] * self.num_workers
            except Exception as e:  # noqa: BLE001
                for w in self._workers:
                    w.kill()
                if self.oracle is not None:
                    self.oracle.close()
                self._workers, self.oracle, self.mode = [], None, "javac"
                self._fallback_error = f"{type(e).__name__}: {e}"
                if not self.isolate or policy.weak_allowed(self.isolate):
                    self._warn_fallback(e)
                return
            for i in reversed(range(self.num_workers)):  # slot 0 on top
                self._idle.put(i)
            self._started = {0}
            self._pool = cf.ThreadPoolExecutor(self.num_workers, thread_name_prefix="tcf-java")

    def _warn_fallback(self, err: Exception) -> None:
        if not self._fallback_warned:
            self._fallback_warned = True
            warnings.warn(f"trl_codefeedback: the Java compile service could not start ({err}); falling back to one "
                          "javac + one java process per program (slower, one outcome per program, no isolation, "
                          "verdicts not forge-proof)", RuntimeWarning, stacklevel=4)

    @property
    def isolation(self) -> dict:
        w = next((w for w in self._workers if w is not None), None)
        if w is None:
            return {}
        info = dict(w.isolation, security_manager=bool(w.hello.get("security_manager")), trusted_oracle=True)
        # Programs are threads of a JVM that may not start processes, under a SecurityManager that
        # denies signalling and managing processes: nothing can outlive a program or signal the trainer.
        info["processes_contained"] = bool(info.get("no_fork") and info["security_manager"])
        return info

    def _enforce_policy(self) -> None:
        """Fail closed, as the Python side does (:mod:`sandbox.policy`): no program runs without the
        required guarantees unless weak isolation was asked for."""
        if self.mode == "javac":
            info = {"mode": "javac + java per program, outside any sandbox",
                    "errors": [f"the Java compile service could not start ({self._fallback_error})"]}
        else:
            info = self.isolation
        try:
            policy.enforce(info, self.isolate, language="java")
        except policy.SandboxUnavailableError as e:
            self._refusal = e
            self.close()
            raise

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for w in self._workers:
            if w is not None:
                w.kill()
        self._workers = []
        if self.oracle is not None:
            self.oracle.close()
            self.oracle = None

    def __enter__(self) -> "JavaBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def worker_pids(self) -> list[int]:
        """PIDs of the live candidate JVMs (for tests and monitoring)."""
        return [w.pid for w in self._workers if w is not None and w.alive()]

    # -- running
    def run(self, items: list[tuple[dict, Program]]) -> list[Feedback]:
        """One Feedback per (job, program), in order."""
        if not items:
            return []
        if self._refusal is not None:  # a set-up error, every time: never per-program harness errors
            raise policy.SandboxUnavailableError(str(self._refusal))
        if self._closed:
            raise RuntimeError("JavaBackend is closed")
        heap = max(MIN_HEAP_MB, max(int(j["limits"]["memory_mb"]) for j, _ in items))
        self._start(heap)
        if self.isolate:
            self._enforce_policy()
        self.stats["programs"] += len(items)
        if self.mode == "javac":
            return [run_plain(self.javac, self.java, job) for job, _ in items]
        assert self._pool is not None
        self.oracle.want([job["tests"]["test"] for job, _ in items if job.get("tests")])
        planner = threading.Thread(target=self.oracle.prefetch, name="tcf-java-planner", daemon=True)
        planner.start()
        out = [f.result() for f in [self._pool.submit(self._run_one, job, heap) for job, _ in items]]
        planner.join()
        self.stats["harness_errors"] += sum(fb.status.value == "harness_error" for fb in out)
        return out

    def _run_one(self, job: dict, heap_mb: int) -> Feedback:
        t0 = time.monotonic()
        total = job.get("num_tests", 0) if job.get("tests") else 0
        plan = None
        if job.get("tests"):
            try:
                plan = self.oracle.plan(job["tests"]["test"])
            except UnsupportedTest as e:
                return Feedback.harness_error(f"test not supported by the trusted Java oracle: {e}", tests_total=total)
            except OracleError as e:
                return Feedback.harness_error(str(e), tests_total=total)
        source, lines, file = build_java_source(job["code"], plan.probe_source if plan else None)
        lim = job["limits"]
        factor = wall_time_factor(lim)
        nonce = secrets.token_hex(16)
        req = {"nonce": nonce, "file": file, "source": source, "candidate_lines": str(lines),
               "checks": ",".join(plan.probes) if plan else "", "main_class": "Main",
               "test_timeout_ms": str(int(lim["test_timeout_s"] * 1000)), "program_timeout_ms": str(int(lim["program_timeout_s"] * 1000)),
               "wall_time_factor": repr(factor), "output_bytes": str(int(lim["output_bytes"])), "value_chars": str(VALUE_CHARS)}
        slot = self._idle.get()
        try:
            worker = self._ready(slot, heap_mb)
            if worker is None:
                return Feedback.harness_error("no java worker could be started", tests_total=total)
            try:
                worker.send(req)
                # The backstop: the program's wall cap (the worker's own deadline) plus compilation.
                resp = worker.read_json(lim["program_timeout_s"] * factor + COMPILE_ALLOWANCE_S, REPLY_CAP)
                if resp.get("nonce") != nonce:
                    raise ChannelError("garbage", "reply without the request's nonce")
            except ChannelError as e:
                self._replace(slot, heap_mb)
                outcome, etype, msg = _CHANNEL_OUTCOME[e.kind]
                return whole_program_feedback(job, outcome, etype, f"{msg} ({e})", time.monotonic() - t0)
            if resp.get("recycle"):
                logger.debug("java worker %d replaced after a program: %s", slot, str(resp.get("recycle_reason"))[:120])
                self._replace(slot, heap_mb)
        finally:
            self._idle.put(slot)
        return self._feedback(job, plan, resp, lines, t0)

    def _feedback(self, job: dict, plan, resp: dict, lines: int, t0: float) -> Feedback:
        status = resp.get("status")
        if status == "compile_error":
            return compile_feedback(job, resp, lines, time.monotonic() - t0)
        if status == "compiled" and plan is None:
            return Feedback(status="passed", duration_s=time.monotonic() - t0)
        checks = resp.get("checks")
        if status != "ran" or plan is None or not _valid_checks(checks, plan):
            msg = str(resp.get("error_message") or "a reply that does not match the request")[:500]
            return whole_program_feedback(job, "error", "ProtocolError", f"the program's JVM gave {msg}", time.monotonic() - t0)
        values = {i: c["v"] for i, c in enumerate(checks) if c["o"] == "value"}
        try:
            # Trusted code on plain values, timed by the wall clock: give it the test's wall cap.
            judged = self.oracle.judge(plan, values, job["limits"]["test_timeout_s"] * wall_time_factor(job["limits"]))
        except OracleError as e:
            return Feedback.harness_error(str(e), tests_total=plan.num_tests, duration_s=time.monotonic() - t0)
        final = [judged[i] if c["o"] == "value" else c for i, c in enumerate(checks)]
        exit_line = resp.get("exit_line")
        cpu_ms = resp.get("cpu_ms")
        cpu = round(cpu_ms / 1000, 3) if type(cpu_ms) is int and cpu_ms >= 0 and resp.get("cpu_clock") is True else None
        return program_feedback(job, final, time.monotonic() - t0, leftover_thread=resp.get("leftover_thread") is True,
                                exit_line=exit_line if isinstance(exit_line, int) else None, exited="exit_line" in resp,
                                cpu_time_s=cpu)

    def _ready(self, slot: int, heap_mb: int) -> JvmProcess | None:
        """The slot's worker, replaced when it is dead, has another heap size or left output behind."""
        w = self._workers[slot]
        if w is None and slot not in self._started:  # first use of this slot: more programs at once than JVMs
            self._started.add(slot)
            return self._fill(slot, heap_mb)
        if w is None or self._heap[slot] != heap_mb or not w.alive() or w.pending():
            return self._replace(slot, heap_mb)
        return w

    def _replace(self, slot: int, heap_mb: int) -> JvmProcess | None:
        old = self._workers[slot]
        if old is not None:
            old.kill()
        self.stats["worker_restarts"] += 1
        self._workers[slot] = None
        if self._closed:
            return None
        return self._fill(slot, heap_mb)

    def _fill(self, slot: int, heap_mb: int) -> JvmProcess | None:
        """Start the slot's JVM (None, logged, when it cannot start)."""
        try:
            w = self._spawn(slot, heap_mb)
        except Exception as e:  # noqa: BLE001
            logger.error("could not start java worker %d: %s", slot, e)
            return None
        self._workers[slot], self._heap[slot] = w, heap_mb
        return w


def wall_time_factor(limits: dict) -> float:
    """The job's wall-clock cap as a multiple of its CPU-time limits (at least 1, at most 1000)."""
    return min(1000.0, max(1.0, float(limits.get("wall_time_factor", DEFAULT_WALL_TIME_FACTOR) or DEFAULT_WALL_TIME_FACTOR)))


def _valid_checks(checks, plan) -> bool:
    """A candidate reply is data, not trusted: exactly one well-formed entry per check."""
    if not isinstance(checks, list) or len(checks) != plan.num_tests:
        return False
    for i, c in enumerate(checks):
        if not isinstance(c, dict) or c.get("o") not in OUTCOMES + ("value",) or c["o"] == "pass":
            return False
        if c["o"] == "value":
            v = c.get("v")
            if not isinstance(v, list) or len(v) != len(plan.values[i]) or not all(isinstance(x, str) for x in v):
                return False
            if sum(map(len, v)) > VALUE_CHARS:  # the worker never sends more: bounds what the oracle decodes
                return False
        if c["o"] == "fail" and c.get("type") != "NotPlainData":
            return False
        if not isinstance(c.get("type", ""), str) or not isinstance(c.get("msg", ""), str):
            return False
        if "line" in c and not isinstance(c["line"], int):
            return False
    return True
