"""A minimal file-system view for sandboxed programs (like bubblewrap's), built with mounts and pivot_root.

:func:`build` (once, in a private mount namespace) makes a fresh tmpfs root holding read-only
binds of the system directories (``/usr``, ``/bin``, ``/lib*``, a few ``/etc`` files), the
interpreter's prefixes and ``sys.path`` directories wherever they live (``/root/.pyenv``, a venv
under ``/tmp``...), any extra paths the caller names (a JDK), and ``/dev/{null,zero,full,random,
urandom}``; then ``pivot_root`` into it. Nothing else of the host is reachable: no ``/home``,
``/root``, project checkout or data set. ``sys.path`` entries outside the interpreter's prefixes
(the project, an editable install's source, ``PYTHONPATH``) are left out on purpose.

:func:`enter_program_view` (per program, in the program's process) unshares a new mount + IPC
namespace, mounts fresh tmpfs on ``/tmp``, ``/var/tmp`` and ``/dev/shm`` (re-binding interpreter
paths that live there) and covers ``/proc`` with an empty read-only tmpfs: the kernel destroys all of it when the program's
last process exits, so nothing is carried from one program to the next.
"""

from __future__ import annotations

import glob
import os
import sys

try:
    from . import datafiles
    from . import oscalls as osc
except ImportError:  # run as a script with the sandbox folder on sys.path
    import datafiles
    import oscalls as osc

WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC = ("passwd", "group", "nsswitch.conf", "hosts", "host.conf", "localtime", "timezone", "ld.so.cache",
       "ld.so.conf", "ld.so.conf.d", "ssl", "ca-certificates", "alternatives", "mime.types", "os-release",
       "java-17-openjdk", "java-21-openjdk", "java-11-openjdk")
DEV = ("null", "zero", "full", "random", "urandom")
SYSTEM_PACKAGES = ("/usr/lib/python3*/*-packages", "/usr/local/lib/python3*/*-packages", "/usr/lib/python3/dist-packages")
STASH = "/.tcf-ro"
RO_FLAGS = osc.MS_REMOUNT | osc.MS_BIND | osc.MS_RDONLY


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def interpreter_paths() -> list[str]:
    """The interpreter's prefixes, its executable's folders and the sys.path folders inside them."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
    paths = set(prefixes)
    for exe in (sys.executable, os.path.realpath(sys.executable)):
        if exe:
            paths.add(os.path.realpath(os.path.dirname(exe)))
    for p in sys.path:
        if p and os.path.isdir(p):
            real = os.path.realpath(p)
            if any(_under(real, pre) for pre in prefixes):
                paths.add(real)
    return sorted(p for p in paths if p != "/")


def data_search_roots() -> list[str]:
    """Where to look for benchmark data programs must not read: the interpreter's own prefixes, the
    ``sys.path`` folders of an interpreter installed under a system folder (``/usr/bin/python3``, the
    ``python`` Docker images' ``/usr/local``), whose prefix is too large to walk, and every system
    interpreter's package folders (visible to programs under ``/usr`` whichever Python runs them).

    Example: with pyenv, ``['/root/.pyenv/versions/3.11.7']``; with Debian's python3,
    ``['/usr/lib/python3.11', '/usr/lib/python3/dist-packages', '/usr/local/lib/python3.11/dist-packages']``.
    """
    system = [os.path.realpath(s) for s in SYSTEM if os.path.isdir(s) and not os.path.islink(s)]
    roots = []
    for p in interpreter_paths():
        if not any(_under(p, s) for s in system):
            roots.append(p)
    for p in sys.path:
        real = os.path.realpath(p) if p else ""
        if real and os.path.isdir(real) and real not in system and any(_under(real, s) for s in system):
            roots.append(real)
    roots += [p for pattern in SYSTEM_PACKAGES for p in glob.glob(pattern) if os.path.isdir(p)]
    return _minimal(roots)


def _minimal(paths) -> list[str]:
    """Drop paths already inside another one of the list (their parent's bind covers them)."""
    out: list[str] = []
    for p in sorted({os.path.realpath(p) for p in paths if os.path.exists(p)}):
        if not any(_under(p, q) for q in out):
            out.append(p)
    return out


def _stage_point(sources) -> str:
    """An existing folder to mount the new root on that is neither above nor below a source."""
    for cand in ("/mnt", "/media", "/srv", "/run", "/boot", "/opt", "/home", "/var/lib", "/var"):
        if os.path.isdir(cand) and not os.path.islink(cand) and not any(_under(s, cand) or _under(cand, s) for s in sources):
            return cand
    raise OSError(2, "no folder to stage the sandbox root on")


def _bind(src: str, dst: str) -> None:
    if os.path.isdir(src):
        os.makedirs(dst, 0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), 0o755, exist_ok=True)
        if not os.path.exists(dst):
            os.close(os.open(dst, os.O_CREAT | os.O_WRONLY, 0o644))
    osc.mount(src, dst, None, osc.MS_BIND | osc.MS_REC)


def _mountpoints() -> list[tuple[str, set]]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4].encode().decode("unicode_escape")
            out.append((mp, set(fields[5].split(","))))
    return out


def _remount_readonly(root: str, skip=()) -> None:
    """Remount every mount at or below ``root`` read-only (keeping locked nosuid/nodev/noexec bits)."""
    for mp, opts in _mountpoints():
        if not _under(mp, root) or any(_under(mp, s) for s in skip):
            continue
        flags = RO_FLAGS | osc.MS_NOSUID
        flags |= osc.MS_NODEV if "nodev" in opts else 0
        flags |= osc.MS_NOEXEC if "noexec" in opts else 0
        try:
            osc.mount(None, mp, None, flags)
        except OSError:
            try:
                osc.mount(None, mp, None, flags & ~osc.MS_NOSUID | (osc.MS_NOSUID if "nosuid" in opts else 0))
            except OSError:
                pass  # e.g. a locked proc sub-mount in a user namespace


def build(ro_paths=(), tmp_size_mb: int = 512, hide_private: bool = False, private_everywhere: bool = False) -> dict:
    """Make and enter the minimal view (the caller is in its own mount namespace). Returns its facts.

    ``hide_private``: also cover what not every user may read in the interpreter's folders and
    ``ro_paths`` (programs will run as the trainer's uid, whose owner bits would open its private
    files there, e.g. a venv's ``pip.conf`` with an index token); ``private_everywhere``: in the
    system folders too (programs will run as the real uid 0, the owner of those)."""
    osc.mount(None, "/", None, osc.MS_REC | osc.MS_PRIVATE)
    system = [p for p in SYSTEM if os.path.lexists(p)]
    etc = [os.path.join("/etc", e) for e in ETC if os.path.lexists(os.path.join("/etc", e))]
    extra = [p for p in _minimal(list(interpreter_paths()) + list(ro_paths)) if not any(_under(p, s) for s in system if not os.path.islink(s))]
    stage = _stage_point(system + etc + extra + ["/dev", "/proc"])
    osc.mount("tmpfs", stage, "tmpfs", osc.MS_NOSUID | osc.MS_NODEV, "size=4m,nr_inodes=4096,mode=755")
    for p in system + etc:
        if os.path.islink(p):
            os.symlink(os.readlink(p), stage + p)
        else:
            _bind(p, stage + p)
    rebind = []
    for i, p in enumerate(extra):
        if any(_under(p, w) for w in WRITABLE):
            stash = f"{STASH}/{i}"  # under a per-program tmpfs: bound back there by enter_program_view
            _bind(p, stage + stash)
            rebind.append([stash, p])
        else:
            _bind(p, stage + p)
    roots = extra + [s for s in system if not os.path.islink(s)]
    covered = list(datafiles.from_env_or_find(tuple(data_search_roots())))
    if hide_private:
        covered += datafiles.private_files((roots + [e for e in etc if not os.path.islink(e)]) if private_everywhere else extra)
    hidden = _cover(stage, covered, roots + etc, rebind)
    for d in DEV:
        if os.path.exists("/dev/" + d):
            _bind("/dev/" + d, f"{stage}/dev/{d}")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{stage}/dev/{name}")
    for d in ("/tmp", "/var/tmp", "/dev/shm", "/proc"):
        os.makedirs(stage + d, 0o755, exist_ok=True)
    osc.mount("/proc", stage + "/proc", None, osc.MS_BIND | osc.MS_REC)  # for the process that forks programs only
    _remount_readonly(stage, skip=(stage + "/proc",))
    os.chdir(stage)
    osc.pivot_root(".", ".")
    osc.umount(".")  # the old root, stacked under the new one
    os.chdir("/")
    view = {"tmp_size_mb": tmp_size_mb, "rebind": rebind, "exposed": extra, "hidden": hidden}
    mount_private_tmp(view)
    return view


def _cover(stage: str, paths, exposed: list[str], rebind: list) -> list[str]:
    """Bind /dev/null over each file of ``paths`` inside the exposed folders (benchmark data, see
    :mod:`datafiles`; root-only files), an empty read-only tmpfs over each folder."""
    stashed = {target: stash for stash, target in rebind}
    hidden = []
    for path in paths:
        root = next((p for p in exposed if _under(path, p)), None)
        if root is None:
            continue
        inside = (stashed[root] + path[len(root):]) if root in stashed else path
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                osc.mount("tmpfs", stage + inside, "tmpfs", osc.MS_NOSUID | osc.MS_NODEV | osc.MS_NOEXEC | osc.MS_RDONLY,
                          "size=4k,nr_inodes=1,mode=000")
            else:
                osc.mount("/dev/null", stage + inside, None, osc.MS_BIND)
            hidden.append(path)
        except OSError:
            pass
    return hidden


def mount_private_tmp(view: dict) -> None:
    """Fresh tmpfs on /tmp, /var/tmp, /dev/shm, with interpreter paths that live there bound back."""
    for d, size in (("/tmp", view["tmp_size_mb"]), ("/var/tmp", 64), ("/dev/shm", 64)):
        osc.mount("tmpfs", d, "tmpfs", osc.MS_NOSUID | osc.MS_NODEV, f"size={size}m,nr_inodes=65536,mode=1777")
    for stash, target in view["rebind"]:
        os.makedirs(target, 0o755, exist_ok=True)
        osc.mount(stash, target, None, osc.MS_BIND | osc.MS_REC)
        _remount_readonly(target)


def enter_program_view(view: dict) -> None:
    """In a program's process: its own /tmp, /var/tmp, /dev/shm and IPC objects; no /proc."""
    osc.unshare(osc.CLONE_NEWNS | osc.CLONE_NEWIPC)
    mount_private_tmp(view)
    # Hide /proc under an empty read-only tmpfs: a lazy umount of it waits for an RCU grace period
    # (up to ~5 ms per program here); without capabilities the program cannot remove the cover.
    osc.mount("tmpfs", "/proc", "tmpfs", osc.MS_NOSUID | osc.MS_NODEV | osc.MS_NOEXEC | osc.MS_RDONLY, "size=4k,nr_inodes=1,mode=555")
