"""OS isolation for untrusted programs: namespaces, mounts, uid, rlimits, kill and reap (stdlib only).

One module for every language backend: the Python candidate zygote and the Java launcher both
call :func:`setup_isolation` once, and the Python zygote runs each program through
:func:`spawn_sandboxed` / :func:`finish_program`.

The API (kept stable; callers rely on it):

* ``setup_isolation(sandbox_uid, tmp_size_mb) -> dict``: enter private namespaces in the calling
  process (the one that will fork programs); returns what holds (``network``, ``filesystem``,
  ``pid_namespace``, ``setuid``, ``mode``), for honest reporting.
* ``spawn_sandboxed(body, limits, uid, isolation, fds) -> (pid, workdir)``: fork one program
  process: new session (and PID namespace where used), the given fds dup'ed onto 0, 1, 2, 3 and
  every other fd closed, rlimits, dedicated uid, private work dir; then ``body()`` runs in it and
  the process exits.
* ``finish_program(pid, uid, isolation, workdir)``: kill whatever the program left running,
  reap every zombie, remove its files.

Example:
    >>> info = {"network": False, "filesystem": False, "pid_namespace": False, "setuid": False, "mode": "none"}
    >>> sorted(info)  # the keys setup_isolation reports
    ['filesystem', 'mode', 'network', 'pid_namespace', 'setuid']
"""

from __future__ import annotations

import ctypes
import ctypes.util
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



# ----------------------------------------------------------------------------- processes


def wait_or_kill(pid: int, deadline: float) -> int:
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
                kill_tree(pid)
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


def kill_tree(pid: int) -> None:
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




# ----------------------------------------------------------------------------- one program


def _apply_limits(limits: dict, uid: int) -> None:
    """rlimits of one program process (address space, CPU, file size, no core files, processes)."""
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
    if uid <= 0:
        # Without a dedicated uid the limit counts every process of this user: add what exists.
        nproc += _count_user_processes()
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    except (ValueError, OSError):
        pass
    # CPython ignores SIGXFSZ (writes past the size limit then raise OSError EFBIG): restore the
    # default so the kernel ends the program and the verdict is a resource limit.
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)


_job_counter = 0


def spawn_sandboxed(body, limits: dict, uid: int, isolation: dict, fds: tuple[int, ...]) -> tuple[int, str]:
    """Fork one sandboxed program process; ``body()`` runs in it, then it exits.

    ``fds`` are dup'ed onto 0, 1, 2, 3, ... in the child (all other fds are closed). ``uid`` is
    the sandbox uid (<= 0: none). Returns ``(pid, workdir)``; pass both to :func:`finish_program`.
    """
    global _job_counter
    _job_counter += 1
    workdir = f"/tmp/tcf-job-{os.getpid()}-{_job_counter}"
    os.mkdir(workdir, 0o700)
    if uid > 0:
        os.chown(workdir, uid, uid)
    # With a dedicated uid the uid-wide kill in finish_program reaches every process the program
    # started; a PID namespace (1-2 ms per program) is only needed without one.
    use_pidns = isolation.get("pid_namespace") and uid <= 0
    pid = fork_bare()
    if pid != 0:
        return pid, workdir
    status = 70
    try:
        os.setsid()
        if use_pidns and _get_libc().unshare(CLONE_NEWPID) == 0:
            inner = os.fork()
            if inner != 0:
                for fd in fds:
                    os.close(fd)
                _, st = os.waitpid(inner, 0)
                os._exit(_relay_status(st))
        _enter_program(limits, uid, workdir, fds)
        body()
        status = 0
    except BaseException:  # noqa: BLE001 - the body reports its own outcome; this only ends the process
        status = 70
    finally:
        os._exit(status)


def _enter_program(limits: dict, uid: int, workdir: str, fds: tuple[int, ...]) -> None:
    """In the forked child: fds in place, limits, uid, private work dir, scrubbed environment."""
    moved = [os.dup(fd) for fd in fds]  # above every target number first, then onto 0, 1, 2, ...
    for target, fd in enumerate(moved):
        os.dup2(fd, target)
    keep = len(moved)
    os.closerange(keep, 65536)
    _apply_limits(limits, uid)
    if uid > 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.chdir(workdir)
    os.environ.pop("TCF_PRIVATE_TMP", None)
    os.environ["HOME"] = os.environ["TMPDIR"] = workdir
    tempfile.tempdir = workdir


def finish_program(pid: int, uid: int, isolation: dict, workdir: str) -> None:
    """Kill whatever the program left running, reap every zombie, remove its files."""
    _sweep(pid, uid, isolation)
    try:
        os.rmdir(workdir)
    except OSError:
        shutil.rmtree(workdir, ignore_errors=True)
    if os.environ.get("TCF_PRIVATE_TMP") == "1":
        _clean_tmp()


def _sweep(pid: int, uid: int, isolation: dict) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    # We are a child subreaper: once the program's first process is reaped, every process it
    # left behind (double-forked daemons included) is a child of ours. No child at all -> done.
    if not _has_children():
        return
    if uid > 0:
        # Kill everything running as the sandbox uid (reaches processes that left the group).
        p = os.fork()
        if p == 0:
            try:
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(p, 0)
        # SIGKILL is asynchronous: wait until the uid owns nothing, not even a zombie.
        for _ in range(2000):
            _reap_all()
            if not _uid_has_processes(uid):
                break
            time.sleep(0.001)
    elif not isolation.get("pid_namespace"):
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


def become_subreaper_and_die_with_parent() -> None:
    """Orphans of programs are re-parented to this process; it gets SIGKILL when its parent dies."""
    libc = _get_libc()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
