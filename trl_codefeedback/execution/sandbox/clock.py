"""When a test or a program has used up its time: its own CPU time, with a wall-clock cap.

A verdict must not depend on how busy the machine is: a correct program that needs 1.2 s of CPU
passes a 3 s limit alone and while other programs share its core. So the limits in
:class:`~trl_codefeedback.execution.Limits` count the program's CPU time (all its processes and
threads, read by the zygote from the kernel: :mod:`cputime`), and the wall clock is only a cap at
``wall_time_factor`` times each limit, so that a sleeping or blocked program still ends. Up to
that much oversubscription, verdicts do not change with load.

Reading the CPU time costs a message to the zygote and a pass over ``/proc``, so :class:`ProgramClock`
reads it only when a test has run for a while: first :data:`PROBE_S` after the test started
(most tests have answered by then), then whenever the remaining budget could have been used.
The CPU time a test used is the CPU time now minus its CPU time at its start, and the latter is
estimated at the first reading as ``cpu - (wall time since the test started)``: a test is charged
at most :data:`PROBE_S` of CPU it did not use (when it was starved during its first
:data:`PROBE_S`), never less than it used. An answer that comes late enough that the
program's threads, running on every core, could have used up the budget left at the last reading
is accepted only after one more reading (:meth:`ProgramClock.verify`): parallel threads cannot
fit more CPU time than the limit between two readings.

Example::

    clock = ProgramClock(limits, read_cpu=session.cpu_seconds, now=time.monotonic())
    clock.start_test(time.monotonic())
    while waiting:
        timeout = clock.check(time.monotonic())   # None, or the timeout outcome
        sleep_until(clock.next_check)
"""

from __future__ import annotations

import os
from typing import Callable

PROBE_S = 0.05  # first CPU reading of a test this long after its start
MIN_RECHECK_S = 0.01
START_GRACE_S = 0.25  # spawning and compiling are not the program's fault
DEFAULT_WALL_TIME_FACTOR = 4.0


def _usable_cores() -> int:
    """Cores a program may run on: the cgroup's cpuset where one is set, else every core (a
    pinned worker's programs could widen their own affinity)."""
    try:
        with open("/sys/fs/cgroup/cpuset.cpus.effective") as f:
            spec = f.read().strip()
        n = 0
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            n += int(hi or lo) - int(lo) + 1
        return max(n, 1)
    except (OSError, ValueError):
        return os.cpu_count() or 1


PARALLELISM = _usable_cores()  # CPU seconds a program can use per wall second, at most


def _fmt(seconds: float) -> str:
    return f"{seconds:g} s"


class ProgramClock:
    """The time limits of one program run, checked from outside it (see the module doc).

    Args:
        limits: the job's limits (``test_timeout_s``, ``program_timeout_s``: CPU seconds;
            ``wall_time_factor``: the wall-clock cap as a multiple of each).
        read_cpu: returns the CPU seconds of the current program process tree, or None when it
            has just ended.
        now: ``time.monotonic()`` at the program's start.
        cpu_before: CPU seconds already used by this program in earlier processes (stdio cases
            each run in a fresh process; the program limit is for all of them).
    """

    def __init__(self, limits: dict, read_cpu: Callable[[], float | None], now: float, cpu_before: float = 0.0):
        self.test_limit = float(limits["test_timeout_s"])
        self.program_limit = float(limits["program_timeout_s"])
        self.factor = float(limits.get("wall_time_factor") or DEFAULT_WALL_TIME_FACTOR)
        self.read_cpu = read_cpu
        self.program_wall_cap = now + self.factor * self.program_limit + START_GRACE_S
        self.cpu_before = cpu_before
        self.known_cpu = 0.0  # CPU of the current process tree at the last reading (a lower bound now)
        self.in_test = False
        self.phase_start = now  # when the current test (or wait between tests) began
        self.test_base: float | None = None
        self.test_wall_cap = self.program_wall_cap
        self.next_check = min(now + max(self.program_limit - cpu_before, 0.0) + START_GRACE_S, self.program_wall_cap)
        self.read_time, self.read_left = float("-inf"), 0.0  # the last CPU reading: when, and the budget left then
        self.started = now

    # ------------------------------------------------------------------ phases

    def start_test(self, now: float) -> None:
        """A test starts now: its CPU and wall limits start counting."""
        self.in_test = True
        self.phase_start = now
        self.test_base = None
        self.test_wall_cap = min(now + self.factor * self.test_limit, self.program_wall_cap)
        self.next_check = min(now + min(PROBE_S, self.test_limit), self.test_wall_cap)

    def whole_program(self, now: float) -> None:
        """Between tests (start-up, stdio): only the program's limits apply."""
        self.in_test = False
        self.phase_start = now
        self.next_check = min(now + max(self._limit_left(), MIN_RECHECK_S), self.program_wall_cap)

    def program_ended_process(self, cpu: float) -> None:
        """A process of the program ended having used ``cpu`` seconds (stdio: one per case)."""
        self.cpu_before += cpu
        self.known_cpu = 0.0

    def over_program_limit(self) -> dict | None:
        """After the program's last process ended: the timeout outcome if, all counted, it used more
        CPU time than its limit (a reading may not have come between its last answers)."""
        if self.cpu_before > self.program_limit:
            return self._timeout("program", f"program exceeded its CPU-time limit of {_fmt(self.program_limit)}")
        return None

    def program_spent(self, now: float) -> bool:
        """The program's own limits are used up (no further stdio case may start)."""
        return self.cpu_before >= self.program_limit or now >= self.program_wall_cap

    def _limit_left(self) -> float:
        """CPU budget of the current wait before any reading in it (a test: its whole limit)."""
        program_left = self.program_limit - self.cpu_before - self.known_cpu
        return min(program_left, self.test_limit) if self.in_test else program_left

    @property
    def wall_cap(self) -> float:
        """The monotonic time at which the current wait ends whatever the CPU time says."""
        return self.test_wall_cap if self.in_test else self.program_wall_cap

    # ------------------------------------------------------------------ checking

    def check(self, now: float) -> dict | None:
        """Called at or after :attr:`next_check`: the timeout outcome, or None (then wait until the
        new :attr:`next_check`)."""
        if now >= self.wall_cap:
            return self._wall_timeout()
        cpu = self.read_cpu()
        if cpu is None:  # the program just ended: the caller sees how
            self.next_check = now + MIN_RECHECK_S
            return None
        before, self.known_cpu = self.known_cpu, max(self.known_cpu, cpu)
        program_left = self.program_limit - self.cpu_before - cpu
        if program_left <= 0:
            return self._timeout("program", f"program exceeded its CPU-time limit of {_fmt(self.program_limit)}")
        left = program_left
        if self.in_test:
            if self.test_base is None:
                # At most the wall time since the start was this test's (a reading taken before
                # the test started is a lower bound of its start too).
                self.test_base = max(cpu - (now - self.phase_start), before)
            test_left = self.test_limit - (cpu - self.test_base)
            if test_left <= 0:
                return self._timeout("test", f"test exceeded its CPU-time limit of {_fmt(self.test_limit)}")
            left = min(left, test_left)
        self.read_time, self.read_left = now, left
        # CPU time cannot run ahead of the wall clock by more than the program's threads: check
        # again when the budget could be used up (a multi-threaded program may overrun by a little).
        self.next_check = min(now + max(left, MIN_RECHECK_S), self.wall_cap)
        return None

    def verify(self, now: float) -> dict | None:
        """An answer arrived: the timeout outcome if the CPU time says the limit was used up, else
        None. Reads the CPU time only when every core since the last reading (or the start of the
        wait) could have used up what was left then, of the test's budget or of the program's
        (many quick tests, each answered before any reading, add up to the program's limit)."""
        since = max(self.phase_start, self.read_time)
        left = self.read_left if self.read_time >= self.phase_start else self._limit_left()
        program_since = max(self.started, self.read_time)
        program_left = self.program_limit - self.cpu_before - self.known_cpu
        if (now - since) * PARALLELISM < left and (now - program_since) * PARALLELISM < program_left:
            return None
        outcome = self.check(now)
        return outcome if outcome is not None and outcome.get("limit") != "wall" else None

    def _wall_timeout(self) -> dict:
        if self.in_test and self.test_wall_cap < self.program_wall_cap:
            what, limit = "test", self.test_limit
        else:
            what, limit = "program", self.program_limit
        return self._timeout("wall", f"{what} exceeded its wall-clock cap of {_fmt(self.factor * limit)} "
                                   f"({self.factor:g} x its {_fmt(limit)} CPU-time limit): it was blocked, sleeping or starved of CPU")

    @staticmethod
    def _timeout(what: str, msg: str) -> dict:
        return {"o": "timeout", "type": "Timeout", "msg": msg, "line": None, "limit": what}
