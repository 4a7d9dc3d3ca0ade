"""The trusted side's handle on one program process: spawn, ask, time, count, kill.

:class:`ProgramSession` asks the zygote for a sandboxed process, sends it the code, and then
exchanges requests and answers with it (see :mod:`candidate`). Every wait is timed here, outside
the program, by a :class:`~clock.ProgramClock` (the program's own CPU time, read from the kernel by
the zygote, with a wall-clock cap): when a limit is used up the process tree is killed, so a
program that catches a timer cannot carry on. Everything the program prints is drained and counted
here (the output cap); for ``stdio`` tests it is kept for the comparison. What ends a program
early (timeout, output cap, death, a garbled channel) is sticky: :attr:`ProgramSession.ended`
holds the outcome, and every later request fails at once with :class:`ProgramEnded`.

Example (inside the worker)::

    with ProgramSession(zygote_sock, limits, code, mode="calls") as s:
        answer = s.request(None, clock)          # compiled? (the answer to "start")
        s.request({"op": "call", ...}, clock)
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time

try:
    from . import answers, zygote
except ImportError:
    import answers
    import zygote

# A program's answer larger than this is a resource limit. Decoding it costs the trusted side
# about 1 s of CPU per MB at worst (one tiny object per few bytes), outside the program's clocks.
MAX_ANSWER_BYTES = 8 << 20
EXIT_GRACE_S = 0.5  # time a program gets to exit by itself after its last answer (stdio)
CPU_REPLY_WAIT_S = 5.0  # the zygote answers a CPU-time question at once; this only bounds a starved one


class ProgramEnded(BaseException):
    """The program process is gone or was stopped; :attr:`outcome` says how (a test outcome dict).

    A BaseException, so ``except Exception`` in dataset test code does not hide it.
    """

    def __init__(self, outcome: dict):
        super().__init__(outcome.get("msg"))
        self.outcome = outcome


class ZygoteLost(Exception):
    """The zygote went away (its socket closed): the worker must be replaced after this program."""


def limit_outcome(oom: bool, disk: bool) -> dict | None:
    """The outcome of a program the zygote stopped (or saw stopped) for a limit of all its processes."""
    if oom:
        return {"o": "resource", "type": "MemoryError", "msg": "the program went over its memory limit (all its processes together)", "line": None}
    if disk:
        return {"o": "resource", "type": "DiskQuotaExceeded", "msg": "the program's files went over the scratch folder's size or file-count limit", "line": None}
    return None


def _exit_outcome(wait_status: int | None, over_limit: dict | None = None) -> dict:
    """Outcome of a program that ended before its tests were done, from its wait status."""
    if over_limit is not None:
        return over_limit
    if wait_status is None:
        return {"o": "error", "type": "Crash", "msg": "program process ended", "line": None}
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        if sig == signal.SIGXCPU:
            return {"o": "timeout", "type": "Timeout", "msg": "CPU time limit exceeded", "line": None}
        if sig == signal.SIGXFSZ:
            return {"o": "resource", "type": "FileSizeLimitExceeded", "msg": "file size limit exceeded", "line": None}
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return {"o": "error", "type": "Crash", "msg": f"program was killed by signal {name}", "line": None}
    code = os.WEXITSTATUS(wait_status)
    return {"o": "error", "type": "EarlyExit", "msg": f"program exited with status {code} before its tests finished", "line": None}


class ProgramSession:
    """One program process, from spawn to reaped (a context manager)."""

    def __init__(self, zygote_sock: socket.socket, limits: dict, code: str, mode: str = "calls",
                 coverage: bool = False, stdin_data: bytes = b"", keep_output: bool = False, then: list | None = None,
                 start_deadline: float | None = None):
        self.zsock = zygote_sock
        self.limits = limits
        self.code, self.mode, self.coverage = code, mode, coverage
        self.keep_output = keep_output
        self.output = bytearray()
        self.output_count = 0
        self.ended: dict | None = None
        self.exit_status: int | None = None
        self.over_limit: dict | None = None  # the zygote stopped it (memory of all processes, scratch quota)
        self.cpu_s = 0.0  # CPU time of all the program's processes (from the zygote, once it ended)
        self.zygote_lost = False
        self.kill_sent = False
        self._buf = bytearray()  # appends and front deletions are cheap: no copy per chunk
        self._scanned = 0  # no newline in self._buf[:self._scanned]
        # Sending the code may not block past this (the program's wall cap, :attr:`clock.ProgramClock.program_wall_cap`).
        self.start_deadline = start_deadline if start_deadline is not None else time.monotonic() + limits["program_timeout_s"]
        self._spawn(stdin_data, then or [])

    # ------------------------------------------------------------------ set-up and tear-down

    def _spawn(self, stdin_data: bytes, then: list) -> None:
        stdin_fd = os.memfd_create("tcf-stdin", 0)
        view = memoryview(stdin_data)
        while view:
            view = view[os.write(stdin_fd, view):]
        os.lseek(stdin_fd, 0, os.SEEK_SET)
        out_r, out_w = os.pipe()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # stderr is not judged (APPS compares stdout only; a warning must not fail a correct program)
        # and costs nothing to discard.
        err = os.open(os.devnull, os.O_WRONLY)
        try:
            socket.send_fds(self.zsock, [json.dumps({"op": "spawn", "limits": self.limits}).encode()],
                            [stdin_fd, out_w, err, theirs.fileno()])
        except OSError as e:
            raise ZygoteLost(f"the zygote is gone ({e})") from None
        finally:
            os.close(stdin_fd)
            os.close(out_w)
            os.close(err)
            theirs.close()
        self.out_r = out_r
        os.set_blocking(out_r, False)
        self.chan = mine
        self.chan.setblocking(False)
        # Read by the program's process as soon as it exists (the socket buffers it meanwhile).
        self._send({"op": "start", "code": self.code, "mode": self.mode, "coverage": self.coverage, "then": then}, self.start_deadline)

    def close(self) -> None:
        """Kill the program's process tree (if still running) and wait until the zygote reaped it."""
        if self.exit_status is None and not self.zygote_lost:
            try:
                self.close_early()
                msg = self._zygote_message(time.monotonic() + 30.0)
                if msg is not None and "exited" in msg:
                    self._exited(msg)
                else:
                    self.zygote_lost = True
            except OSError:
                self.zygote_lost = True
        self._drain_output()
        self.chan.close()
        os.close(self.out_r)

    def __enter__(self) -> "ProgramSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _zygote_message(self, deadline: float, want_cpu: bool = False) -> dict | None:
        """The zygote's next message by ``deadline`` (None: none, or the zygote is gone).

        Answers to CPU-time questions are skipped unless ``want_cpu`` (a late one may arrive
        after its question was given up on).
        """
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.zsock], [], [], remaining)
            if not ready:
                return None
            try:
                data = self.zsock.recv(zygote.MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                self.zygote_lost = True
                return None
            msg = json.loads(data)
            if want_cpu or "cpu" not in msg or "exited" in msg:
                return msg

    def cpu_seconds(self) -> float | None:
        """CPU time the program's processes used so far (asked of the zygote); None once it ended."""
        if self.exit_status is not None or self.zygote_lost:
            return None
        try:
            self.zsock.send(b'{"op": "cpu"}')
        except OSError:
            self.zygote_lost = True
            return None
        msg = self._zygote_message(time.monotonic() + CPU_REPLY_WAIT_S, want_cpu=True)
        if msg is None:
            return None
        if "exited" in msg:
            self._exited(msg)
            return None
        cpu = msg.get("cpu")
        return float(cpu) if type(cpu) in (int, float) else None

    # ------------------------------------------------------------------ talking to the program

    def _send(self, obj: dict, deadline: float) -> None:
        """Write one request; a program that stops reading cannot block this side past ``deadline``."""
        view = memoryview((json.dumps(obj) + "\n").encode())
        while view:
            try:
                view = view[self.chan.send(view):]
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self.stop({"o": "timeout", "type": "Timeout", "msg": "the program stopped reading its requests", "line": None}) from None
                select.select([], [self.chan], [], remaining)
            except OSError:
                return  # the program is gone: the next read says how

    def stop(self, outcome: dict) -> ProgramEnded:
        """End the program now with ``outcome`` (sticky); returns the exception to raise."""
        if self.ended is None:
            self.ended = outcome
            self.close_early()
        return ProgramEnded(self.ended)

    def close_early(self) -> None:
        if self.exit_status is None and not self.zygote_lost and not self.kill_sent:
            self.kill_sent = True
            try:
                self.zsock.send(b'{"op": "kill"}')
            except OSError:
                self.zygote_lost = True

    def request(self, req: dict | None, clock) -> dict:
        """Send ``req`` (None: just wait for the next answer) and return the program's answer.

        Raises :class:`ProgramEnded` when the program ends, uses up a limit of ``clock`` (a
        :class:`~clock.ProgramClock`), floods its output, or breaks the protocol.
        """
        if self.ended is not None:
            raise ProgramEnded(self.ended)
        if req is not None:
            self._send(req, clock.wall_cap)
        watch = [self.chan, self.out_r, self.zsock]
        while True:
            answer = self._take_line()
            if answer is not None:
                late = clock.verify(time.monotonic())  # over its CPU time by the answer (parallel threads)?
                if late is not None:
                    raise self.stop(late)
                return answer
            now = time.monotonic()
            if now >= clock.next_check:
                timeout = clock.check(now)
                if timeout is not None:
                    raise self.stop(timeout)
                if self.exit_status is None and not self.zygote_lost:
                    continue
            remaining = max(0.0, clock.next_check - time.monotonic())
            ready, _, _ = select.select(watch, [], [], remaining)
            if self.out_r in ready:
                self._drain_output()
                if self.output_count > self.limits["output_bytes"]:
                    raise self.stop({"o": "resource", "type": "OutputLimitExceeded",
                                     "msg": f"output exceeded {self.limits['output_bytes']} bytes", "line": None})
            if self.chan in ready:
                try:
                    chunk = self.chan.recv(1 << 16)
                except BlockingIOError:
                    chunk = None
                except OSError:
                    chunk = b""
                if chunk == b"":
                    self._await_exit()
                    if self.zygote_lost:
                        raise ZygoteLost("the sandbox zygote went away during a program")
                    raise self.stop(_exit_outcome(self.exit_status, self.over_limit))
                if chunk:
                    self._buf += chunk
                    if len(self._buf) > MAX_ANSWER_BYTES:
                        raise self.stop({"o": "resource", "type": "AnswerTooLarge",
                                         "msg": f"the program's answer exceeded {MAX_ANSWER_BYTES} bytes", "line": None})
            if self.zsock in ready or self.exit_status is not None:
                msg = self._zygote_message(time.monotonic()) if self.exit_status is None else None
                if self.zygote_lost:
                    # The zygote is the trusted side's; no program can reach it (another uid or PID
                    # namespace), so losing it is ours: harness_error, and the worker is replaced.
                    raise ZygoteLost("the sandbox zygote went away during a program")
                if msg is not None and "exited" in msg:
                    self._exited(msg)
                if self.exit_status is None:
                    continue  # a late answer to a CPU-time question
                answer = self._take_line()  # an answer sent just before the exit still counts
                if answer is not None and self.over_limit is None:
                    return answer
                raise self.stop(_exit_outcome(self.exit_status, self.over_limit))

    def _take_line(self) -> dict | None:
        nl = self._buf.find(b"\n", self._scanned)
        if nl < 0:
            self._scanned = len(self._buf)
            return None
        line = bytes(self._buf[:nl])
        del self._buf[:nl + 1]
        self._scanned = 0
        try:
            answer = answers.well_formed(json.loads(line))
        except (ValueError, RecursionError):  # garbage, or nesting deep enough to exhaust the parser
            answer = None
        if answer is None:
            raise self.stop({"o": "error", "type": "ProtocolError",
                             "msg": "the program wrote something that is not an answer on the result channel", "line": None})
        return answer

    def _await_exit(self) -> None:
        """The channel closed: wait (briefly) for the zygote's exit report."""
        if self.exit_status is not None or self.zygote_lost:
            return
        msg = self._zygote_message(time.monotonic() + EXIT_GRACE_S)
        if msg is not None and "exited" in msg:
            self._exited(msg)

    def _exited(self, msg: dict) -> None:
        status = msg.get("exited")
        self.exit_status = status if type(status) is int else None
        self.over_limit = limit_outcome(bool(msg.get("oom")), bool(msg.get("disk")))
        cpu = msg.get("cpu")
        self.cpu_s = float(cpu) if type(cpu) in (int, float) else 0.0

    def _drain_output(self) -> None:
        while True:
            try:
                chunk = os.read(self.out_r, 1 << 16)
            except (BlockingIOError, OSError):
                return
            if not chunk:
                return
            self.output_count += len(chunk)
            if self.keep_output and len(self.output) <= self.limits["output_bytes"]:
                self.output += chunk

    def reset_output_count(self) -> None:
        """The output cap is per test."""
        self._drain_output()
        self.output_count = 0
