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
* ``finish_program(pid, uid, isolation, workdir) -> {"oom": bool}``: kill whatever the program
  left running, reap every zombie, remove its files, say whether its cgroup's OOM killer fired.

Example (in a process that forks programs; root or a user namespace needed)::

    info = setup_isolation(sandbox_uid, 512)
    pid, workdir = spawn_sandboxed(run_the_program, limits, sandbox_uid, info, (stdin, out, out, channel))
    os.waitpid(pid, 0)
    facts = finish_program(pid, sandbox_uid, info, workdir)   # {"oom": False}
"""

from __future__ import annotations

import ctypes
import math
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time

try:
    from . import cgroups, cputime, datafiles, fsview, landlock, oscalls, scratch, seccomp
except ImportError:  # run as a script with the sandbox folder on sys.path
    import cgroups
    import cputime
    import datafiles
    import fsview
    import landlock
    import oscalls
    import scratch
    import seccomp

CLONE_NEWPID = oscalls.CLONE_NEWPID
PR_SET_CHILD_SUBREAPER = oscalls.PR_SET_CHILD_SUBREAPER
PR_SET_PDEATHSIG = oscalls.PR_SET_PDEATHSIG
NS_FLAGS = oscalls.CLONE_NEWNS | oscalls.CLONE_NEWNET | oscalls.CLONE_NEWIPC

_get_libc = oscalls.libc
# What setup_isolation made for this process (fds, the view): not JSON, so kept out of the info dict.
_STATE: dict = {"view": None, "cgroup": None}
_PROGRAM_CGROUPS: dict[int, dict] = {}


# ----------------------------------------------------------------------------- isolation


def _enter_user_namespace() -> None:
    """Become root of a new user namespace (only our own uid is mapped, onto 0)."""
    uid, gid = os.getuid(), os.getgid()
    # A non-dumpable process cannot write its own uid_map (its /proc files belong to root); no
    # program runs yet, and setup_isolation makes the process non-dumpable again at its end.
    oscalls.prctl(oscalls.PR_SET_DUMPABLE, 1)
    oscalls.unshare(oscalls.CLONE_NEWUSER)
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def _enter_namespaces(info: dict) -> bool:
    """Private network + mount + IPC namespaces: directly as root, else inside a user namespace."""
    if os.geteuid() == 0:
        try:
            oscalls.unshare(NS_FLAGS)
            info["mode"] = "root"
            return True
        except OSError as e:
            info["errors"].append(f"namespaces as root: {e} (no CAP_SYS_ADMIN?)")
    try:
        _enter_user_namespace()
        info["mode"] = "user_namespace"
        oscalls.unshare(NS_FLAGS)
        return True
    except OSError as e:
        info["errors"].append(f"user namespace: {e} (user.max_user_namespaces=0 or blocked by seccomp/AppArmor?)")
        return False


def setup_isolation(sandbox_uid: int, tmp_size_mb: int, *, ro_paths=(), use_cgroups: bool = True,
                    landlock_fallback: bool = False) -> dict:
    """Enter private namespaces and the minimal file-system view; find per-program cgroups.

    ``ro_paths``: extra host paths programs need read-only (e.g. a JDK). ``landlock_fallback``:
    where no namespace can be made, confine each program with Landlock instead (:func:`_setup_landlock`;
    only for callers that fork programs through :func:`spawn_sandboxed`). Returns a JSON-ready dict
    saying what holds, for the executor to enforce its policy and report honestly.
    """
    info = {"network": False, "filesystem": False, "pid_namespace": False, "setuid": False, "mode": "none",
            "cgroup": None, "no_fork": False, "proc_hidden": False, "syscall_filter": False, "errors": []}
    cg = cgroups.setup() if use_cgroups else {"error": "disabled"}  # before the view hides /sys
    real_root = os.geteuid() == 0
    if _enter_namespaces(info):
        info["network"] = True
        # Without a dedicated uid, programs are the trainer's uid (namespace root mapped onto it):
        # owner bits would open its private files in the view (everywhere when that is root), so
        # they are covered.
        info["setuid"] = info["mode"] == "root" and sandbox_uid > 0 and _can_setuid(sandbox_uid)
        try:
            _STATE["view"] = fsview.build(ro_paths, tmp_size_mb, hide_private=not info["setuid"], private_everywhere=real_root)
            info["filesystem"] = info["proc_hidden"] = True
            info["exposed"] = _STATE["view"]["exposed"]
        except OSError as e:
            info["errors"].append(f"file-system view: {e}")
    elif landlock_fallback:
        _setup_landlock(info, sandbox_uid, ro_paths, tmp_size_mb, has_cgroup="dirs" in cg)
    info["pid_namespace"] = _probe_pid_namespace()
    if "dirs" in cg:
        _STATE["cgroup"] = cg
        info["cgroup"] = f"v{cg['version']}"
        if "cpu_dir" not in cg:
            info["errors"].append("cgroup: no CPU accounting (v1 cpuacct hierarchy missing)")
    else:
        if use_cgroups:
            info["errors"].append(f"cgroup: {cg['error']}")
    # Processes only where a cgroup bounds the whole tree and counts its CPU time (a child the kernel
    # reaps by itself, its parent ignoring SIGCHLD, leaves its time nowhere else).
    # In Landlock mode too: each process may hold files unlinked while open or mapped (space no
    # listing of the scratch folder sees), at most RLIMIT_AS + MAX_OPEN_FILES x RLIMIT_FSIZE of them.
    info["no_fork"] = ("cpu_dir" not in cg or info["mode"] == "landlock") and seccomp.supported()
    # CPython ignores SIGXFSZ (writes past the size limit then raise OSError EFBIG): restore the
    # default (inherited by every program) so the kernel ends the program and the verdict is a
    # resource limit.
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    if info["filesystem"]:
        home = info["scratch"] if info["mode"] == "landlock" else VIEW_WORKDIR
        os.environ["HOME"] = os.environ["TMPDIR"] = home
        tempfile.tempdir = home
    oscalls.resolve_functions()  # ctypes looks libc functions up lazily: once here, not in every program
    if info["mode"] != "none":
        try:
            # Once here rather than in every program (about 40 prctl calls each): the bounding set
            # only limits what an exec may gain, so this process keeps the capabilities it uses.
            oscalls.drop_bounding_set()
            _STATE["bounding_dropped"] = True
        except OSError:
            pass
    try:
        oscalls.set_non_dumpable()  # programs of the same uid cannot read this process's memory
    except OSError:
        pass
    try:
        seccomp.deny_escapes()  # keyrings, socket families no namespace covers: for every program
        seccomp.prepare_program_filters()
        info["syscall_filter"] = True
    except OSError as e:
        info["syscall_filter"] = False
        info["errors"].append(f"seccomp: {e}")
    return info


def _setup_landlock(info: dict, sandbox_uid: int, ro_paths, tmp_size_mb: int, has_cgroup: bool) -> None:
    """No namespace could be made: prepare a Landlock rule set for the programs (see :mod:`landlock`).

    Programs may then read the system folders, the interpreter's folders (benchmark data left out)
    and ``ro_paths``, write only a private scratch folder (emptied after each program, its size
    watched, :mod:`scratch`), and open no socket (``seccomp.deny_namespaces(shared_host=True)``).
    Programs run as the sandbox uid where this process is root and that uid can read the
    interpreter's folders (not so for a pyenv under ``/root``); else as this process's uid, without
    capabilities. Signals: Landlock ABI 6 keeps them inside the program's domain; on older kernels
    only a dedicated uid does, so without one there is no Landlock mode. Nor for uid-0 programs
    without a cgroup: the kernel does not apply RLIMIT_NPROC to uid 0, so nothing would bound
    their threads.
    """
    version = landlock.abi()
    exposed = fsview._minimal(list(fsview.interpreter_paths()) + list(ro_paths))
    dedicated_uid = os.geteuid() == 0 and sandbox_uid > 0 and _can_setuid(sandbox_uid, readable=exposed)
    if version < landlock.MIN_ABI:
        info["errors"].append(f"landlock: ABI {version} (need {landlock.MIN_ABI}+, Linux 6.2+, with landlock in the lsm= list)")
        return
    if version < 6 and not dedicated_uid:
        info["errors"].append(f"landlock: ABI {version} cannot keep programs of your uid from signalling the trainer (need 6+, Linux 6.12+)")
        return
    if not seccomp.supported():
        info["errors"].append(f"landlock: no seccomp filter for {os.uname().machine}")
        return
    if os.geteuid() == 0 and not dedicated_uid and not has_cgroup:
        info["errors"].append(
            f"landlock: programs would run as root (the sandbox uid cannot read {', '.join(exposed)}) and without a cgroup "
            "nothing bounds their threads: install Python where every user can read it (e.g. /usr/local, /opt), "
            "or give the container a writable cgroup")
        return
    folder = None
    try:
        folder = scratch.create(sandbox_uid if dedicated_uid else -1)
        system = [p for p in fsview.SYSTEM if os.path.isdir(p) and not os.path.islink(p)]
        etc = [os.path.join("/etc", e) for e in fsview.ETC if os.path.exists(os.path.join("/etc", e))]
        hidden = list(datafiles.from_env_or_find(tuple(fsview.data_search_roots())))
        if not dedicated_uid:
            # Programs run as this uid (as root: without capabilities): owner bits would give them its
            # private files in the allowed folders (root: TLS keys under /etc/ssl/private; a user: a
            # venv's pip.conf). Only what any user may read is granted, as for a dedicated uid.
            # (As root ~1 s: walks /usr once per worker.)
            hidden += datafiles.private_files(system + etc + exposed if os.geteuid() == 0 else exposed)
        devices = [f"/dev/{d}" for d in fsview.DEV if os.path.exists(f"/dev/{d}")]
        _STATE["landlock"] = landlock.build(read=system + etc + exposed, write=[folder], devices=devices,
                                            exclude=hidden, version=version)
    except OSError as e:
        info["errors"].append(f"landlock: {e}")
        scratch.remove(folder)
        return
    _STATE["scratch"] = {"path": folder, "quota_bytes": tmp_size_mb << 20}
    info.update(mode="landlock", network=True, filesystem=True, proc_hidden=True, processes_contained=True,
                setuid=dedicated_uid, landlock_abi=version, scratch=folder, exposed=exposed)


def _probe_pid_namespace() -> bool:
    """A child that unshares a PID namespace and forks its init."""
    pid = os.fork()
    if pid == 0:
        ok = _get_libc().unshare(CLONE_NEWPID) == 0
        if ok:
            p2 = os.fork()
            if p2 == 0:
                os._exit(0 if os.getpid() == 1 else 1)
            _, st = os.waitpid(p2, 0)
            ok = os.waitstatus_to_exitcode(st) == 0
        os._exit(0 if ok else 1)
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st) == 0


def _can_setuid(uid: int, readable=()) -> bool:
    """Probe in a child: a container may map only a small uid range; the uid must be able to list
    the ``readable`` folders (where no view re-mounts them)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            for path in readable:
                os.listdir(path)
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st) == 0


# ----------------------------------------------------------------------------- processes


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


def _wait_for(pid: int) -> int:
    """Reap children (init reaps orphans too) until ``pid`` ends; its status as an exit code."""
    while True:
        try:
            done, st = os.waitpid(-1, 0)
        except ChildProcessError:
            return 70
        if done == pid:
            return _relay_status(st)


def _die_by_signal(sig: int) -> None:
    """End this (waiter) process by ``sig`` with its default action, without a core file."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)


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


def _count_user_tasks() -> int:
    """Threads of every process of this uid (what RLIMIT_NPROC counts)."""
    uid = os.getuid()
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{name}/task"))
            except OSError:
                pass
    return n


# ----------------------------------------------------------------------------- one program


def _apply_limits(limits: dict, uid: int) -> None:
    """rlimits of one program process (address space, CPU, file size, no core files, processes)."""
    mem = int(limits["memory_mb"]) * 1024 * 1024
    cpu = int(math.ceil(limits["program_timeout_s"])) + 1
    for res, soft, hard in (
        (resource.RLIMIT_AS, mem, mem),
        # SIGXCPU at the soft limit (a timeout); SIGKILL a second later if the program catches it.
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, 16 * 1024 * 1024, 16 * 1024 * 1024),
        (resource.RLIMIT_CORE, 0, 0),
    ):
        try:
            resource.setrlimit(res, (soft, hard))
        except (ValueError, OSError):
            pass
    nproc = int(limits["max_processes"])
    if uid <= 0:
        # Without a dedicated uid the limit counts every thread of this user: add what exists.
        nproc += _count_user_tasks()
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    except (ValueError, OSError):
        pass


_job_counter = 0
VIEW_WORKDIR = "/tmp/program"
MAX_OPEN_FILES = 64  # in Landlock mode and without a cgroup (see _enter_program)


def spawn_sandboxed(body, limits: dict, uid: int, isolation: dict, fds: tuple[int, ...]) -> tuple[int, str]:
    """Fork one sandboxed program process; ``body()`` runs in it, then it exits.

    ``fds`` are dup'ed onto 0, 1, 2, 3, ... in the child (all other fds are closed). ``uid`` is
    the sandbox uid (<= 0: none). Returns ``(pid, workdir)``; pass both to :func:`finish_program`.
    With the file-system view the work dir lives in the program's own /tmp (gone with it).
    """
    global _job_counter
    _job_counter += 1
    view = _STATE["view"] if isolation.get("filesystem") else None
    ruleset = _STATE.get("landlock") if isolation.get("mode") == "landlock" else None
    # With the view every program has its own fresh /tmp, so one fixed work dir (and HOME / TMPDIR
    # set once in this process, see setup_isolation) serves all: no environment writes per program.
    # With Landlock, the scratch folder (the only one programs may write; emptied after each).
    if ruleset is not None:
        workdir = _STATE["scratch"]["path"]
    else:
        workdir = VIEW_WORKDIR if view is not None else f"/tmp/tcf-job-{os.getpid()}-{_job_counter}"
    if view is None and ruleset is None:
        os.mkdir(workdir, 0o700)
        if uid > 0:
            os.chown(workdir, uid, uid)
    cg = None
    if _STATE["cgroup"] is not None:
        cg = cgroups.create(_STATE["cgroup"], limits["memory_mb"], limits["max_processes"])
    no_fork = bool(isolation.get("no_fork"))
    # With a dedicated uid the uid-wide kill in finish_program reaches every process the program
    # started; a PID namespace (1-2 ms per program) is only needed without one.
    use_pidns = isolation.get("pid_namespace") and uid <= 0
    pid = fork_bare()
    if pid != 0:
        if cg is not None:
            cgroups.close_fds(cg)
            _PROGRAM_CGROUPS[pid] = cg
        return pid, workdir
    status = 70
    try:
        os.setsid()
        if cg is not None:
            cgroups.join(cg)  # before anything can fork: the whole tree is in the cgroup
        if use_pidns and _get_libc().unshare(CLONE_NEWPID) == 0:
            # Two waiters: this process (outside) and the namespace's init. The program is not
            # init itself: init ignores the kernel's SIGXFSZ / SIGXCPU, and when init exits the
            # kernel kills everything the program started.
            for level in range(2):
                inner = os.fork()
                if inner != 0:
                    for fd in set(fds):  # the same fd may be passed twice (e.g. /dev/null)
                        os.close(fd)
                    code = _wait_for(inner)
                    if level == 0 and code > 128:
                        _die_by_signal(code - 128)  # the caller sees the program's signal, not a code
                    os._exit(code)
        _enter_program(limits, uid, workdir, fds, view, isolation.get("mode", "none"), no_fork, ruleset)
        body()
        status = 0
    except BaseException:  # noqa: BLE001 - the body reports its own outcome; this only ends the process
        status = 70
    finally:
        os._exit(status)


def _enter_program(limits: dict, uid: int, workdir: str, fds: tuple[int, ...], view, mode: str, no_fork: bool,
                   ruleset: int | None = None) -> None:
    """In the forked child: fds in place, limits, private view (or Landlock domain), no capabilities,
    uid, work dir, environment."""
    moved = [os.dup(fd) for fd in fds]  # above every target number first, then onto 0, 1, 2, ...
    for target, fd in enumerate(moved):
        os.dup2(fd, target)
    keep = len(moved)
    if ruleset is None:
        os.closerange(keep, 65536)
    else:  # the rule set's fd sits above every fd moved here (landlock.HIGH_FD)
        os.closerange(keep, ruleset)
        os.closerange(ruleset + 1, 65536)
    _apply_limits(limits, uid)  # counts processes in /proc: before the view hides it
    if ruleset is not None:
        landlock.restrict(ruleset)
        os.close(ruleset)
    if ruleset is not None or no_fork:
        # Without a cgroup, each open fd may pin kernel memory RLIMIT_AS does not count (socket
        # buffers); in Landlock mode a file unlinked while open takes disk space no listing of the
        # scratch folder sees (each within RLIMIT_FSIZE). Gone when the program ends.
        resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_OPEN_FILES, MAX_OPEN_FILES))
    if view is not None:
        fsview.enter_program_view(view)
        os.mkdir(workdir, 0o700)
        if uid > 0:
            os.chown(workdir, uid, uid)
    if mode != "none" and not _STATE.get("bounding_dropped"):
        oscalls.drop_bounding_set()
    if uid > 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    if mode != "none":
        oscalls.clear_capabilities()  # (namespace) root keeps none: it cannot remount the view
    if seccomp.supported():
        # Inside its own view now: no new namespaces from here on (and, without a cgroup, no processes).
        seccomp.deny_namespaces(processes=no_fork, shared_host=ruleset is not None)
    os.chdir(workdir)
    if view is None and ruleset is None:
        os.environ["HOME"] = os.environ["TMPDIR"] = workdir
        tempfile.tempdir = workdir


def scratch_check():
    """In Landlock mode, a function that says whether the running program's files are over the
    scratch quota (for the zygote to call while it waits); else None."""
    folder = _STATE.get("scratch")
    if folder is None:
        return None
    return lambda: scratch.over_quota(folder["path"], folder["quota_bytes"])


def program_cpu_s() -> float:
    """CPU seconds used so far by the live (and not yet reaped) processes of the running program.

    With a cgroup, its member list names them (a few files to read); otherwise every process
    below this one (the zygote) in ``/proc``."""
    pids = cgroups.member_pids(_STATE["cgroup"]) if _STATE.get("cgroup") is not None else None
    if pids is None:
        return cputime.descendants_cpu_s(os.getpid())
    me = os.getpid()
    return cputime.pids_cpu_s([p for p in pids if p != me])


def program_cpu_base() -> tuple[float, float | None, float]:
    """Readings to take just before a program is forked; pass them to :func:`program_cpu_used`."""
    cg = _STATE.get("cgroup")
    usage = cgroups.cpu_usage_s(cg) if cg is not None else None
    return cputime.reaped_children_s(), usage, time.process_time()


def program_cpu_used(base: tuple[float, float | None, float], *, live: bool = True) -> float:
    """CPU seconds the running (``live``) or ended program used since ``base``.

    The zygote's reaped children plus (``live``) the processes still running; with a cgroup that
    keeps CPU accounting, at least its total minus the zygote's own time, which also covers
    processes the kernel reaped without telling anyone (children of a program that ignores
    SIGCHLD leave no trace in ``/proc`` or in ``os.times()``)."""
    reaped0, usage0, own0 = base
    used = cputime.reaped_children_s() - reaped0
    if live:
        used += program_cpu_s()
    if usage0 is not None:
        usage = cgroups.cpu_usage_s(_STATE["cgroup"])
        if usage is not None:
            used = max(used, usage - usage0 - (time.process_time() - own0))
    return used


def finish_program(pid: int, uid: int, isolation: dict, workdir: str) -> dict:
    """Kill whatever the program left running, reap every zombie, remove its files and cgroup.

    Returns facts about the run: ``{"oom": True}`` when the cgroup's OOM killer ended a process
    (the program went over its aggregate memory limit).
    """
    cg = _PROGRAM_CGROUPS.pop(pid, None)
    left = _sweep(pid, uid, isolation)
    facts = cgroups.destroy(cg, _reap_all, sweep=left) if cg is not None else {"oom": False}
    if isolation.get("mode") == "landlock":
        facts["disk"] = scratch.over_quota(workdir, _STATE["scratch"]["quota_bytes"])
        scratch.empty(workdir)
    elif not isolation.get("filesystem"):
        try:
            os.rmdir(workdir)
        except OSError:
            shutil.rmtree(workdir, ignore_errors=True)
    return facts


def _sweep(pid: int, uid: int, isolation: dict) -> bool:
    """Kill and reap what the program left; returns whether anything was left at all."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    # We are a child subreaper: once the program's first process is reaped, every process it
    # left behind (double-forked daemons included) is a child of ours. No child at all -> done.
    if not _has_children():
        return False
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
    return True


def become_subreaper_and_die_with_parent() -> None:
    """Orphans of programs are re-parented to this process; it gets SIGKILL when its parent dies."""
    libc = _get_libc()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
