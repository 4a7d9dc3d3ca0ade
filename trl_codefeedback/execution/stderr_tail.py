"""The last few KB a worker process wrote to its stderr, for the error raised when it fails to start or dies.

A daemon thread drains the pipe (so the worker never blocks on a full pipe, whatever its
programs write) and keeps only the tail in memory.

Example:
    >>> import subprocess, sys
    >>> p = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit('boom')"], stderr=subprocess.PIPE)
    >>> tail = StderrTail(p.stderr)
    >>> p.wait()
    1
    >>> tail.text(wait_s=5)
    'boom'
"""

from __future__ import annotations

import os
import threading
from typing import IO


class StderrTail:
    """Drains ``stream`` in a daemon thread and keeps its last ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int = 4096) -> None:
        self._limit = limit
        self._buf = b""
        self._lock = threading.Lock()
        self._fd = stream.fileno()
        self._stream = stream  # keeps the pipe open while the thread reads it
        self._thread = threading.Thread(target=self._drain, daemon=True, name="tcf-worker-stderr")
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            with self._lock:
                self._buf = (self._buf + chunk)[-self._limit :]
        try:
            self._stream.close()
        except OSError:
            pass

    def text(self, wait_s: float = 0.0) -> str:
        """The tail as text, stripped; ``wait_s`` waits that long for the writer's end of the pipe to close."""
        if wait_s > 0:
            self._thread.join(wait_s)
        with self._lock:
            return self._buf.decode("utf-8", "replace").strip()
