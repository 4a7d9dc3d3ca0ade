"""Aggregate memory and process limits per program, with a cgroup per program (v2, else v1).

:func:`setup` (once, before ``pivot_root``; needs write access to the cgroup file system, i.e.
root or a delegated v2 subtree) finds where a child cgroup with the ``memory`` and ``pids``
controllers can be made and keeps a directory fd on it. The first :func:`create` makes
``tcf-<worker pid>`` with ``memory.max`` / ``pids.max`` (v1: ``memory.limit_in_bytes`` and
``memory.memsw.limit_in_bytes``, ``pids.max``) and moves the calling zygote into it, once: every
program it forks is then born inside (a migration per program costs an RCU grace period, several
ms on v1). The zygote is exempt from the OOM killer (``oom_score_adj`` -1000; each program resets
its own to 0 with :func:`join`) and the limits leave it room. :func:`destroy` kills what is left
in it (never the zygote) and reads whether the OOM killer fired. :func:`cpu_usage_s` reads the CPU
time of everything that ran in it (v2 ``cpu.stat``, v1 ``cpuacct.usage`` when that hierarchy is
mounted): processes the kernel reaped itself (a program that ignores SIGCHLD) count too. The folder outlives its worker (killed with SIGKILL); the next
:func:`setup` removes empty ones whose owner pid is gone.
"""

from __future__ import annotations

import os
import signal
import time


def _own_paths() -> dict[str, str]:
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in (ctrls.split(",") if ctrls else ["@v2"]):
                out[c] = path
    return out


def _mounts() -> list[tuple[str, str, set]]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            mp = left.split()[4]
            fstype, _, opts = right.split()[:3]
            out.append((mp, fstype, set(opts.split(","))))
    return out


def _read(dirfd: int, name: str) -> str:
    fd = os.open(name, os.O_RDONLY, dir_fd=dirfd)
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)


def _write(dirfd: int, name: str, value: str) -> None:
    fd = os.open(name, os.O_WRONLY, dir_fd=dirfd)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _probe(parent: str) -> int:
    """A dir fd on ``parent`` if a child cgroup can be made there (tried and removed)."""
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    name = f"tcf-probe-{os.getpid()}"
    try:
        os.mkdir(name, dir_fd=fd)
        os.rmdir(name, dir_fd=fd)
    except OSError:
        os.close(fd)
        raise
    _sweep_stale(fd)
    return fd


def _sweep_stale(dirfd: int) -> None:
    for name in os.listdir(dirfd):
        owner = name.split("-")[1] if name.startswith("tcf-") else ""
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            try:
                os.rmdir(name, dir_fd=dirfd)
            except OSError:
                pass


def setup() -> dict:
    """Find where per-program cgroups can be made. Returns ``{"version": 1|2, ...}`` or ``{"error": why}``."""
    if os.geteuid() != 0 and not os.environ.get("TCF_CGROUP_DELEGATED"):
        return {"error": "not root (cgroups need root or a delegated cgroup v2 subtree)"}
    paths, mounts = _own_paths(), _mounts()
    errors = []
    v2 = [mp for mp, fs, _ in mounts if fs == "cgroup2"]
    if v2 and "@v2" in paths:
        parent = v2[0] + paths["@v2"]
        try:
            with open(os.path.join(parent, "cgroup.subtree_control")) as f:
                ctrls = f.read().split()
            if not {"memory", "pids"} <= set(ctrls):
                raise OSError(95, f"memory/pids not enabled in {parent}/cgroup.subtree_control (controllers held by v1 or not delegated)")
            cg = {"version": 2, "dirs": [_probe(parent)]}
            if os.path.exists(os.path.join(parent, "cpu.stat")):  # with or without the cpu controller
                cg["cpu_dir"] = 0
            return cg
        except OSError as e:
            errors.append(f"v2: {e}")
    dirs = []
    for ctrl in ("memory", "pids"):
        mp = next((m for m, fs, opts in mounts if fs == "cgroup" and ctrl in opts), None)
        if mp is None or ctrl not in paths:
            errors.append(f"v1: no {ctrl} hierarchy")
            break
        try:
            dirs.append(_probe(mp + paths[ctrl]))
        except OSError as e:
            errors.append(f"v1 {ctrl}: {e}")
            break
    if len(dirs) == 2:
        cg = {"version": 1, "dirs": dirs}
        cpu = _v1_cpuacct_dir(mounts, paths)
        if cpu is not None:
            cg["cpu_dir"] = len(dirs)
            dirs.append(cpu)
        return cg
    for fd in dirs:
        os.close(fd)
    return {"error": "; ".join(errors) or "no cgroup file system"}


def _v1_cpuacct_dir(mounts, paths) -> int | None:
    """A dir fd in the v1 ``cpuacct`` hierarchy (CPU time of exited processes too), or None."""
    mp = next((m for m, fs, opts in mounts if fs == "cgroup" and "cpuacct" in opts), None)
    if mp is None or "cpuacct" not in paths:
        return None
    try:
        return _probe(mp + paths["cpuacct"])
    except OSError:
        return None


def _write_v1_memory(sub: int, mem: str, memsw: bool) -> None:
    """v1 wants limit <= memsw limit at every step: raise memsw first when growing, last when shrinking."""
    if not memsw:
        _write(sub, "memory.limit_in_bytes", mem)
        return
    try:
        _write(sub, "memory.limit_in_bytes", mem)  # shrinking: fine first
    except OSError:
        _write(sub, "memory.memsw.limit_in_bytes", mem)  # growing: memsw first
        _write(sub, "memory.limit_in_bytes", mem)
    _write(sub, "memory.memsw.limit_in_bytes", mem)


ZYGOTE_MEMORY_MB = 64  # room for the zygote's own pages and the PID-namespace waiters, on top of a program's limit
ZYGOTE_PROCESSES = 3  # the zygote and two PID-namespace waiters


def _enter_self(cg: dict) -> None:
    """Move the calling (zygote) process into the worker cgroup and shield it from the OOM killer."""
    for fd in cg["dirs"]:
        _write(fd, f"{cg['name']}/cgroup.procs", "0")
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("-1000")
    except OSError:
        pass
    cg["joined"] = True


def create(cg: dict, memory_mb: int, max_processes: int) -> dict:
    """This worker's program cgroup, made once and reused (an rmdir per program costs ~7 ms on v1),
    with the zygote inside; limits written when they change."""
    limits = (int(memory_mb) + ZYGOTE_MEMORY_MB, int(max_processes) + ZYGOTE_PROCESSES)
    if "name" not in cg:
        cg["name"] = f"tcf-{os.getpid()}"
        for fd in cg["dirs"]:
            os.mkdir(cg["name"], 0o755, dir_fd=fd)
    if cg.get("limits") != limits:
        mem = str(limits[0] << 20)
        for fd in cg["dirs"]:
            sub = os.open(cg["name"], os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            try:
                files = set(os.listdir(sub))
                if cg["version"] == 2:
                    _write(sub, "memory.max", mem)
                    if "memory.swap.max" in files:
                        _write(sub, "memory.swap.max", "0")
                    _write(sub, "pids.max", str(limits[1]))
                elif "memory.limit_in_bytes" in files:
                    _write_v1_memory(sub, mem, "memory.memsw.limit_in_bytes" in files)
                elif "pids.max" in files:
                    _write(sub, "pids.max", str(limits[1]))
            finally:
                os.close(sub)
        cg["limits"] = limits
    if not cg.get("joined"):
        _enter_self(cg)
    return {"name": cg["name"], "procs": [], "version": cg["version"], "dirs": cg["dirs"], "cg": cg}


def member_pids(cg: dict) -> list[int] | None:
    """Every process in this worker's cgroup (the zygote and its program's), or None before the
    first :func:`create` or when it cannot be read."""
    if "name" not in cg:
        return None
    try:
        return [int(p) for p in _read(cg["dirs"][0], f"{cg['name']}/cgroup.procs").split()]
    except (OSError, ValueError):
        return None


def cpu_usage_s(cg: dict) -> float | None:
    """CPU seconds used by every process that ever ran in this worker's cgroup (the zygote's
    included, exited processes too: the kernel keeps the sum), or None when not available."""
    if "cpu_dir" not in cg:
        return None
    if "name" not in cg:
        return 0.0  # not made yet: the first create() makes it, starting from nothing
    try:
        fd = cg.get("cpu_fd")
        if fd is None:  # opened once, read from the start each time
            name = "cpu.stat" if cg["version"] == 2 else "cpuacct.usage"
            fd = cg["cpu_fd"] = os.open(f"{cg['name']}/{name}", os.O_RDONLY, dir_fd=cg["dirs"][cg["cpu_dir"]])
        text = os.pread(fd, 4096, 0).decode()
        if cg["version"] == 2:
            for line in text.splitlines():
                key, _, val = line.partition(" ")
                if key == "usage_usec":
                    return int(val) / 1e6
            return None
        return int(text) / 1e9
    except (OSError, ValueError):
        return None


def join(handle: dict) -> None:
    """In the program's process, first thing after fork (already inside, born there): become OOM-killable again."""
    try:
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
    except OSError:
        pass


def close_fds(handle: dict) -> None:
    """In the parent, once the program's process has forked."""
    for fd in handle["procs"]:
        try:
            os.close(fd)
        except OSError:
            pass
    handle["procs"] = []


def _oom_kills(sub: int, version: int) -> int:
    try:
        text = _read(sub, "memory.events" if version == 2 else "memory.oom_control")
    except OSError:
        return 0
    for line in text.splitlines():
        key, _, val = line.partition(" ")
        if key == "oom_kill":
            return int(val)
    return 0


def destroy(handle: dict, reap, sweep: bool = True) -> dict:
    """Kill everything left in the program's cgroup and reap (``reap()``). Returns ``{"oom": bool}``.

    ``sweep=False``: the caller knows nothing of the program is left (no child remained to reap);
    only the OOM counter is read."""
    close_fds(handle)
    oom = False
    for fd in handle["dirs"]:
        try:
            sub = os.open(handle["name"], os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        except OSError:
            continue
        try:
            kills = _oom_kills(sub, handle["version"])
            oom = oom or kills > handle["cg"].get("oom_kills", 0)
            handle["cg"]["oom_kills"] = max(kills, handle["cg"].get("oom_kills", 0))
            for _ in range(1000 if sweep else 0):
                me = os.getpid()
                pids = [int(p) for p in _read(sub, "cgroup.procs").split() if int(p) != me]
                if not pids:
                    break
                for p in pids:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                reap()
                time.sleep(0.001)
        finally:
            os.close(sub)
    return {"oom": oom}
