"""A long-lived worker process spoken to in JSON lines over its stdin/stdout (Python and Java workers).

Subclasses start ``self.proc`` and give ``self.label`` / ``self.index``; this class reads lines
with a timeout, exchanges one request for one reply, and kills the process.
"""

from __future__ import annotations

import json
import select
import subprocess


class LineWorkerProcess:
    label = "worker"

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: subprocess.Popen | None = None

    def _readline(self, timeout: float) -> bytes | None:
        """One line from the worker, or None when it sends nothing within ``timeout`` (or is gone)."""
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline() or None

    def _exchange(self, line: bytes, timeout: float) -> dict:
        """Send one request line, return the reply; RuntimeError when the worker is gone or hangs."""
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise RuntimeError(f"{self.label} worker {self.index} is gone ({e})") from None
        reply = self._readline(timeout)
        if reply is None:
            raise RuntimeError(f"{self.label} worker {self.index} died or hung (exit code {self.proc.poll()})")
        return json.loads(reply)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
