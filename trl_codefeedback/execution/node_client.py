"""The rank's side of the node executor service (see node_service.py): same interface as an Executor.

Example:
    >>> from trl_codefeedback.execution import Executor, Program
    >>> with Executor(backend="node") as ex:                                  # doctest: +SKIP
    ...     [fb] = ex.run([Program("print(1)", None)])   # the node's service, started if none runs

``NodeClient.run`` connects on first use (starting the service under the node's lock file when
none answers), sends the batch, and collects one result per program as the service finishes it.
When the service dies mid-batch, the programs not yet answered come back as
``Feedback.harness_error`` (never scored as the model's failure) and the next ``run`` starts a
new service.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Sequence

from trl_codefeedback.execution.feedback import Feedback
from trl_codefeedback.execution.node_service import DEFAULT_GRACE_S, REFUSED_EXIT_CODE, NodePaths, node_paths, program_to_dict, recv_msg, send_msg
from trl_codefeedback.execution.program import Limits, Program, UnknownLanguageError
from trl_codefeedback.execution.sandbox import policy
from trl_codefeedback.execution.specs import TestSpecError, parse_test_spec

logger = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 30.0
START_TIMEOUT_S = 120.0
LOG_KEEP_BYTES = 1 << 20
_ERRORS = {"TestSpecError": TestSpecError, "UnknownLanguageError": UnknownLanguageError, "TypeError": TypeError, "ValueError": ValueError}


class NodeClient:
    """Runs batches on this node's shared executor service (``Executor(backend="node")`` uses one).

    Args:
        workers, cache_size, isolate, pin_workers: the service's executor, used when this client
            starts it (the first rank's settings win; ``isolate`` is part of the service's
            address, so a different isolation mode never shares a service).
        limits: default :class:`Limits` for :meth:`run`.
        node_id: what identifies the job (default: ``TCF_NODE_ID``, else torchrun / accelerate's
            ``MASTER_ADDR``, ``MASTER_PORT``, ``TORCHELASTIC_RUN_ID``).
        grace_s: a service started here exits after this long without a client
            (default ``TCF_NODE_GRACE_S`` or 30).
        stats: a dict whose ``programs`` / ``cache_hits`` / ``harness_errors`` counts this client adds to.
    """

    def __init__(
        self,
        workers: int | None = None,
        limits: Limits | None = None,
        cache_size: int = 100_000,
        isolate: bool | str = True,
        pin_workers: bool = True,
        node_id: str | None = None,
        grace_s: float | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
        stats: dict | None = None,
    ):
        self.workers = workers
        self.limits = limits or Limits()
        self.cache_size = cache_size
        self.isolate = isolate
        self.pin_workers = pin_workers
        self.node_id = node_id
        self.grace_s = float(os.environ.get("TCF_NODE_GRACE_S", DEFAULT_GRACE_S)) if grace_s is None else grace_s
        self.start_timeout_s = start_timeout_s
        self.stats = stats if stats is not None else {"programs": 0, "cache_hits": 0, "harness_errors": 0}
        self._conn: Connection | None = None
        self._conn_pid = 0
        self._hello: dict = {}
        self._lock = threading.Lock()
        self._req = 0
        self._closed = False

    # ------------------------------------------------------------------ public

    @property
    def paths(self) -> NodePaths:
        return node_paths(self.isolate, self.node_id)

    @property
    def isolation(self) -> dict:
        """What the service's sandbox guarantees (from its first worker's set-up)."""
        with self._lock:
            self._connect()
            return dict(self._hello.get("isolation", {}))

    @property
    def service_pid(self) -> int | None:
        """PID of the service this client is connected to (None before the first run)."""
        return self._hello.get("pid") if self._conn is not None else None

    def run(self, programs: Sequence[Program], limits: Limits | None = None, progress: bool = False, desc: str = "executing") -> list[Feedback]:
        """Execute ``programs`` on the node's service; one :class:`Feedback` each, in order.

        Malformed test specs and unknown languages raise before anything runs, as with a local executor.
        """
        programs = list(programs)
        limits = limits or self.limits
        if self._closed:
            raise RuntimeError("Executor is closed")
        if not programs:
            return []
        msg = {"op": "run", "limits": asdict(limits), "programs": [program_to_dict(p) for p in programs]}
        with self._lock:
            self._req += 1
            msg["req"] = req = self._req
            conn = self._connect()
            try:
                send_msg(conn, msg)
            except (OSError, ValueError):  # the service went away between batches: nothing ran yet, start again
                self._drop()
                conn = self._connect()
                send_msg(conn, msg)
            out: list[Feedback | None] = [None] * len(programs)
            left = len(programs)
            bar = _progress_bar(len(programs), desc) if progress else None
            try:
                while left:
                    try:
                        reply = recv_msg(conn)
                    except (EOFError, OSError) as e:
                        self._drop()
                        why = f"the node executor service died mid-batch ({type(e).__name__}); the next batch starts a new one"
                        for i, p in enumerate(programs):
                            if out[i] is None:
                                out[i] = Feedback.harness_error(why, tests_total=_num_tests(p))
                        break
                    if reply.get("req") != req:
                        continue
                    if reply["op"] == "error":
                        raise _ERRORS.get(reply["type"], RuntimeError)(reply["message"])
                    if reply["op"] == "result" and out[reply["i"]] is None:
                        out[reply["i"]] = Feedback.from_dict(reply["feedback"])
                        left -= 1
                        if bar is not None:
                            bar.update(1)
            finally:
                if bar is not None:
                    bar.close()
        self.stats["programs"] = self.stats.get("programs", 0) + len(programs)
        self.stats["cache_hits"] = self.stats.get("cache_hits", 0) + sum(1 for fb in out if fb is not None and fb.cached)
        for fb in out:
            if fb is not None and fb.status.value == "harness_error":
                self.stats["harness_errors"] = self.stats.get("harness_errors", 0) + 1
                logger.warning("harness error (not the model's fault): %s", fb.error_message)
        return out  # type: ignore[return-value]

    def service_stats(self) -> dict:
        """The service executor's counters (programs, cache_hits, ...) and its number of connected ranks."""
        with self._lock:
            conn = self._connect()
            self._req += 1
            send_msg(conn, {"op": "stats", "req": self._req})
            while True:
                reply = recv_msg(conn)
                if reply["op"] == "stats":
                    return reply

    def close(self) -> None:
        """Leave the service (it keeps running for the other ranks; idempotent)."""
        self._closed = True
        with self._lock:
            if self._conn is not None and self._conn_pid == os.getpid():
                try:
                    send_msg(self._conn, {"op": "bye"})
                except (OSError, ValueError):
                    pass
            self._drop()

    def __enter__(self) -> "NodeClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ connection

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
        self._conn = None

    def _connect(self) -> Connection:
        """The live connection; (re)connects, starting the service when none answers."""
        if self._conn is not None:
            # A forked child must not share its parent's connection; a closed peer reads as ready (EOF).
            if self._conn_pid == os.getpid() and not self._conn.poll(0):
                return self._conn
            if self._conn_pid != os.getpid():
                self._conn = None
            else:
                self._drop()
        paths = self.paths
        conn = self._try_connect(paths) or self._start_service(paths)
        self._conn, self._conn_pid = conn, os.getpid()
        return conn

    def _try_connect(self, paths: NodePaths) -> Connection | None:
        try:
            key = paths.key.read_bytes()
            conn = Client(str(paths.socket), family="AF_UNIX", authkey=key)
        except (OSError, EOFError, AuthenticationError):
            return None
        try:
            send_msg(conn, {"op": "hello", "pid": os.getpid()})
            if not conn.poll(HELLO_TIMEOUT_S):
                raise TimeoutError("no hello")
            hello = recv_msg(conn)
        except (OSError, EOFError, ValueError, TimeoutError):
            conn.close()
            return None
        self._hello = hello
        if self.isolate and isinstance(hello.get("isolation"), dict):
            # As a local executor does in this process: refuse, or (weak) make this rank non-dumpable,
            # since its programs may run as its uid and read /proc/<rank>/environ otherwise.
            try:
                policy.enforce(hello["isolation"], self.isolate)
            except policy.SandboxUnavailableError:
                conn.close()
                raise
        return conn

    def _start_service(self, paths: NodePaths) -> Connection:
        """Under the node's lock file: connect if another rank started the service meanwhile, else start it."""
        fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            conn = self._try_connect(paths)
            if conn is not None:
                return conn
            return self._spawn(paths)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _spawn(self, paths: NodePaths) -> Connection:
        paths.socket.unlink(missing_ok=True)  # a dead service's socket (we hold the lock, nobody answers on it)
        _sweep_stale(paths)
        tmp = paths.key.with_suffix(f".tmp{os.getpid()}")
        kfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(kfd, "wb") as f:
            f.write(secrets.token_bytes(32))
        os.replace(tmp, paths.key)
        if paths.log.exists() and paths.log.stat().st_size > LOG_KEEP_BYTES:
            paths.log.unlink()
        log_fd = os.open(paths.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        log_start = os.fstat(log_fd).st_size
        cmd = [sys.executable, "-m", "trl_codefeedback.execution.node_service", "--socket", str(paths.socket),
               "--key-file", str(paths.key), "--grace-s", str(self.grace_s), "--workers", str(self.workers or 0),
               "--cache-size", str(self.cache_size), "--isolate", {True: "true", False: "false"}.get(self.isolate, "weak")]  # type: ignore[arg-type]
        if not self.pin_workers:
            cmd.append("--no-pin")
        env = dict(os.environ)
        pkg_root = str(Path(__file__).resolve().parents[2])  # the service imports this very copy of the package
        env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            # Own session: the launcher's kill of a rank's process group does not reach the shared service.
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd, cwd="/", env=env,
                                    start_new_session=True, close_fds=True)
        finally:
            os.close(log_fd)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            conn = self._try_connect(paths)
            if conn is not None:
                threading.Thread(target=proc.wait, daemon=True, name="tcf-node-reaper").start()  # no zombie while we live
                logger.info("started the node executor service (pid %d, %s)", proc.pid, paths.socket)
                return conn
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                    what = f"did not answer within {self.start_timeout_s:.0f} s"
                elif proc.returncode == REFUSED_EXIT_CODE:
                    raise policy.SandboxUnavailableError(_tail(paths.log, log_start).strip())
                else:
                    what = f"exited with code {proc.returncode} before it answered"
                raise RuntimeError(f"the node executor service {what}; its log ({paths.log}):\n{_tail(paths.log, log_start)}\n"
                                   "(TCF_EXECUTOR_BACKEND=local gives each process its own pool instead)")
            time.sleep(0.05)


def _tail(path: Path, start: int, chars: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")[-chars:]
    except OSError:
        return ""


def _num_tests(program: Program) -> int:
    try:
        return parse_test_spec(program.tests).num_tests if program.tests is not None else 0
    except Exception:  # noqa: BLE001 - best effort, the batch was validated by the service
        return 0


def _progress_bar(total: int, desc: str):
    from tqdm.auto import tqdm  # noqa: PLC0415

    return tqdm(total=total, desc=desc, unit="prog", dynamic_ncols=True)


STALE_AFTER_S = 24 * 3600.0


def _sweep_stale(paths: NodePaths) -> None:
    """Remove the lock files and logs of services of other, finished jobs (older than a day, no
    socket, lock free): one job leaves two small files behind, a long-lived machine many."""
    now = time.time()
    for lock in paths.dir.glob("node-*.lock"):
        if lock == paths.lock or lock.with_suffix(".sock").exists():
            continue
        try:
            if now - lock.stat().st_mtime < STALE_AFTER_S:
                continue
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody is starting that service now
            lock.with_suffix(".log").unlink(missing_ok=True)
            lock.unlink(missing_ok=True)
        except OSError:
            pass
        finally:
            os.close(fd)
