"""One executor per node: a service process that all training ranks of a node share.

With ``Executor(backend="node")`` (and by default when ``LOCAL_WORLD_SIZE > 1``, see
:func:`~trl_codefeedback.execution.executor.get_default_executor`), a rank does not start its own
pool of sandboxed workers. The first rank that needs one starts this service (under an ``fcntl``
lock, so exactly one does); it holds ONE :class:`~trl_codefeedback.execution.Executor` with one
worker per usable core and its result cache, and every rank of the node is a client
(:class:`~trl_codefeedback.execution.node_client.NodeClient`). So 8 ranks run 8x fewer workers,
no more programs run at once than there are cores (the executor's job queue is the admission
control), and a program that two ranks generated is run once (in flight or from the cache).

Channel: a unix socket through stdlib :mod:`multiprocessing.connection` (``Listener`` / ``Client``,
HMAC challenge-response with a 32-byte authkey kept in a 0600 file inside a 0700 per-user
directory): a small, well-kept stdlib channel. Messages are JSON bytes (``send_bytes`` /
``recv_bytes``), never pickles, so even an authenticated peer cannot make the service unpickle.

Where (:func:`node_paths`): ``$XDG_RUNTIME_DIR/tcf-<uid>/`` (else ``/tmp/tcf-<uid>/``), files named
after a hash of the training job (``TCF_NODE_ID``, else ``MASTER_ADDR``, ``MASTER_PORT`` and
``TORCHELASTIC_RUN_ID`` as set by torchrun / accelerate), the interpreter, this package's location
and the isolation mode: ranks of one job meet, different jobs, users, venvs or isolation modes do not.

Lifecycle: the service outlives the rank that started it (own session, not a child the launcher
kills); it exits once no client has been connected for ``--grace-s`` seconds (the end of training;
``TCF_NODE_GRACE_S``, default 30), on SIGTERM / SIGINT, or when its socket file is taken away.
Failures: a rank killed mid-batch costs the other ranks nothing (its queued programs are dropped
unless another rank waits for the same program); a killed service turns the clients' in-flight
programs into ``harness_error`` and the next batch starts a new service (see node_client.py).

Run by the client as ``python -m trl_codefeedback.execution.node_service --socket ... --key-file ...``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import logging
import os
import signal
import stat
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection, Listener, answer_challenge, deliver_challenge
from pathlib import Path

from trl_codefeedback.execution.feedback import Feedback
from trl_codefeedback.execution.program import LANGUAGES, Limits, Program

logger = logging.getLogger(__name__)

DEFAULT_GRACE_S = 30.0
REFUSED_EXIT_CODE = 3  # the host cannot sandbox (SandboxUnavailableError): a set-up error, not a crash
HANDSHAKE_TIMEOUT_S = 10.0
PROTOCOL = 1


# ---------------------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class NodePaths:
    """The files through which the ranks of one job find and start their node's service."""

    dir: Path
    socket: Path  # the service listens here
    key: Path  # authkey, 0600
    lock: Path  # fcntl lock: whoever holds it may start the service
    log: Path  # the service's stderr


def job_id() -> str:
    """What identifies the training job on this node (ranks of one job agree on it)."""
    explicit = os.environ.get("TCF_NODE_ID")
    if explicit:
        return explicit
    parts = [os.environ.get(k, "") for k in ("MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")]
    return "|".join(parts) if any(parts) else "default"


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR/tcf-<uid>`` (else ``/tmp/tcf-<uid>``), created 0700; refused if it is not ours."""
    uid = os.getuid()
    base = os.environ.get("XDG_RUNTIME_DIR")
    if not base or not os.path.isdir(base) or not os.access(base, os.W_OK | os.X_OK):
        base = tempfile.gettempdir()
    path = Path(base) / f"tcf-{uid}"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
        raise RuntimeError(f"{path} is not a directory owned by uid {uid}: refusing to put the node executor's socket there")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def node_paths(isolate: bool | str = True, node_id: str | None = None) -> NodePaths:
    """Where the service of this job (and isolation mode) lives; see the module docstring."""
    ident = json.dumps([node_id or job_id(), str(isolate), sys.executable, str(Path(__file__).resolve().parent)])
    name = "node-" + hashlib.sha256(ident.encode()).hexdigest()[:16]
    d = runtime_dir()
    return NodePaths(d, d / f"{name}.sock", d / f"{name}.key", d / f"{name}.lock", d / f"{name}.log")


# ---------------------------------------------------------------------------------------- messages


def send_msg(conn: Connection, msg: dict) -> None:
    conn.send_bytes(json.dumps(msg).encode())


def recv_msg(conn: Connection) -> dict:
    return json.loads(conn.recv_bytes())


def program_to_dict(p: Program) -> dict:
    """What the service needs of a program (``extra`` is the caller's bookkeeping and stays home)."""
    return {"code": p.code, "tests": p.tests, "language": p.language, "truncated": p.truncated, "coverage": p.coverage}


# ---------------------------------------------------------------------------------------- service


class _Client:
    """One connected rank: its send lock, and the programs it still waits for."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.lock = threading.Lock()
        self.alive = True
        self.pending: dict[str, int] = {}  # program key -> how many of its results this client still waits for

    def send(self, msg: dict) -> None:
        with self.lock:
            if not self.alive:
                return
            try:
                send_msg(self.conn, msg)
            except (OSError, ValueError):
                self.alive = False  # the rank went away; its reader thread cleans up


class NodeService:
    """Accepts ranks on a unix socket and runs their batches on one shared executor.

    Each program becomes one job of a thread pool (one per language) that calls ``executor.run([program])``; results
    go back to the rank one by one as they finish (so a rank's progress bar moves, and a service
    killed mid-batch leaves the rank with exactly its unfinished programs). A program already in
    flight for another rank is not started twice.
    """

    def __init__(self, socket_path: str, authkey: bytes, executor, grace_s: float = DEFAULT_GRACE_S):
        self.socket_path = socket_path
        self.authkey = authkey
        self.executor = executor
        self.grace_s = grace_s
        # Per language, one thread more than workers: the executor's queue never runs dry, and few programs sit in
        # it (where a rank that goes away can no longer take them back).
        self.pools = {lang: cf.ThreadPoolExecutor(executor.num_workers + 1, thread_name_prefix=f"tcf-node-{lang}") for lang in LANGUAGES}
        self._lock = threading.RLock()
        self._inflight: dict[str, tuple[cf.Future, list[int]]] = {}  # key -> (future, [clients waiting])
        self._connections = 0
        self._idle_since = time.monotonic()
        self._closing = False
        self._stop = threading.Event()
        self._java_lock = threading.Lock()
        self._java_ready = False
        self.listener = Listener(socket_path, family="AF_UNIX", backlog=64)  # authenticated per connection, in its thread
        self._inode = os.stat(socket_path).st_ino

    # -- lifecycle
    def serve_forever(self) -> None:
        threading.Thread(target=self._accept_loop, daemon=True, name="tcf-node-accept").start()
        logger.info("node executor service %d: listening on %s (%d workers, grace %.1f s)", os.getpid(), self.socket_path,
                    self.executor.num_workers, self.grace_s)
        while not self._stop.wait(0.2):
            with self._lock:
                idle = self._connections == 0 and time.monotonic() - self._idle_since > self.grace_s
                if idle or not self._socket_is_ours():
                    self._closing = True
                    self.listener.close()  # unlinks the socket: from here on a rank starts a new service
                    break
        logger.info("node executor service %d: exiting", os.getpid())

    def stop(self, *_args) -> None:
        self._stop.set()

    def _socket_is_ours(self) -> bool:
        try:
            return os.stat(self.socket_path).st_ino == self._inode
        except OSError:
            return False

    def _accept_loop(self) -> None:
        while True:
            try:
                conn = self.listener.accept()
            except OSError:
                if self._closing:
                    return
                continue
            with self._lock:
                if self._closing:
                    conn.close()
                    return
                self._connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="tcf-node-client").start()

    # -- one rank
    def _serve(self, conn: Connection) -> None:
        client = _Client(conn)
        try:
            deliver_challenge(conn, self.authkey)
            answer_challenge(conn, self.authkey)
            while True:
                msg = recv_msg(conn)
                op = msg.get("op")
                if op == "hello":
                    client.send({"op": "hello", "protocol": PROTOCOL, "pid": os.getpid(), "workers": self.executor.num_workers,
                                 "isolation": self.executor.isolation})
                elif op == "run":
                    self._submit(client, msg)
                elif op == "stats":
                    client.send({"op": "stats", "stats": dict(self.executor.stats), "connections": self._connections})
                elif op == "bye":
                    break
        except Exception as e:  # noqa: BLE001 - a rank that goes away (or fails to authenticate) ends its thread only
            if not isinstance(e, (EOFError, OSError)):
                logger.warning("node executor service: dropping a client: %s: %s", type(e).__name__, e)
        finally:
            with self._lock:  # first, whatever fails below: a leftover count would keep the service alive forever
                self._connections -= 1
                if self._connections == 0:
                    self._idle_since = time.monotonic()
            with client.lock:
                client.alive = False
            conn.close()
            self._forget(client)

    def _submit(self, client: _Client, msg: dict) -> None:
        req = msg["req"]
        try:
            limits = Limits(**msg["limits"])
            programs = [Program(**p) for p in msg["programs"]]
            for i, p in enumerate(programs):  # the same checks (and messages) as a local run, before anything runs
                self.executor._prepare(i, p, limits)
        except Exception as e:  # noqa: BLE001 - the caller's error: raised on its side
            client.send({"op": "error", "req": req, "type": type(e).__name__, "message": str(e)})
            return
        limits_d = asdict(limits)
        for i, (p, pd) in enumerate(zip(programs, msg["programs"])):
            key = hashlib.sha256(json.dumps([pd, limits_d], sort_keys=True).encode()).hexdigest()
            with self._lock:
                entry = self._inflight.get(key)
                if entry is None:
                    fut = self.pools[p.language].submit(self._run_one, p, limits)
                    entry = self._inflight[key] = (fut, [])
                    fut.add_done_callback(lambda f, k=key: self._done(k, f))
                entry[1].append(id(client))
                client.pending[key] = client.pending.get(key, 0) + 1
            entry[0].add_done_callback(lambda f, i=i, k=key: self._reply(client, req, i, k, f))

    def _run_one(self, program: Program, limits: Limits) -> Feedback:
        if program.language == "java" and not self._java_ready:
            with self._java_lock:  # the executor starts its Java backend on first use: once, not per thread
                fb = self.executor.run([program], limits=limits)[0]
                self._java_ready = True
                return fb
        return self.executor.run([program], limits=limits)[0]

    def _done(self, key: str, fut: cf.Future) -> None:
        with self._lock:
            entry = self._inflight.get(key)
            if entry is not None and entry[0] is fut:
                del self._inflight[key]

    def _reply(self, client: _Client, req: int, index: int, key: str, fut: cf.Future) -> None:
        with self._lock:
            n = client.pending.get(key, 0)
            if n <= 1:
                client.pending.pop(key, None)
            else:
                client.pending[key] = n - 1
        try:
            fb = fut.result()
        except BaseException as e:  # noqa: BLE001 - cancelled or crashed: our fault, never the model's
            fb = Feedback.harness_error(f"node executor service: {type(e).__name__}: {e}")
        client.send({"op": "result", "req": req, "i": index, "feedback": fb.to_dict()})

    def _forget(self, client: _Client) -> None:
        """A rank went away: drop its programs that no other rank waits for and that have not started."""
        with self._lock:
            for key in list(client.pending):
                entry = self._inflight.get(key)
                if entry is None:
                    continue
                waiting = [c for c in entry[1] if c != id(client)]
                entry[1][:] = waiting
                if not waiting and entry[0].cancel():  # (its done-callback already dropped the entry)
                    self._inflight.pop(key, None)
            client.pending.clear()

    def close(self) -> None:
        for pool in self.pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        self.executor.close()


def _isolate_arg(s: str) -> bool | str:
    return {"true": True, "false": False, "weak": "weak"}[s]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="trl-codefeedback node executor service (started by the ranks; see module docstring)")
    ap.add_argument("--socket", required=True)
    ap.add_argument("--key-file", required=True)
    ap.add_argument("--grace-s", type=float, default=DEFAULT_GRACE_S)
    ap.add_argument("--workers", type=int, default=0, help="0: one per usable core")
    ap.add_argument("--cache-size", type=int, default=100_000)
    ap.add_argument("--isolate", type=_isolate_arg, default=True, help="true, false or weak")
    ap.add_argument("--no-pin", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s tcf-node[%(process)d] %(levelname)s %(message)s")
    from trl_codefeedback.execution.executor import Executor  # noqa: PLC0415
    from trl_codefeedback.execution.sandbox.policy import SandboxUnavailableError  # noqa: PLC0415

    authkey = Path(args.key_file).read_bytes()
    executor = Executor(workers=args.workers or None, cache_size=args.cache_size, isolate=args.isolate, pin_workers=not args.no_pin)
    # Start the pool here, in the main thread: workers die with the thread that started them (PR_SET_PDEATHSIG),
    # and a host that cannot sandbox fails now, with the reason in the log the ranks show.
    try:
        executor.isolation
    except SandboxUnavailableError as e:
        sys.stderr.write(f"{e}\n")
        sys.stderr.flush()
        os._exit(REFUSED_EXIT_CODE)  # the ranks raise SandboxUnavailableError with this message
    service = NodeService(args.socket, authkey, executor, grace_s=args.grace_s)
    signal.signal(signal.SIGTERM, service.stop)
    signal.signal(signal.SIGINT, service.stop)
    try:
        service.serve_forever()
    finally:
        if not service._closing:
            service.listener.close()
        service.close()
        try:
            if Path(args.key_file).read_bytes() == authkey:  # not a newer service's key
                Path(args.key_file).unlink()
        except OSError:
            pass
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
