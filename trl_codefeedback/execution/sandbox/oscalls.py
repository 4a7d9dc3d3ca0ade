"""Thin ctypes wrappers for the Linux calls the sandbox needs (mount, unshare, pivot_root, prctl, caps).

Stdlib only: the sandbox runs as a script in a fresh interpreter. Every wrapper raises
``OSError`` with the call and the errno text on failure.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
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
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def resolve_functions() -> None:
    """Look up every libc function these wrappers call (ctypes caches each on first use), so a forked
    program process does not repeat the lookups."""
    lib = libc()
    for name in ("mount", "umount2", "unshare", "prctl", "capset", "syscall"):
        getattr(lib, name, None)


def check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _enc(s):
    return s.encode() if isinstance(s, str) else s


def mount(source, target, fstype, flags, data=None) -> None:
    check(libc().mount(_enc(source), _enc(target), _enc(fstype), ctypes.c_ulong(flags), _enc(data)), f"mount {target}")


def umount(target: str, flags: int = MNT_DETACH) -> None:
    check(libc().umount2(_enc(target), flags), f"umount {target}")


def unshare(flags: int) -> None:
    check(libc().unshare(flags), f"unshare({flags:#x})")


def pivot_root(new_root: str, put_old: str) -> None:
    nr = SYS_PIVOT_ROOT.get(os.uname().machine)
    if nr is None:
        raise OSError(38, f"pivot_root: unknown syscall number on {os.uname().machine}")
    check(libc().syscall(ctypes.c_long(nr), _enc(new_root), _enc(put_old)), "pivot_root")


def prctl(option: int, arg2: int = 0) -> int:
    return libc().prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def set_pdeathsig(sig: int) -> None:
    prctl(PR_SET_PDEATHSIG, sig)


def set_non_dumpable() -> None:
    """Make /proc/<this pid>/{environ,mem,...} unreadable to other processes of the same uid."""
    check(prctl(PR_SET_DUMPABLE, 0), "prctl(PR_SET_DUMPABLE)")


def set_no_new_privs() -> None:
    check(prctl(PR_SET_NO_NEW_PRIVS, 1), "prctl(PR_SET_NO_NEW_PRIVS)")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_bounding_set() -> None:
    """Empty the capability bounding set and the ambient set (needs CAP_SETPCAP: call before setuid)."""
    for cap in range(64):
        if prctl(PR_CAPBSET_DROP, cap) != 0 and ctypes.get_errno() == 22:  # EINVAL: past the last cap
            break
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def clear_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets; no exec can give any back (no_new_privs)."""
    # The arguments are built once, at import: made in a forked program, the ctypes objects cost
    # ~0.2 ms of copy-on-write faults, per program.
    check(libc().capset(ctypes.byref(_CAP_HEADER), _CAP_ZERO), "capset")
    set_no_new_privs()


_CAP_HEADER = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
_CAP_ZERO = (_CapData * 2)()
