"""Seccomp filters for program processes, stdlib only.

Filters, stacked where several apply:

* :func:`deny_escapes`, on every sandboxed process (the zygote installs it once, so every program
  inherits it; also the worker JVMs):

  - no kernel keyrings (``add_key``, ``request_key``, ``keyctl``): a uid's keyring outlives every
    process, so one program could leave data for the next, and in weak mode read the trainer's keys;
  - no sockets of address families a network namespace does not cover: only ``AF_UNIX``,
    ``AF_INET`` and ``AF_INET6`` may be created (``AF_VSOCK`` reaches the hypervisor from inside
    any network namespace);
  - none of the kernel interfaces that bypass system-call filtering or mostly serve exploits and
    side channels: ``io_uring`` (its operations are not system calls a filter sees), ``bpf``,
    ``userfaultfd``, ``perf_event_open``; nor ``io_setup`` (AIO contexts are a host-wide budget,
    ``aio-max-nr``, that one program could use up).
* :func:`deny_namespaces` (each program, once it is inside its own view; worker JVMs): no new
  namespaces (``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*`` flag): user namespaces are
  the largest kernel attack surface open to an unprivileged process, and no program needs one.
  No ``fcntl`` lease, ``F_NOTIFY`` or write hint either: they act on a file beyond the program;
  no ``inotify`` / ``fanotify``: they use up the uid's watch budget (the trainer's, where programs
  share its uid) and, outside a view, name files the program cannot open.
* for programs that share the host (Landlock mode, ``deny_namespaces(shared_host=True)``): no
  ``socket`` at all, ``socketpair`` of stream sockets only, no ``connect`` / ``bind`` / ``listen``
  (Landlock cannot stop a datagram to a pathname UNIX socket such as ``/dev/log``, nor an abstract
  name being taken), no System V IPC or POSIX message queues, no change to any file's mode, owner,
  times or extended attributes, only a few ``ioctl`` requests (terminal queries, fd flags: not
  ``FS_IOC_SETFLAGS`` on the scratch folder they own), ``fallocate`` in mode 0 only (``KEEP_SIZE``
  allocates past ``RLIMIT_FSIZE``), no access to other processes (``ptrace``, ``process_vm_*``,
  ``pidfd_*``, ``kcmp``), and calls that set a process's limits, priority or CPUs only for the
  caller (pid 0).
* no new processes (``deny_namespaces(processes=True)``), where the whole process tree cannot be
  limited or measured (no cgroup, or one without CPU accounting), and in Landlock mode: a program
  that cannot fork holds at most its own ``RLIMIT_AS`` and leaves nothing running; memory that
  ``RLIMIT_AS`` does not count is denied with it (``memfd_create``, System V ``shmget``, raising a
  socket's buffers with ``setsockopt``). Also applied to worker JVMs, whose
  programs run as threads. ``fork``/``vfork`` and ``clone`` without ``CLONE_THREAD`` fail with EPERM.

``clone3`` (whose flags a filter cannot read) fails with ENOSYS wherever ``clone`` flags are
checked, so the C library falls back to ``clone``. System calls of a foreign ABI (i386
``int 0x80``, x32) are denied by every filter, so none can be side-stepped through them.
"""

from __future__ import annotations

import ctypes
import errno
import os

try:
    from . import oscalls as osc
except ImportError:
    import oscalls as osc

# arch: (AUDIT_ARCH, {name: nr})
ARCH = {
    "x86_64": (0xC000003E, {"clone": 56, "fork": 57, "vfork": 58, "clone3": 435, "socket": 41, "socketpair": 53,
                            "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272, "setns": 308,
                            "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
                            "bpf": 321, "userfaultfd": 323, "perf_event_open": 298,
                            "shmget": 29, "shmat": 30, "shmctl": 31, "semget": 64, "semop": 65, "semctl": 66, "shmdt": 67,
                            "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "semtimedop": 220,
                            "mq_open": 240, "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243,
                            "mq_notify": 244, "mq_getsetattr": 245,
                            "chmod": 90, "fchmod": 91, "chown": 92, "fchown": 93, "lchown": 94, "utime": 132,
                            "utimes": 235, "futimesat": 261, "fchownat": 260, "fchmodat": 268, "utimensat": 280,
                            "fchmodat2": 452, "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190, "removexattr": 197,
                            "lremovexattr": 198, "fremovexattr": 199, "setxattrat": 463, "removexattrat": 466,
                            "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
                            "pidfd_open": 434, "pidfd_getfd": 438, "process_madvise": 440, "process_mrelease": 448,
                            "prlimit64": 302, "sched_setaffinity": 203, "sched_setparam": 142, "sched_setscheduler": 144,
                            "sched_setattr": 314, "migrate_pages": 256, "move_pages": 279, "setpriority": 141,
                            "ioprio_set": 251, "connect": 42, "bind": 49, "listen": 50, "ioctl": 16,
                            "inotify_init": 253, "inotify_init1": 294, "fanotify_init": 300, "memfd_create": 319,
                            "io_setup": 206, "fallocate": 285, "fcntl": 72, "setsockopt": 54}),
    "aarch64": (0xC00000B7, {"clone": 220, "clone3": 435, "socket": 198, "socketpair": 199,
                             "add_key": 217, "request_key": 218, "keyctl": 219, "unshare": 97, "setns": 268,
                             "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
                             "bpf": 280, "userfaultfd": 282, "perf_event_open": 241,
                             "shmget": 194, "shmctl": 195, "shmat": 196, "shmdt": 197, "semget": 190, "semctl": 191,
                             "semtimedop": 192, "semop": 193, "msgget": 186, "msgctl": 187, "msgrcv": 188, "msgsnd": 189,
                             "mq_open": 180, "mq_unlink": 181, "mq_timedsend": 182, "mq_timedreceive": 183,
                             "mq_notify": 184, "mq_getsetattr": 185,
                             "fchmod": 52, "fchmodat": 53, "fchownat": 54, "fchown": 55, "utimensat": 88, "fchmodat2": 452,
                             "setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "removexattr": 14, "lremovexattr": 15,
                             "fremovexattr": 16, "setxattrat": 463, "removexattrat": 466,
                             "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272,
                             "pidfd_open": 434, "pidfd_getfd": 438, "process_madvise": 440, "process_mrelease": 448,
                             "prlimit64": 261, "sched_setaffinity": 122, "sched_setparam": 118, "sched_setscheduler": 119,
                             "sched_setattr": 274, "migrate_pages": 238, "move_pages": 239, "setpriority": 140,
                             "ioprio_set": 30, "connect": 203, "bind": 200, "listen": 201, "ioctl": 29,
                             "inotify_init1": 26, "fanotify_init": 262, "memfd_create": 279,
                             "io_setup": 0, "fallocate": 47, "fcntl": 25, "setsockopt": 208}),
}
ESCAPES = ("add_key", "request_key", "keyctl", "io_uring_setup", "io_uring_enter", "io_uring_register",
           "bpf", "userfaultfd", "perf_event_open", "io_setup")
# Shared-host programs (Landlock mode: no namespace, maybe the trainer's uid): what no namespace or
# Landlock rule keeps inside. System V IPC and POSIX message queues (objects outlive the program and
# are shared by the host), changing any file's mode, owner, times or extended attributes (Landlock
# does not check them), and reaching other processes' memory or file descriptors.
SHARED_HOST_DENY = ("shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semctl", "semtimedop", "msgget",
                    "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
                    "mq_notify", "mq_getsetattr", "chmod", "fchmod", "chown", "fchown", "lchown", "utime", "utimes",
                    "futimesat", "fchownat", "fchmodat", "utimensat", "fchmodat2", "setxattr", "lsetxattr",
                    "fsetxattr", "removexattr", "lremovexattr", "fremovexattr", "setxattrat", "removexattrat",
                    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_open", "pidfd_getfd",
                    "process_madvise", "process_mrelease", "connect", "bind", "listen")
# The only ioctl requests shared-host programs may make (terminal queries and fd flags); anything else,
# e.g. FS_IOC_SETFLAGS on the scratch folder they own, gets ENOTTY. The same numbers on every architecture.
TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, FIONCLEX, FIOCLEX = 0x5401, 0x5413, 0x541B, 0x5421, 0x5450, 0x5451
SHARED_HOST_IOCTLS = (TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, FIONCLEX, FIOCLEX)
SOCK_TYPE_MASK, SOCK_STREAM = 0xF, 1
# fcntl requests that act on a file beyond the program (every program): a lease stalls the host's
# writers of it, F_NOTIFY watches a folder, write hints outlive the program (programs that run as
# the real uid 0 own the system's files).
F_SETLEASE, F_NOTIFY, F_SET_RW_HINT, F_SET_FILE_RW_HINT = 1024, 1026, 1036, 1038
FCNTL_DENY = (F_SETLEASE, F_NOTIFY, F_SET_RW_HINT, F_SET_FILE_RW_HINT)
# Memory no RLIMIT_AS counts, for programs without a cgroup (the no-process rule): memfd files and
# System V segments keep their pages after being unmapped.
UNCOUNTED_MEMORY = ("memfd_create", "shmget")
SOL_SOCKET, SOCKET_BUFFER_OPTIONS = 1, (7, 8, 32, 33)  # SO_SNDBUF, SO_RCVBUF, SO_SNDBUFFORCE, SO_RCVBUFFORCE
OFFSET_ARG2 = 32
# File-system watches (every program): they use up the uid's inotify budget (the trainer's, where
# programs share its uid) and, outside a view, name files the program cannot open.
WATCHES = ("inotify_init", "inotify_init1", "fanotify_init")
# Calls that name a process by pid in their first argument: only 0 (the caller itself) is allowed,
# so a program cannot lower the trainer's limits, priority or CPU set.
SHARED_HOST_SELF_ONLY = ("prlimit64", "sched_setaffinity", "sched_setparam", "sched_setscheduler", "sched_setattr",
                         "migrate_pages", "move_pages")
PRIO_PROCESS, IOPRIO_WHO_PROCESS = 0, 1
OFFSET_ARG1 = 24
CLONE_THREAD = 0x00010000
CLONE_NEW_ANY = 0x7E020000  # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
X32_BIT = 0x40000000
ALLOWED_FAMILIES = (1, 2, 10)  # AF_UNIX, AF_INET, AF_INET6
LD_W_ABS, JEQ, JGE, JSET, RET, ALU_AND = 0x20, 0x15, 0x35, 0x45, 0x06, 0x54
ALLOW = 0x7FFF0000
ERRNO = 0x00050000
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0 = 0, 4, 16  # struct seccomp_data; args are little-endian 64-bit


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Filter))]


def supported() -> bool:
    return os.uname().machine in ARCH


def _assemble(body: list[tuple]) -> list[tuple[int, int, int, int]]:
    """BPF from instructions whose jump targets may be labels (str); ``("label", name)`` marks one."""
    where, n = {}, 0
    for ins in body:
        if ins[0] == "label":
            where[ins[1]] = n
        else:
            n += 1
    out = []
    for ins in body:
        if ins[0] == "label":
            continue
        code, jt, jf, k = ins
        pc = len(out)
        jt = where[jt] - pc - 1 if isinstance(jt, str) else jt
        jf = where[jf] - pc - 1 if isinstance(jf, str) else jf
        if not (0 <= jt <= 255 and 0 <= jf <= 255):
            raise ValueError(f"seccomp: jump out of range at instruction {pc}")
        out.append((code, jt, jf, k))
    return out


def _program(*, escapes: bool = False, namespaces: bool = False, processes: bool = False,
             shared_host: bool = False) -> list[tuple[int, int, int, int]]:
    audit, nrs = ARCH[os.uname().machine]
    body: list[tuple] = [(LD_W_ABS, 0, 0, OFFSET_ARCH), (JEQ, 0, "eperm", audit), (LD_W_ABS, 0, 0, OFFSET_NR)]
    if audit == 0xC000003E:
        body.append((JGE, "eperm", 0, X32_BIT))
    if escapes:
        body += [(JEQ, "eperm", 0, nrs[name]) for name in ESCAPES]
        body += [(JEQ, "family", 0, nrs[name]) for name in ("socket", "socketpair")]
    if namespaces:
        body += [(JEQ, "eperm", 0, nrs[name]) for name in ("unshare", "setns") + WATCHES if name in nrs]
        body.append((JEQ, "fcntl", 0, nrs["fcntl"]))
    if processes:
        body += [(JEQ, "eperm", 0, nrs[name]) for name in ("fork", "vfork") if name in nrs]
        body += [(JEQ, "eperm", 0, nrs[name]) for name in UNCOUNTED_MEMORY]
        body.append((JEQ, "setsockopt", 0, nrs["setsockopt"]))
    if namespaces or processes:
        body += [(JEQ, "enosys", 0, nrs["clone3"]), (JEQ, "clone", 0, nrs["clone"])]
    if shared_host:
        body.append((JEQ, "eacces", 0, nrs["socket"]))  # no socket to connect anywhere; socketpair stays
        body += [(JEQ, "eperm", 0, nrs[name]) for name in SHARED_HOST_DENY if name in nrs]
        body += [(JEQ, "self_only", 0, nrs[name]) for name in SHARED_HOST_SELF_ONLY]
        body += [(JEQ, "setpriority", 0, nrs["setpriority"]), (JEQ, "ioprio_set", 0, nrs["ioprio_set"]),
                 (JEQ, "ioctl", 0, nrs["ioctl"]), (JEQ, "socketpair", 0, nrs["socketpair"]),
                 (JEQ, "fallocate", 0, nrs["fallocate"])]
    body.append((RET, 0, 0, ALLOW))
    if shared_host:
        # Arguments are read as their low 32 bits: the kernel reads these int arguments the same way.
        body += [("label", "self_only"), (LD_W_ABS, 0, 0, OFFSET_ARG0), (JEQ, "allow", "eperm", 0)]
        body += [("label", "setpriority"), (LD_W_ABS, 0, 0, OFFSET_ARG0), (JEQ, 0, "eperm", PRIO_PROCESS),
                 (LD_W_ABS, 0, 0, OFFSET_ARG1), (JEQ, "allow", "eperm", 0)]
        body += [("label", "ioprio_set"), (LD_W_ABS, 0, 0, OFFSET_ARG0), (JEQ, 0, "eperm", IOPRIO_WHO_PROCESS),
                 (LD_W_ABS, 0, 0, OFFSET_ARG1), (JEQ, "allow", "eperm", 0)]
        body += [("label", "ioctl"), (LD_W_ABS, 0, 0, OFFSET_ARG1)]
        body += [(JEQ, "allow", 0, request) for request in SHARED_HOST_IOCTLS]
        body.append((RET, 0, 0, ERRNO | errno.ENOTTY))
        # Stream pairs only: a datagram socket can sendto() any pathname socket on the host (/dev/log).
        body += [("label", "socketpair"), (LD_W_ABS, 0, 0, OFFSET_ARG1), (ALU_AND, 0, 0, SOCK_TYPE_MASK),
                 (JEQ, "allow", "eacces", SOCK_STREAM)]
        # Mode 0 only: FALLOC_FL_KEEP_SIZE allocates blocks past the file's size, where RLIMIT_FSIZE
        # does not look (gigabytes in one call, on a file the scratch listing may not see).
        body += [("label", "fallocate"), (LD_W_ABS, 0, 0, OFFSET_ARG1), (JEQ, "allow", "eperm", 0)]
        body += [("label", "eacces"), (RET, 0, 0, ERRNO | errno.EACCES)]
    if processes:
        # Socket buffers are kernel memory RLIMIT_AS does not count: no raising them past the defaults.
        body += [("label", "setsockopt"), (LD_W_ABS, 0, 0, OFFSET_ARG1), (JEQ, 0, "allow", SOL_SOCKET),
                 (LD_W_ABS, 0, 0, OFFSET_ARG2)]
        body += [(JEQ, "eperm", 0, opt) for opt in SOCKET_BUFFER_OPTIONS]
        body.append((RET, 0, 0, ALLOW))
    if namespaces:
        body += [("label", "fcntl"), (LD_W_ABS, 0, 0, OFFSET_ARG1)]
        body += [(JEQ, "eperm", 0, request) for request in FCNTL_DENY]
        body.append((RET, 0, 0, ALLOW))
    if escapes:
        body += [("label", "family"), (LD_W_ABS, 0, 0, OFFSET_ARG0)]
        body += [(JEQ, "allow", 0, family) for family in ALLOWED_FAMILIES]
        body.append((RET, 0, 0, ERRNO | errno.EAFNOSUPPORT))
    if namespaces or processes:
        body += [("label", "clone"), (LD_W_ABS, 0, 0, OFFSET_ARG0)]
        if namespaces:
            body.append((JSET, "eperm", 0, CLONE_NEW_ANY))
        if processes:
            body += [(JSET, "allow", 0, CLONE_THREAD), (RET, 0, 0, ERRNO | errno.EPERM)]
        else:
            body.append((RET, 0, 0, ALLOW))
    body += [("label", "allow"), (RET, 0, 0, ALLOW), ("label", "eperm"), (RET, 0, 0, ERRNO | errno.EPERM),
             ("label", "enosys"), (RET, 0, 0, ERRNO | errno.ENOSYS)]
    return _assemble(body)


_PREPARED: dict[tuple, tuple] = {}  # filter flags -> (ctypes array, sock_fprog): built once, in the zygote


def _prepared(**flags) -> tuple:
    """The filter's ctypes structures, built once per process (a forked program only reads them:
    no allocation, no copy-on-write faults for building them per program)."""
    key = tuple(sorted(flags.items()))
    if key not in _PREPARED:
        prog = _program(**flags)
        arr = (_Filter * len(prog))(*[_Filter(c, jt, jf, k) for c, jt, jf, k in prog])
        _PREPARED[key] = (arr, _Prog(len(prog), arr))
    return _PREPARED[key]


def _install(**flags) -> None:
    if not supported():
        raise OSError(errno.ENOSYS, f"seccomp filter: unsupported architecture {os.uname().machine}")
    _, fprog = _prepared(**flags)
    osc.set_no_new_privs()
    ret = osc.libc().prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog), ctypes.c_ulong(0), ctypes.c_ulong(0))
    osc.check(ret, "prctl(PR_SET_SECCOMP)")


def prepare_program_filters() -> None:
    """Build the per-program filters now (in the zygote, before it forks programs)."""
    if supported():
        for processes in (False, True):
            for shared_host in (False, True):
                _prepared(namespaces=True, processes=processes, shared_host=shared_host)


def deny_escapes() -> None:
    """Install the keyring / socket-family / io_uring-and-friends filter on this process (inherited by
    children, threads and across exec). Raises OSError."""
    _install(escapes=True)


def deny_namespaces(*, processes: bool = False, shared_host: bool = False) -> None:
    """Install the no-new-namespaces filter (``processes``: no new processes either; ``shared_host``:
    the Landlock mode's extra denials, :data:`SHARED_HOST_DENY` and others; in the same filter).
    Raises OSError."""
    _install(namespaces=True, processes=processes, shared_host=shared_host)
