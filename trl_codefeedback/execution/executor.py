"""The executor: runs batches of programs in parallel sandboxed workers, with a result cache.

Example:
    >>> from trl_codefeedback.execution import Executor, Program
    >>> with Executor(workers=2) as ex:
    ...     [fb] = ex.run([Program("def f(x):\\n    return x + 1\\n",
    ...                            {"kind": "asserts", "asserts": ["assert f(1) == 2"]})])
    >>> fb.status.value
    'passed'

Design (why it is fast): each worker is a long-lived, stdlib-only Python process
started with ``subprocess`` (so it never inherits a trainer holding torch); it forks
a sandboxed child per program from its already-warm interpreter (~1 ms instead of
~20 ms for a new interpreter). The executor keeps one dispatcher thread per worker
pulling from a shared queue, so all cores stay busy. Results are cached by
(language, code, tests, limits, flags): GRPO samples many duplicates.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Sequence

from trl_codefeedback.execution.feedback import Feedback
from trl_codefeedback.execution.program import LANGUAGES, Limits, Program, UnknownLanguageError
from trl_codefeedback.execution.sandbox import policy
from trl_codefeedback.execution.specs import TestSpecError, check_kind_for_language, parse_test_spec, spec_to_dict
from trl_codefeedback.execution.stderr_tail import StderrTail
from trl_codefeedback.execution.worker_process import LineWorkerProcess

logger = logging.getLogger(__name__)


def hidden_data_files_env() -> dict[str, str]:
    """Benchmark data inside the interpreter's folders that the sandbox hides (see sandbox/datafiles.py)."""
    from trl_codefeedback.execution.sandbox import datafiles, fsview  # noqa: PLC0415 - stdlib-only helpers

    return datafiles.hidden_files_env(tuple(fsview.data_search_roots()))


WORKER_SCRIPT = Path(__file__).parent / "sandbox" / "worker_main.py"
# When started as root, a worker runs programs as uid SANDBOX_UID_BASE + its own pid: unique among
# live workers on the host, so two executors (or two training processes) never share a sandbox uid.
SANDBOX_UID_BASE = 200_000
WORKER_START_TIMEOUT_S = 30.0


class _PythonWorker(LineWorkerProcess):
    """Handle on one worker process (see sandbox/worker_main.py)."""

    label = "python"

    def __init__(self, index: int, isolate: bool, cpu: int | None = None):
        super().__init__(index)
        self.isolate = isolate
        self.cpu = cpu
        self.isolation: dict = {}
        self.start()

    def start(self) -> None:
        """Start the worker; one more try when it fails, then RuntimeError with what it wrote to stderr."""
        try:
            self._start_once()
        except RuntimeError as first:
            logger.warning("%s; trying once more", first)
            self._start_once()

    def _start_once(self) -> None:
        cmd = [sys.executable, "-I", "-u", str(WORKER_SCRIPT), "--uid-base", str(SANDBOX_UID_BASE)]
        if not self.isolate:
            cmd.append("--no-isolation")
        # Scrubbed environment: no tokens or keys from the trainer reach the worker or its programs.
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        if self.isolate:
            env.update(hidden_data_files_env())  # benchmark files in site-packages, found once per process
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd="/", close_fds=True)
        stderr = StderrTail(self.proc.stderr)
        if self.cpu is not None:
            try:
                os.sched_setaffinity(self.proc.pid, {self.cpu})  # its forked children inherit it
            except OSError:
                pass
        hello = self._readline(WORKER_START_TIMEOUT_S)
        if hello is None:
            self.kill()
            said = stderr.text(wait_s=2.0)
            raise RuntimeError(
                f"python worker {self.index} did not start (no hello line; exit code {self.proc.poll()}); "
                + (f"its stderr:\n{said}" if said else "it wrote nothing to stderr")
            )
        info = json.loads(hello)
        self.isolation = info.get("isolation", {})

    def kill(self) -> None:
        """Stop the worker (its zygote dies with it), then remove its programs' scratch folder (Landlock mode)."""
        super().kill()
        if self.isolation.get("scratch"):
            from trl_codefeedback.execution.sandbox import scratch  # noqa: PLC0415

            scratch.remove(self.isolation["scratch"])

    def run(self, job: dict) -> dict:
        """Send one job, wait for its result; raises RuntimeError when the worker dies or hangs.

        A result marked ``recycle`` (the worker's sandbox zygote is gone) is returned, and the
        worker is replaced before its next job.
        """
        # The worker enforces the program's limits itself (its wall-clock cap is wall_time_factor x its
        # CPU-time limit); the extra 30 s is the backstop for a stuck worker.
        lim = job["limits"]
        result = self._exchange((json.dumps(job) + "\n").encode(), lim["program_timeout_s"] * lim["wall_time_factor"] + 30.0)
        if result.pop("recycle", False):
            self.kill()
            self.start()
        return result


class Executor:
    """Runs :class:`Program` batches on a pool of sandboxed workers and returns :class:`Feedback`.

    Args:
        workers: number of worker processes (default: the number of usable CPU cores).
        limits: default :class:`Limits` for programs.
        cache_size: results kept in the LRU cache (0 disables it).
        isolate: set up network / file-system / PID isolation; raises SandboxUnavailableError where the
            host cannot (docs/sandbox.md). ``"weak"``: run with what the host allows instead.
            ``False`` keeps only rlimits and process-group kills (faster start, for trusted code).
        pin_workers: pin worker ``i`` (and the programs it forks) to the ``i``-th usable core.
            A worker and its program then share one core's caches and TLB: no cross-core TLB
            shoot-downs on copy-on-write faults. ``False`` lets the OS place them.
        backend: where the programs run (:data:`BACKENDS`): ``"local"`` (default): this process's
            own pool; ``"node"``: one pool shared by all processes of the training job on this node
            (a service the first of them starts; docs/cluster.md). The other arguments then
            configure that service when this process starts it. ``"ray"``: Ray actors on the nodes of
            a Ray cluster, each with the same sandbox (:class:`~trl_codefeedback.execution.ray_backend.RayExecutor`;
            ``workers`` counts actors, default: the cluster's free CPUs; ``pip install '.[ray]' from a checkout (no PyPI release yet)``).

    The pool starts lazily on the first :meth:`run` and is shut down by :meth:`close`
    (or at interpreter exit).
    """

    def __init__(
        self,
        workers: int | None = None,
        limits: Limits | None = None,
        cache_size: int = 100_000,
        isolate: bool | str = True,
        pin_workers: bool = True,
        backend: str = "local",
    ):
        self.num_workers = max(1, workers or len(os.sched_getaffinity(0)))
        self.limits = limits or Limits()
        self.cache_size = cache_size
        self.isolate = isolate
        self.pin_workers = pin_workers
        self._cache: OrderedDict[str, Feedback] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._workers: list[_PythonWorker] = []
        self._jobs: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._closed = False
        self.stats = {"programs": 0, "cache_hits": 0, "harness_errors": 0, "worker_restarts": 0}
        self._java = None
        if backend not in BACKENDS:
            raise ValueError(f"unknown executor backend {backend!r}; expected one of {sorted(BACKENDS)}")
        self.backend = backend
        self._workers_arg = workers  # None: the backend's own default (ray: the cluster's free CPUs)
        self._remote = BACKENDS[backend](self) if BACKENDS[backend] is not None else None  # None: run here

    # ------------------------------------------------------------------ pool lifecycle

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._workers:
                return
            if self._closed:
                raise RuntimeError("Executor is closed")
            cpus = sorted(os.sched_getaffinity(0))
            for i in range(self.num_workers):
                self._workers.append(_PythonWorker(i, self.isolate, cpus[i % len(cpus)] if self.pin_workers else None))
            for w in self._workers:
                t = threading.Thread(target=self._dispatch_loop, args=(w,), daemon=True, name=f"tcf-dispatch-{w.index}")
                t.start()
                self._threads.append(t)
            atexit.register(self.close)
            self._warn_isolation()

    @property
    def isolation(self) -> dict:
        """What the sandbox guarantees on this host (from the first worker's set-up)."""
        if self._remote is not None:
            return self._remote.isolation
        self._ensure_started()
        return dict(self._workers[0].isolation)

    def _warn_isolation(self) -> None:
        """Fail closed: refuse (closing the pool) when a required guarantee is missing, unless
        ``isolate="weak"`` or ``TCF_ISOLATION=weak`` (then warn). See sandbox/policy.py."""
        if not self.isolate:
            return
        try:
            policy.enforce(self._workers[0].isolation, self.isolate)
        except policy.SandboxUnavailableError:
            self.close()
            raise

    def close(self) -> None:
        """Stop all workers (idempotent)."""
        self._closed = True
        if self._remote is not None:
            self._remote.close()
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join(timeout=5)
        for w in self._workers:
            w.kill()
        self._workers, self._threads = [], []
        if self._java is not None:
            self._java.close()
            self._java = None

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _dispatch_loop(self, worker: _PythonWorker) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, slot, results, done = item
            try:
                result = worker.run(job)
            except Exception as e:  # noqa: BLE001 - a dead worker is our failure, not the model's
                result = Feedback.harness_error(f"worker failure: {e}", tests_total=job["num_tests"]).to_dict()
                self._restart(worker)
            results[slot] = result
            done.release()

    def _restart(self, worker: _PythonWorker) -> None:
        worker.kill()
        self.stats["worker_restarts"] += 1
        if self._closed:
            return
        try:
            worker.start()
        except Exception as e:  # noqa: BLE001
            logger.error("could not restart python worker %d: %s", worker.index, e)

    # ------------------------------------------------------------------ running

    def run(self, programs: Sequence[Program], limits: Limits | None = None, progress: bool = False, desc: str = "executing") -> list[Feedback]:
        """Execute ``programs`` (in parallel) and return one :class:`Feedback` each, in order.

        Malformed test specs and unknown languages raise before anything runs.
        """
        if self._remote is not None:
            return self._remote.run(programs, limits=limits or self.limits, progress=progress, desc=desc)
        limits = limits or self.limits
        prepared = [self._prepare(i, p, limits) for i, p in enumerate(programs)]
        out: list[Feedback | None] = [None] * len(programs)
        todo: dict[str, list[int]] = {}
        for i, (key, job, program) in enumerate(prepared):
            hit = self._cache_get(key)
            if hit is not None:
                out[i] = hit
            else:
                todo.setdefault(key, []).append(i)
        self.stats["programs"] += len(programs)
        self.stats["cache_hits"] += len(programs) - sum(len(v) for v in todo.values())
        bar = _progress_bar(len(programs), desc) if progress else None
        if bar is not None:
            bar.update(len(programs) - sum(len(v) for v in todo.values()))
        java_keys = [k for k, idx in todo.items() if prepared[idx[0]][2].language == "java"]
        py_keys = [k for k in todo if k not in set(java_keys)]
        if java_keys:
            self._run_java([prepared[todo[k][0]] for k in java_keys], todo, out, bar)
        if py_keys:
            self._run_python([prepared[todo[k][0]] for k in py_keys], todo, out, bar)
        if bar is not None:
            bar.close()
        for fb in out:
            if fb is not None and fb.status.value == "harness_error":
                self.stats["harness_errors"] += 1
                logger.warning("harness error (not the model's fault): %s", fb.error_message)
        return out  # type: ignore[return-value]

    def _run_python(self, items, todo, out, bar) -> None:
        self._ensure_started()
        results: list[dict | None] = [None] * len(items)
        done = threading.Semaphore(0)
        for slot, (key, job, program) in enumerate(items):
            self._jobs.put((job, slot, results, done))
        for _ in items:
            done.acquire()
            if bar is not None:
                bar.update(1)
        for (key, job, program), result in zip(items, results):
            fb = Feedback.from_dict(result)  # type: ignore[arg-type]
            self._cache_put(key, fb)
            for i in todo[key]:
                out[i] = fb
            if bar is not None and len(todo[key]) > 1:
                bar.update(len(todo[key]) - 1)

    def _run_java(self, items, todo, out, bar) -> None:
        from trl_codefeedback.execution.java import get_java_backend  # noqa: PLC0415 - optional backend

        if self._java is None:
            self._java = get_java_backend(self.num_workers, isolate=self.isolate)
        fbs = self._java.run([(job, program) for _, job, program in items])
        for (key, job, program), fb in zip(items, fbs):
            self._cache_put(key, fb)
            for i in todo[key]:
                out[i] = fb
        if bar is not None:
            bar.update(sum(len(todo[k]) for k, _, _ in items))

    def _prepare(self, index: int, program: Program, limits: Limits) -> tuple[str, dict, Program]:
        if program.language not in LANGUAGES:
            raise UnknownLanguageError(f"program {index}: unknown language {program.language!r}; supported: {list(LANGUAGES)}")
        if not isinstance(program.code, str):
            raise TypeError(f"program {index}: code must be a str, got {type(program.code).__name__}")
        if program.tests is None:
            spec_dict, num_tests = None, 0
        else:
            try:
                spec = parse_test_spec(program.tests)
                check_kind_for_language(spec, program.language)
            except TestSpecError as e:
                raise TestSpecError(f"program {index}: {e}") from None
            spec_dict, num_tests = spec_to_dict(spec), spec.num_tests
        job = {
            "code": program.code,
            "tests": spec_dict,
            "truncated": program.truncated,
            "coverage": program.coverage,
            "limits": asdict(limits),
            "num_tests": num_tests,
            "language": program.language,
        }
        key = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()
        job["id"] = key[:16]
        return key, job, program

    # ------------------------------------------------------------------ cache

    def _cache_get(self, key: str) -> Feedback | None:
        if not self.cache_size:
            return None
        with self._cache_lock:
            fb = self._cache.get(key)
            if fb is None:
                return None
            self._cache.move_to_end(key)
        d = fb.to_dict()
        d["cached"] = True
        return Feedback.from_dict(d)

    def _cache_put(self, key: str, fb: Feedback) -> None:
        if not self.cache_size or fb.status.value == "harness_error":
            return  # never cache our own failures
        with self._cache_lock:
            self._cache[key] = fb
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()


def _progress_bar(total: int, desc: str):
    from tqdm.auto import tqdm  # noqa: PLC0415

    return tqdm(total=total, desc=desc, unit="prog", dynamic_ncols=True)


def _node_backend(ex: Executor):
    from trl_codefeedback.execution.node_client import NodeClient  # noqa: PLC0415

    return NodeClient(workers=ex.num_workers, limits=ex.limits, cache_size=ex.cache_size, isolate=ex.isolate,
                      pin_workers=ex.pin_workers, stats=ex.stats)


def _ray_backend(ex: Executor):
    from trl_codefeedback.execution.ray_backend import RayExecutor  # noqa: PLC0415 - optional (needs Ray)

    rex = RayExecutor(workers=ex._workers_arg, limits=ex.limits, cache_size=ex.cache_size, isolate=ex.isolate)
    rex.stats = ex.stats
    return rex


# Backend name -> factory(executor) of the object its run() / isolation / close() delegate to (None: this process's pool).
BACKENDS = {"local": None, "node": _node_backend, "ray": _ray_backend}


def default_backend() -> str:
    """``TCF_EXECUTOR_BACKEND`` if set, else ``"node"`` when this process is one of several ranks on its
    node (``LOCAL_WORLD_SIZE > 1``, set by torchrun / accelerate), else ``"local"``."""
    forced = os.environ.get("TCF_EXECUTOR_BACKEND")
    if forced:
        return forced
    try:
        local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    except ValueError:
        local_ranks = 1
    return "node" if local_ranks > 1 else "local"


_default_executor: Executor | None = None
_default_lock = threading.Lock()


def get_default_executor() -> Executor:
    """The process-wide shared executor (started on first use; backend: :func:`default_backend`)."""
    global _default_executor
    with _default_lock:
        if _default_executor is None or _default_executor._closed:
            _default_executor = Executor(backend=default_backend())
        return _default_executor


def execute(programs: Iterable[Program], workers: int | None = None, limits: Limits | None = None, progress: bool = False) -> list[Feedback]:
    """Run programs and return their Feedback (uses the shared executor unless ``workers`` is given).

    Example:
        >>> [fb] = execute([Program("print(1)", None)])
        >>> fb.status.value
        'passed'
    """
    programs = list(programs)
    if workers is None:
        return get_default_executor().run(programs, limits=limits, progress=progress)
    with Executor(workers=workers, limits=limits) as ex:
        return ex.run(programs, progress=progress)
