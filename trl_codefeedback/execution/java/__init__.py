"""Java backend: a pool of long-lived worker JVMs that compile in memory and run test checks.

Example:
    >>> from trl_codefeedback.execution import Executor, Program
    >>> code = "class Add {\\n    static int add(int a, int b) { return a + b; }\\n}\\n"
    >>> test = "class Main { public static void main(String[] a) throws Exception {\\n"
    ...         "  if (Add.add(1, 2) != 3) { throw new Exception(\\"0\\"); }\\n"
    ...         "  if (Add.add(2, 2) != 4) { throw new Exception(\\"1\\"); }\\n} }\\n")
    >>> with Executor(workers=1) as ex:                                 # doctest: +SKIP
    ...     [fb] = ex.run([Program(code, {"kind": "java_main", "test": test}, language="java")])
    >>> fb.status.value, fb.tests_passed, fb.tests_total               # doctest: +SKIP
    ('passed', 2, 2)

Design (see docs/java.md): each worker is one JVM running ``TcfJavaWorker.java`` (shipped as
package data, compiled on first use into a cache folder). It compiles each program with
``javax.tools`` in memory (a warm javac: a few ms per program instead of a ~1 s ``javac``
start), loads the classes in a fresh class loader and runs each check of the (split) test
``main`` in a thread of a sandbox thread group, with per-test and per-program deadlines.
The Python side is the watchdog: a worker that dies, hangs or asks to be recycled (a thread
it could not stop, an ``OutOfMemoryError``) is killed and replaced; the program it was
running gets ``harness_error`` when the worker died, never a model failure. When no worker
JVM can start, the backend falls back to one ``javac`` + one ``java`` process per program
(and warns once).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from trl_codefeedback.execution.feedback import Feedback
from trl_codefeedback.execution.java.split import JavaTestPlan, count_java_checks, split_java_main, split_statements
from trl_codefeedback.execution.program import Program
from trl_codefeedback.execution.python_worker import last_code_line
from trl_codefeedback.execution.worker_process import LineWorkerProcess

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
WORKER_SOURCE = HERE / "TcfJavaWorker.java"
LAUNCHER = HERE / "launcher.py"
SANDBOX_UID_BASE = 5_000_000  # + the JVM's pid; above the Python workers' 200_000 + pid for any pid_max (<= 2**22)
WORKER_START_TIMEOUT_S = 60.0
COMPILE_ALLOWANCE_S = 30.0  # on top of program_timeout_s before the watchdog declares a worker hung
MIN_HEAP_MB = 256  # javac shares the heap with the programs
JVM_FLAGS = ("-XX:+UseSerialGC", "-XX:-UsePerfData", "-Xss8m", "-XX:TieredStopAtLevel=1",
             "-Djava.security.manager=allow", "-Xshare:auto")
ENV_CACHE = "TRL_CODEFEEDBACK_CACHE"
EXPORTS = ("--add-exports", "jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED")

__all__ = [
    "JavaBackend", "JavaDiagnostic", "JavaTestPlan", "JavaUnavailableError", "build_java_source", "diagnostics_of",
    "count_java_checks", "get_java_backend", "java_error_scope", "split_java_main", "split_statements",
]


class JavaUnavailableError(RuntimeError):
    """No JDK (``javac`` and ``java``) on PATH / in JAVA_HOME."""


@dataclass(frozen=True)
class JavaDiagnostic:
    """One javac error. ``line`` / ``column`` are in the candidate code; ``line`` is None in the test part."""

    kind: str
    code: str
    line: int | None
    column: int | None
    message: str


def find_jdk() -> tuple[str, str]:
    """Paths of ``javac`` and ``java`` (JAVA_HOME first, then PATH)."""
    home = os.environ.get("JAVA_HOME")
    cands = [os.path.join(home, "bin")] if home else []
    found = []
    for tool in ("javac", "java"):
        path = next((os.path.join(d, tool) for d in cands if os.access(os.path.join(d, tool), os.X_OK)), None) or shutil.which(tool)
        if path is None:
            raise JavaUnavailableError(f"no {tool} found (install a JDK 11+ or set JAVA_HOME)")
        found.append(os.path.realpath(path))
    return found[0], found[1]


_build_lock = threading.Lock()


def service_classes() -> Path:
    """Compile ``TcfJavaWorker.java`` once (cached by source hash and JDK) and return the class folder."""
    javac, _ = find_jdk()
    digest = hashlib.sha256(WORKER_SOURCE.read_bytes() + javac.encode()).hexdigest()[:16]
    base = Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "trl_codefeedback") / "java"
    with _build_lock:
        if (base / digest / "TcfJavaWorker.class").exists():
            return base / digest
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError:  # read-only home: build under the temp dir instead
            base = Path(tempfile.gettempdir()) / f"trl_codefeedback-java-{os.getuid()}"
            if (base / digest / "TcfJavaWorker.class").exists():
                return base / digest
            base.mkdir(parents=True, exist_ok=True)
        out = base / digest
        tmp = Path(tempfile.mkdtemp(dir=base, prefix="build-"))
        proc = subprocess.run([javac, *EXPORTS, "-nowarn", "-Xlint:none", "-d", str(tmp), str(WORKER_SOURCE)], capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"could not compile the Java worker: {proc.stderr[-2000:]}")
        try:
            os.replace(tmp, out)
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
        return out


_PUBLIC_TYPE_RE = re.compile(r"^public\s+(?:(?:final|abstract|sealed|strictfp)\s+)*(?:class|interface|enum|record)\s+([A-Za-z_$][\w$]*)", re.M)


def build_java_source(code: str, test: str | None) -> tuple[str, int, str]:
    """The compilation unit: candidate code, then the test. Returns (source, candidate line count, file name).

    The file is named after the candidate's public top-level type when it has one, else ``Main``.
    """
    if code and not code.endswith("\n"):
        code += "\n"
    lines = code.count("\n")
    m = _PUBLIC_TYPE_RE.search(code)
    return code + (test or ""), lines, (m.group(1) if m else "Main")


# ----------------------------------------------------------------------------- scopes

IGNORE_CODES = ("compiler.err.unclosed.comment", "compiler.err.unclosed.text.block",
                "compiler.err.class.public.should.be.in.file")
GLOBAL_CODES = ("compiler.err.premature.eof",)
GLOBAL_RUNTIME = ("Timeout", "StackOverflowError", "OutOfMemoryError", "OutputLimitExceeded")


def java_error_scope(error_type: str | None, message: str | None, line: int | None, code: str, truncated: bool,
                     compile_code: str | None = None) -> str | None:
    """RLTF's line / global / ignore taxonomy for Java (the table is in docs/java.md).

    ``compile_code`` is javac's diagnostic key (``compiler.err...``) for compile errors.
    """
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
    if error_type == "WrongAnswer":
        return "ignore"
    return "line" if line is not None else "ignore"


# ----------------------------------------------------------------------------- jobs -> requests -> Feedback

_STATUS_OF = {"fail": "failed", "error": "runtime_error", "timeout": "timeout", "resource": "resource_limit"}


def _prepare(job: dict) -> dict:
    spec = job.get("tests")
    plan = split_java_main(spec["test"]) if spec else None
    source, lines, file = build_java_source(job["code"], plan.source if plan else None)
    lim = job["limits"]
    return {
        "file": file, "source": source, "candidate_lines": str(lines),
        "checks": ",".join(plan.checks) if plan else "",
        "main_class": "Main",
        "test_timeout_ms": str(int(lim["test_timeout_s"] * 1000)),
        "program_timeout_ms": str(int(lim["program_timeout_s"] * 1000)),
        "output_bytes": str(int(lim["output_bytes"])),
    }


def diagnostics_of(resp: dict, candidate_lines: int) -> list[JavaDiagnostic]:
    out = []
    for d in resp.get("diagnostics", []):
        line = d.get("line")
        inside = line is not None and 1 <= line <= candidate_lines
        out.append(JavaDiagnostic(d.get("kind", "error"), d.get("code") or "", line if inside else None,
                                  d.get("column") if inside else None, d.get("message", "")))
    return out


def _feedback(job: dict, req: dict, resp: dict, duration: float) -> Feedback:
    total = job["num_tests"] if job.get("tests") else 0
    code, truncated = job["code"], bool(job.get("truncated"))
    st = resp.get("status")
    if st == "harness_error":
        return Feedback.harness_error(resp.get("error_message", "java worker error"), tests_total=total, duration_s=duration)
    if st == "compile_error":
        diags = diagnostics_of(resp, int(req["candidate_lines"]))
        d = next((x for x in diags if x.line is not None), diags[0] if diags else JavaDiagnostic("error", "compiler.err", None, None, "compilation failed"))
        first_line = d.message.splitlines()[0] if d.message else ""
        where = f" (line {d.line}, column {d.column})" if d.line is not None else " (in the test code)"
        etype = d.code.removeprefix("compiler.err.") or "CompileError"
        return Feedback(status="compile_error", tests_total=total, error_type=etype,
                        error_message=(first_line + where)[:2000], error_line=d.line,
                        error_scope=java_error_scope(etype, d.message, d.line, code, truncated, compile_code=d.code),
                        duration_s=duration, test_outcomes=["not_run"] * total)
    if st == "compiled":
        return Feedback(status="passed", duration_s=duration)
    outcomes = list(resp.get("outcomes", []))
    first = resp.get("first")
    line = resp.get("line")
    line = line if isinstance(line, int) and line >= 1 else None
    passed = sum(o == "pass" for o in outcomes)
    if first is None:
        return Feedback(status="passed", tests_passed=passed, tests_total=len(outcomes), duration_s=duration, test_outcomes=outcomes)
    etype = resp.get("error_type")
    return Feedback(status=_STATUS_OF.get(first, "runtime_error"), tests_passed=passed, tests_total=len(outcomes),
                    error_type=etype, error_message=(resp.get("error_message") or "")[:2000], error_line=line,
                    error_scope=java_error_scope(etype, resp.get("error_message"), line, code, truncated),
                    duration_s=duration, test_outcomes=outcomes)


def encode_request(req: dict) -> bytes:
    parts = []
    for k, v in req.items():
        b = v.encode("utf-8", "surrogatepass")
        parts.append(f"{k} {len(b)}\n".encode() + b + b"\n")
    parts.append(b"END\n")
    return b"".join(parts)


# ----------------------------------------------------------------------------- worker JVMs


class _JavaWorker(LineWorkerProcess):
    label = "java"

    def __init__(self, index: int, classes: Path, java: str, heap_mb: int, isolate: bool):
        super().__init__(index)
        self.classes, self.java, self.heap_mb, self.isolate = classes, java, heap_mb, isolate
        self.isolation: dict = {}
        self.hello: dict = {}
        self.start()

    def start(self) -> None:
        import json

        jvm = [self.java, f"-Xmx{self.heap_mb}m", *JVM_FLAGS, *EXPORTS, "-cp", "@CLASSES@", "TcfJavaWorker"]
        cmd = [sys.executable, "-I", str(LAUNCHER), "--uid-base", str(SANDBOX_UID_BASE), "--classes", str(self.classes)]
        if not self.isolate:
            cmd.append("--no-isolation")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        if os.environ.get("JAVA_HOME"):
            env["JAVA_HOME"] = os.environ["JAVA_HOME"]
        self.proc = subprocess.Popen(cmd + ["--", *jvm], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, cwd="/", close_fds=True)
        for name in ("isolation", "hello"):
            line = self._readline(WORKER_START_TIMEOUT_S)
            if line is None:
                self.kill()
                raise RuntimeError(f"java worker {self.index} did not start (no {name} line)")
            info = json.loads(line)
            if name == "isolation":
                self.isolation = info["isolation"]
            else:
                self.hello = info
                if not info.get("hello"):
                    self.kill()
                    raise RuntimeError(f"java worker {self.index}: {info.get('error')}")

    def request(self, req: dict, timeout: float) -> dict:
        return self._exchange(encode_request(req), timeout)


class JavaBackend:
    """Pool of worker JVMs behind the executor's Java hook (``run(items)`` / ``close()``).

    Args:
        num_workers: worker JVMs (each holds one warm javac and runs one program at a time).
        isolate: launch the JVMs inside the sandbox's namespaces (no network, read-only FS), as a
            dedicated uid when running as root.
    """

    def __init__(self, num_workers: int = 1, isolate: bool = True):
        self.num_workers = max(1, num_workers)
        self.isolate = isolate
        self.javac, self.java = find_jdk()
        self.mode = "service"
        self.stats = {"programs": 0, "worker_restarts": 0, "harness_errors": 0}
        self._workers: list[_JavaWorker | None] = []
        self._idle: queue.Queue = queue.Queue()
        self._pool: cf.ThreadPoolExecutor | None = None
        self._heap_mb: int | None = None
        self._lock = threading.Lock()
        self._fallback_warned = False
        self._closed = False

    # -- lifecycle
    def _start(self, heap_mb: int) -> None:
        with self._lock:
            if self._workers or self.mode == "javac":
                return
            self._heap_mb = heap_mb
            try:
                classes = service_classes()
                for i in range(self.num_workers):
                    self._workers.append(_JavaWorker(i, classes, self.java, heap_mb, self.isolate))
            except Exception as e:  # noqa: BLE001
                for w in self._workers:
                    if w is not None:
                        w.kill()
                self._workers = []
                self.mode = "javac"
                self._warn_fallback(e)
                return
            for i in range(self.num_workers):
                self._idle.put(i)
            self._pool = cf.ThreadPoolExecutor(self.num_workers, thread_name_prefix="tcf-java")

    def _warn_fallback(self, err: Exception) -> None:
        if not self._fallback_warned:
            self._fallback_warned = True
            warnings.warn(f"trl_codefeedback: the Java compile service could not start ({err}); falling back to one "
                          "javac + one java process per program (slower, one outcome per program, no isolation)",
                          RuntimeWarning, stacklevel=4)

    @property
    def isolation(self) -> dict:
        w = self._workers[0] if self._workers else None
        return dict(w.isolation, security_manager=bool(w.hello.get("security_manager"))) if w else {}

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for w in self._workers:
            if w is not None:
                w.kill()
        self._workers = []

    def __enter__(self) -> "JavaBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- running
    def run(self, items: list[tuple[dict, Program]]) -> list[Feedback]:
        """One Feedback per (job, program), in order."""
        if not items:
            return []
        if self._closed:
            raise RuntimeError("JavaBackend is closed")
        heap = max(MIN_HEAP_MB, max(int(j["limits"]["memory_mb"]) for j, _ in items))
        self._start(heap)
        self.stats["programs"] += len(items)
        if self.mode == "javac":
            return [_run_plain(self.javac, self.java, job) for job, _ in items]
        assert self._pool is not None
        futs = [self._pool.submit(self._run_one, job, heap) for job, _ in items]
        out = [f.result() for f in futs]
        self.stats["harness_errors"] += sum(fb.status.value == "harness_error" for fb in out)
        return out

    def _run_one(self, job: dict, heap_mb: int) -> Feedback:
        t0 = time.monotonic()
        try:
            req = _prepare(job)
        except Exception as e:  # noqa: BLE001
            return Feedback.harness_error(f"could not prepare the Java program: {e}", tests_total=job.get("num_tests", 0))
        slot = self._idle.get()
        try:
            worker = self._workers[slot]
            if worker is None or worker.heap_mb != heap_mb or worker.proc is None or worker.proc.poll() is not None:
                worker = self._replace(slot, heap_mb)
                if worker is None:
                    return Feedback.harness_error("no java worker could be started", tests_total=job.get("num_tests", 0))
            timeout = job["limits"]["program_timeout_s"] + COMPILE_ALLOWANCE_S
            try:
                resp = worker.request(req, timeout)
            except Exception as e:  # noqa: BLE001 - a dead worker is our failure, never the model's
                self._replace(slot, heap_mb)
                return Feedback.harness_error(f"java worker failure: {e}", tests_total=job.get("num_tests", 0), duration_s=time.monotonic() - t0)
            if resp.get("recycle"):
                self._replace(slot, heap_mb)
            return _feedback(job, req, resp, time.monotonic() - t0)
        finally:
            self._idle.put(slot)

    def _replace(self, slot: int, heap_mb: int) -> _JavaWorker | None:
        old = self._workers[slot]
        if old is not None:
            old.kill()
        self.stats["worker_restarts"] += 1
        self._workers[slot] = None
        if self._closed:
            return None
        try:
            w = _JavaWorker(slot, service_classes(), self.java, heap_mb, self.isolate)
        except Exception as e:  # noqa: BLE001
            logger.error("could not restart java worker %d: %s", slot, e)
            return None
        self._workers[slot] = w
        return w

    def worker_pids(self) -> list[int]:
        """PIDs of the live worker JVMs (for tests and monitoring)."""
        return [w.proc.pid for w in self._workers if w is not None and w.proc is not None and w.proc.poll() is None]


# ----------------------------------------------------------------------------- plain javac fallback

_JAVAC_ERR_RE = re.compile(r"^(?:.*?)\.java:(\d+): error: (.*)$", re.M)
_EXC_RE = re.compile(r"Exception in thread \"[^\"]*\" ([\w.$]+)(?::\s*(.*))?")


def _run_plain(javac: str, java: str, job: dict) -> Feedback:
    """One ``javac`` + one ``java`` process (mxeval / MultiPL-E style). Used when the service cannot start."""
    t0 = time.monotonic()
    spec = job.get("tests")
    plan = split_java_main(spec["test"]) if spec else None
    source, lines, file = build_java_source(job["code"], plan.source if plan else None)
    total = plan.num_tests if plan else 0
    lim = job["limits"]
    with tempfile.TemporaryDirectory(prefix="tcf-javac-") as d:
        Path(d, f"{file}.java").write_text(source, encoding="utf-8")
        p = subprocess.run([javac, "-nowarn", "-proc:none", "-g", "-d", d, f"{file}.java"], cwd=d, capture_output=True, text=True)
        if p.returncode != 0:
            m = _JAVAC_ERR_RE.search(p.stderr)
            line = int(m.group(1)) if m else None
            line = line if line is not None and line <= lines else None
            msg = m.group(2) if m else p.stderr[-500:]
            resp = {"status": "compile_error", "diagnostics": [{"kind": "error", "code": "compiler.err", "line": line, "column": None, "message": msg}]}
            return _feedback(job, {"candidate_lines": str(lines)}, resp, time.monotonic() - t0)
        if plan is None:
            return Feedback(status="passed", duration_s=time.monotonic() - t0)
        try:
            r = subprocess.run([java, f"-Xmx{max(MIN_HEAP_MB, lim['memory_mb'])}m", "-cp", d, "Main"], cwd=d, capture_output=True,
                               text=True, timeout=lim["program_timeout_s"])
        except subprocess.TimeoutExpired:
            resp = {"status": "ran", "outcomes": ["timeout"] + ["not_run"] * (total - 1), "first": "timeout",
                    "error_type": "Timeout", "error_message": "program exceeded its time limit", "line": -1}
            return _feedback(job, {}, resp, time.monotonic() - t0)
    if r.returncode == 0:
        return Feedback(status="passed", tests_passed=total, tests_total=total, duration_s=time.monotonic() - t0, test_outcomes=["pass"] * total)
    m = _EXC_RE.search(r.stderr)
    etype = (m.group(1).rsplit(".", 1)[-1] if m else f"ExitCode{r.returncode}")
    k = next((i for i in range(total) if f"__tcf_check_{i}(" in r.stderr and f"Main.__tcf_check_{i}(Main" in r.stderr), 0)
    cand = [int(x) for x in re.findall(rf"\({re.escape(file)}\.java:(\d+)\)", r.stderr) if int(x) <= lines]
    wrong = etype == "Exception" and not cand
    outcomes = ["pass"] * k + ["fail" if wrong else "error"] + ["not_run"] * (total - k - 1)
    resp = {"status": "ran", "outcomes": outcomes, "first": outcomes[k], "error_type": "WrongAnswer" if wrong else etype,
            "error_message": (m.group(2) if m else r.stderr[-500:]) or etype, "line": cand[0] if cand else -1}
    return _feedback(job, {}, resp, time.monotonic() - t0)


# ----------------------------------------------------------------------------- executor hook

def get_java_backend(num_workers: int, isolate: bool = True) -> JavaBackend:
    """The backend the :class:`~trl_codefeedback.execution.Executor` uses for ``language="java"``."""
    return JavaBackend(num_workers, isolate=isolate)
