"""Landlock rule sets for hosts where no namespace can be made (stdlib only, ctypes).

Default Docker (root without ``CAP_SYS_ADMIN``, its seccomp profile blocking user namespaces),
Ubuntu 24.04's AppArmor rule and many HPC nodes leave no mount or network namespace to build
the file-system view in. Landlock (Linux 5.13+, in the default LSM list of most distributions)
needs no privilege: a process restricts itself, and everything it starts, to an allow-list of
folders and files, and (ABI 6, Linux 6.12+) may no longer signal processes outside its domain.

:func:`build` makes the rule set once, in the zygote; :func:`restrict` applies it in each program
process (one system call). A folder rule covers everything beneath it; files to keep out of an
allowed folder (benchmark data) are left out by granting the folder's other entries one by one
(:func:`grants_without`).

What Landlock does not cover is closed elsewhere (see ``seccomp.py``, ``shared_host``): it does
not restrict ``stat``, ``chmod``/``chown``/extended attributes, connecting to a pathname UNIX
socket, System V IPC, or calls that name another process by pid (``prlimit``, ``setpriority``...).

Example (in a process about to run untrusted code)::

    fd = build(read=["/usr", sys.prefix], write=["/tmp/work-1"], devices=["/dev/null"])
    restrict(fd)     # from here on: read /usr and the prefix, write /tmp/work-1, nothing else
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat

try:
    from . import oscalls as osc
except ImportError:  # run as a script with the sandbox folder on sys.path
    import oscalls as osc

SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446  # the same on every architecture
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
MIN_ABI = 3  # truncate(2) is only controlled from ABI 3 (Linux 6.2)

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}  # 5 and later: (1 << 16) - 1
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

READ_DIR_RIGHTS = EXECUTE | READ_FILE | READ_DIR
READ_FILE_RIGHTS = EXECUTE | READ_FILE
DEVICE_RIGHTS = READ_FILE | WRITE_FILE | TRUNCATE  # open("/dev/null", "w") truncates
# Files, no folders: the scratch folder stays flat, so its size is one listing (see scratch.py).
WORK_RIGHTS = READ_FILE | READ_DIR | WRITE_FILE | TRUNCATE | MAKE_REG | REMOVE_FILE
FILE_ONLY_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # what a rule on a file may grant
HIGH_FD = 100  # the rule set's fd: at or above this, clear of the fds a program process moves onto 0, 1, 2, 3


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _syscall(nr: int, *args) -> int:
    return osc.libc().syscall(ctypes.c_long(nr), *args)


def abi() -> int:
    """The Landlock ABI version this kernel offers; 0 when Landlock is missing, disabled, or blocked
    by a seccomp profile."""
    ret = _syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(int(ret), 0)


def handled_fs(version: int) -> int:
    return FS_BY_ABI.get(version, (1 << 16) - 1)


def _add(ruleset: int, path: str, rights: int, handled: int) -> None:
    """Grant ``rights`` (masked to what the path's type and the ABI allow) beneath ``path``."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # gone since it was listed: nothing to grant
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= FILE_ONLY_RIGHTS
        rule = _PathBeneath(rights & handled, fd)
        ret = _syscall(SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0))
        osc.check(ret, f"landlock_add_rule {path}")
    finally:
        os.close(fd)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def grants_without(root: str, excluded) -> list[str]:
    """Paths whose rules together cover ``root`` except the ``excluded`` paths beneath it.

    Symbolic links are never granted (access through one is judged where it points).

    Example: ``grants_without("/p", ["/p/pkg/data/x.jsonl"])`` lists every entry of ``/p`` but
    ``pkg``, every entry of ``/p/pkg`` but ``data``, and every entry of ``/p/pkg/data`` but the file.
    """
    inside = [e for e in excluded if _under(e, root)]
    if not inside:
        return [root]
    if root in inside or not os.path.isdir(root) or os.path.islink(root):
        return []
    out = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    for name in names:
        path = os.path.join(root, name)
        if os.path.islink(path):
            continue
        out += grants_without(path, inside)
    return out


def build(read=(), write=(), devices=(), exclude=(), version: int | None = None) -> int:
    """A rule set that allows reading (and executing) ``read``, reading and changing ``write``
    folders, reading and writing the ``devices``; nothing else of the file system, no TCP (ABI 4+),
    no signals or abstract UNIX sockets outside the domain (ABI 6+). ``exclude``: files beneath the
    allowed folders that stay out. Returns its fd (close-on-exec, at or above :data:`HIGH_FD`)."""
    version = abi() if version is None else version
    if version < 1:
        raise OSError(errno.ENOSYS, "Landlock is not available on this kernel")
    handled = handled_fs(version)
    attr = _RulesetAttr(handled, (NET_BIND_TCP | NET_CONNECT_TCP) if version >= 4 else 0,
                        (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if version >= 6 else 0)
    ruleset = _syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock_create_ruleset: {os.strerror(err)}")
    try:
        for root in read:
            for path in grants_without(root, exclude):
                _add(ruleset, path, READ_DIR_RIGHTS, handled)
        for path in write:
            _add(ruleset, path, WORK_RIGHTS, handled)
        for path in devices:
            _add(ruleset, path, DEVICE_RIGHTS, handled)
        high = fcntl.fcntl(ruleset, fcntl.F_DUPFD_CLOEXEC, HIGH_FD)
    finally:
        os.close(ruleset)
    return high


def restrict(ruleset: int) -> None:
    """Enter the rule set's domain: this process and all it starts, for good. Raises OSError."""
    osc.set_no_new_privs()
    osc.check(_syscall(SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)), "landlock_restrict_self")
