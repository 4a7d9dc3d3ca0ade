"""The candidate zygote: a warm process that forks one sandboxed process per program.

It is forked by the trusted worker at start-up, before the worker has seen any test, and it
never receives a test, an expected value or a program's code (the program process reads its
code from its own channel). So nothing a program can read in its memory, inherited from the
zygote, says what the tests expect.

Control protocol on a ``SOCK_SEQPACKET`` socket with the trusted worker, one JSON message each:

* worker -> zygote: ``{"op": "spawn", "limits": {...}}`` with 4 fds attached (SCM_RIGHTS):
  stdin, stdout, stderr and the channel end for the program process;
* worker -> zygote: ``{"op": "cpu"}`` while the program runs: the zygote answers ``{"cpu": seconds}``,
  the CPU time all the program's processes used so far (:mod:`cputime`);
* zygote -> worker: ``{"exited": wait_status, "oom": bool, "disk": bool, "cpu": seconds}`` once the
  program's first process ended (by itself, or after ``{"op": "kill"}``) and everything it started
  was killed and reaped; ``oom``: the cgroup's memory limit killed one of its processes; ``disk``:
  it wrote more files than the scratch folder's quota (Landlock mode); ``cpu``: the CPU time of all
  its processes.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket

try:
    from . import candidate, isolation
except ImportError:  # run as part of the worker script
    import candidate
    import isolation

MAX_MESSAGE = 1 << 16
QUOTA_POLL_S = 0.05  # how often the scratch folder's size is read while a program runs (Landlock mode)


def _send(sock: socket.socket, obj: dict) -> None:
    sock.send(json.dumps(obj).encode())


def _wait_program(sock: socket.socket, pid: int, cpu_base: tuple, over_quota=None) -> tuple[int, bool]:
    """Wait until the program's first process exits, or the worker says kill; returns the wait status
    and whether ``over_quota()`` (checked every :data:`QUOTA_POLL_S`) had the program stopped.

    Answers the worker's CPU-time questions meanwhile (``cpu_base``: :func:`isolation.program_cpu_base`
    when the program was spawned).
    """
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    timeout = 0.001 if pidfd is None else (QUOTA_POLL_S if over_quota is not None else None)
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status, False
            if over_quota is not None and over_quota():
                isolation.kill_tree(pid)
                return os.waitpid(pid, 0)[1], True
            watch = [sock] + ([pidfd] if pidfd is not None else [])
            ready, _, _ = select.select(watch, [], [], timeout)
            if sock in ready:
                data = sock.recv(MAX_MESSAGE)
                op = json.loads(data).get("op") if data else "kill"
                if op == "kill":
                    isolation.kill_tree(pid)
                    return os.waitpid(pid, 0)[1], False
                if op == "cpu":
                    _send(sock, {"cpu": isolation.program_cpu_used(cpu_base)})
    finally:
        if pidfd is not None:
            os.close(pidfd)


def serve(sock: socket.socket, uid: int, info: dict) -> None:
    """Zygote loop: one program at a time, until the worker closes the socket."""
    over_quota = isolation.scratch_check()  # Landlock mode's scratch-folder check, else None
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 8)
        except OSError:
            return
        if not data:
            return
        msg = json.loads(data)
        if msg.get("op") != "spawn" or len(fds) != 4:
            for fd in fds:
                os.close(fd)
            continue
        cpu_base = isolation.program_cpu_base()
        try:
            pid, workdir = isolation.spawn_sandboxed(candidate.serve, msg["limits"], uid, info, tuple(fds))
        finally:
            for fd in fds:
                os.close(fd)
        status, over_disk = _wait_program(sock, pid, cpu_base, over_quota)
        # (over_disk is checked again after the end: files written just before it count too)
        facts = isolation.finish_program(pid, uid, info, workdir) or {}  # everything killed and reaped
        _send(sock, {"exited": status, "oom": bool(facts.get("oom")), "disk": over_disk or bool(facts.get("disk")),
                     "cpu": isolation.program_cpu_used(cpu_base, live=False)})


def start_zygote(uid: int, isolate: bool, tmp_mb: int) -> tuple[socket.socket, int, dict]:
    """Fork the zygote from the (still test-free) worker. Returns (control socket, pid, isolation facts)."""
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        parent_end.close()
        code = 0
        try:
            # Nothing of the worker's but the control socket: not the executor's protocol pipes.
            keep = child_end.fileno()
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.closerange(3, keep)
            os.closerange(keep + 1, 65536)
            isolation.become_subreaper_and_die_with_parent()
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # programs inherit it: over the file size limit is a resource_limit
            if isolate:
                info = isolation.setup_isolation(uid, tmp_mb, landlock_fallback=True)
            else:
                info = {"network": False, "filesystem": False, "pid_namespace": False, "setuid": False, "mode": "disabled"}
            candidate.warm_up()
            gc.collect()
            gc.freeze()  # keep the collector in forked programs off the zygote's pages (fewer copy-on-write faults)
            _send(child_end, {"ready": True, "isolation": info})
            serve(child_end, uid if info.get("setuid") else -1, info)
        except BaseException:  # noqa: BLE001
            code = 70
        finally:
            os._exit(code)
    child_end.close()
    data = parent_end.recv(MAX_MESSAGE)
    if not data:
        raise RuntimeError("the candidate zygote died while starting")
    return parent_end, pid, json.loads(data)["isolation"]


def stop_zygote(sock: socket.socket, pid: int) -> None:
    sock.close()
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass
