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
    ``userfaultfd``, ``perf_event_open``.
* :func:`deny_namespaces` (each program, once it is inside its own view; worker JVMs): no new
  namespaces (``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*`` flag): user namespaces are
  the largest kernel attack surface open to an unprivileged process, and no program needs one.
* no new processes (``deny_namespaces(processes=True)``), where the whole process tree cannot be
  limited or measured (no cgroup, or one without CPU accounting): a program that cannot fork holds
  at most its own ``RLIMIT_AS`` and leaves nothing running. Also applied to worker JVMs, whose
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
                            "bpf": 321, "userfaultfd": 323, "perf_event_open": 298}),
    "aarch64": (0xC00000B7, {"clone": 220, "clone3": 435, "socket": 198, "socketpair": 199,
                             "add_key": 217, "request_key": 218, "keyctl": 219, "unshare": 97, "setns": 268,
                             "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
                             "bpf": 280, "userfaultfd": 282, "perf_event_open": 241}),
}
ESCAPES = ("add_key", "request_key", "keyctl", "io_uring_setup", "io_uring_enter", "io_uring_register",
           "bpf", "userfaultfd", "perf_event_open")
CLONE_THREAD = 0x00010000
CLONE_NEW_ANY = 0x7E020000  # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
X32_BIT = 0x40000000
ALLOWED_FAMILIES = (1, 2, 10)  # AF_UNIX, AF_INET, AF_INET6
LD_W_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
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
        out.append((code, jt, jf, k))
    return out


def _program(*, escapes: bool = False, namespaces: bool = False, processes: bool = False) -> list[tuple[int, int, int, int]]:
    audit, nrs = ARCH[os.uname().machine]
    body: list[tuple] = [(LD_W_ABS, 0, 0, OFFSET_ARCH), (JEQ, 0, "eperm", audit), (LD_W_ABS, 0, 0, OFFSET_NR)]
    if audit == 0xC000003E:
        body.append((JGE, "eperm", 0, X32_BIT))
    if escapes:
        body += [(JEQ, "eperm", 0, nrs[name]) for name in ESCAPES]
        body += [(JEQ, "family", 0, nrs[name]) for name in ("socket", "socketpair")]
    if namespaces:
        body += [(JEQ, "eperm", 0, nrs[name]) for name in ("unshare", "setns")]
    if processes:
        body += [(JEQ, "eperm", 0, nrs[name]) for name in ("fork", "vfork") if name in nrs]
    if namespaces or processes:
        body += [(JEQ, "enosys", 0, nrs["clone3"]), (JEQ, "clone", 0, nrs["clone"])]
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
            _prepared(namespaces=True, processes=processes)


def deny_escapes() -> None:
    """Install the keyring / socket-family / io_uring-and-friends filter on this process (inherited by
    children, threads and across exec). Raises OSError."""
    _install(escapes=True)


def deny_namespaces(*, processes: bool = False) -> None:
    """Install the no-new-namespaces filter (``processes``: no new processes either, in the same
    filter). Raises OSError."""
    _install(namespaces=True, processes=processes)
