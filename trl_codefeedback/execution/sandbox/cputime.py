"""CPU time of the running program, read by the zygote (the parent or subreaper of all its processes).

The zygote runs one program at a time, so every process below it belongs to that program
(orphans are re-parented to the zygote, a child subreaper). A program's CPU time is

* the user + system time of every live (or not yet reaped) process below the zygote, each with
  the time of the children it reaped itself (``/proc/PID/stat`` fields 14-17), plus
* what the zygote's own reaped children used since the program was spawned (``os.times()``).

Threads count (a process's times sum its threads). Nothing here trusts the program: the numbers
come from the kernel. Reading costs one pass over ``/proc`` (about 2 ms for 100 processes), so
the oracle asks only when a test has run for a while (see :mod:`clock`); with a cgroup the zygote
reads only its members (:func:`isolation.program_cpu_s`).

Example::

    base = reaped_children_s()
    ...                                   # fork the program, let it run
    used = descendants_cpu_s(os.getpid()) + reaped_children_s() - base
"""

from __future__ import annotations

import os

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def reaped_children_s() -> float:
    """CPU seconds of this process's reaped children (and what they reaped)."""
    t = os.times()
    return t.children_user + t.children_system


def _stat(pid: int | str) -> tuple[int, int] | None:
    """(ppid, CPU ticks incl. reaped children) of one process; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:  # gone meanwhile
        return None
    # "pid (comm) state ppid ..." — comm may hold spaces and parentheses: split after the last ")".
    rest = data[data.rfind(b")") + 2:].split()
    try:
        return int(rest[1]), sum(int(x) for x in rest[11:15])
    except (IndexError, ValueError):
        return None


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, CPU ticks incl. reaped children) of every process in /proc."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (entry := _stat(name)) is not None:
            table[int(name)] = entry
    return table


def pids_cpu_s(pids: list[int]) -> float:
    """CPU seconds of the given processes (each with its reaped children); gone ones count 0."""
    return sum(entry[1] for entry in map(_stat, pids) if entry is not None) / TICKS_PER_S


def descendants_cpu_s(ancestor: int) -> float:
    """CPU seconds used so far by every process below ``ancestor`` (not counting ``ancestor``)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    ticks, todo = 0, list(children.get(ancestor, ()))
    while todo:
        pid = todo.pop()
        ticks += table[pid][1]
        todo.extend(children.get(pid, ()))
    return ticks / TICKS_PER_S
