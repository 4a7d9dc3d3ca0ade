"""A seccomp filter that denies creating processes (threads stay allowed), stdlib only.

Used where the whole process tree cannot be limited (no cgroup): a program that cannot fork
holds at most its own ``RLIMIT_AS``, and leaves nothing running. Also applied to worker JVMs,
whose programs run as threads. ``fork``/``vfork`` and ``clone`` without ``CLONE_THREAD`` fail
with EPERM; ``clone3`` (whose flags a filter cannot read) fails with ENOSYS, so the C library
falls back to ``clone`` for threads. System calls of a foreign ABI (i386 ``int 0x80``, x32)
are denied, so the filter cannot be side-stepped through them.
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
    "x86_64": (0xC000003E, {"clone": 56, "fork": 57, "vfork": 58, "clone3": 435}),
    "aarch64": (0xC00000B7, {"clone": 220, "clone3": 435}),
}
CLONE_THREAD = 0x00010000
X32_BIT = 0x40000000
LD_W_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
ALLOW = 0x7FFF0000
ERRNO = 0x00050000
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Filter))]


def supported() -> bool:
    return os.uname().machine in ARCH


def _program() -> list[tuple[int, int, int, int]]:
    audit, nrs = ARCH[os.uname().machine]
    eperm, enosys = ERRNO | errno.EPERM, ERRNO | errno.ENOSYS
    prog = [(LD_W_ABS, 0, 0, 4), (JEQ, 1, 0, audit), (RET, 0, 0, eperm), (LD_W_ABS, 0, 0, 0)]
    if audit == 0xC000003E:
        prog += [(JGE, 0, 1, X32_BIT), (RET, 0, 0, eperm)]
    for name in ("fork", "vfork"):
        if name in nrs:
            prog += [(JEQ, 0, 1, nrs[name]), (RET, 0, 0, eperm)]
    prog += [(JEQ, 0, 1, nrs["clone3"]), (RET, 0, 0, enosys)]
    prog += [(JEQ, 0, 3, nrs["clone"]), (LD_W_ABS, 0, 0, 16), (JSET, 1, 0, CLONE_THREAD), (RET, 0, 0, eperm)]
    prog += [(RET, 0, 0, ALLOW)]
    return prog


def deny_process_creation() -> None:
    """Install the filter on this process (inherited by its threads and across exec). Raises OSError."""
    if not supported():
        raise OSError(errno.ENOSYS, f"seccomp filter: unsupported architecture {os.uname().machine}")
    prog = _program()
    arr = (_Filter * len(prog))(*[_Filter(c, jt, jf, k) for c, jt, jf, k in prog])
    fprog = _Prog(len(prog), arr)
    osc.set_no_new_privs()
    ret = osc.libc().prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog), ctypes.c_ulong(0), ctypes.c_ulong(0))
    osc.check(ret, "prctl(PR_SET_SECCOMP)")
