"""One JVM process (candidate worker or trusted oracle) spoken to over its stdin / stdout.

Requests are framed ``key nbytes\\n<bytes>\\n`` blocks ended by ``END\\n``; each reply is one
JSON line. Replies are read with a deadline and a size cap (a JVM that floods its stdout cannot
exhaust this process), and :class:`ChannelError` says why a reply is missing or unusable, so the
caller decides whose fault it is.

Example:
    >>> encode_request({"op": "judge", "key": "k"})
    b'op 5\\njudge\\nkey 1\\nk\\nEND\\n'
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from trl_codefeedback.execution.stderr_tail import StderrTail

LAUNCHER = Path(__file__).resolve().parent / "launcher.py"
SANDBOX_UID_BASE = 5_000_000  # + the JVM's pid; above the Python workers' 200_000 + pid for any pid_max (<= 2**22)
START_TIMEOUT_S = 60.0


class ChannelError(RuntimeError):
    """No usable reply. ``kind``: ``died`` (pipe closed), ``timeout``, ``too_large`` or ``garbage``."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def encode_request(req: dict) -> bytes:
    parts = []
    for k, v in req.items():
        b = v.encode("utf-8", "surrogatepass")
        parts.append(f"{k} {len(b)}\n".encode() + b + b"\n")
    parts.append(b"END\n")
    return b"".join(parts)


class JvmProcess:
    """A JVM started through the sandbox launcher; ``exchange`` sends one request and returns the reply."""

    def __init__(self, label: str, index: int, java: str, classes: Path, main_class: str, jvm_args: list[str], isolate: bool):
        self.label, self.index = label, index
        self.isolation: dict = {}
        self.hello: dict = {}
        self._buf = b""
        cmd = [sys.executable, "-I", str(LAUNCHER), "--uid-base", str(SANDBOX_UID_BASE), "--classes", str(classes)]
        if not isolate:
            cmd.append("--no-isolation")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        if isolate:
            from trl_codefeedback.execution.executor import hidden_data_files_env  # noqa: PLC0415

            env.update(hidden_data_files_env())
        if os.environ.get("JAVA_HOME"):
            env["JAVA_HOME"] = os.environ["JAVA_HOME"]
        jvm = [java, *jvm_args, "-cp", "@CLASSES@", main_class]
        self.proc = subprocess.Popen(cmd + ["--", *jvm], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd="/", close_fds=True, bufsize=0)
        self.stderr = StderrTail(self.proc.stderr)  # the launcher's / JVM's own messages, for start failures
        try:
            self.isolation = self.read_json(START_TIMEOUT_S, 1 << 16)["isolation"]
            self.hello = self.read_json(START_TIMEOUT_S, 1 << 16)
        except (ChannelError, KeyError, TypeError) as e:
            self.kill()
            raise RuntimeError(f"{label} JVM {index} did not start: {e}{self._stderr_note()}") from None
        if not self.hello.get("hello"):
            self.kill()
            raise RuntimeError(f"{label} JVM {index}: {self.hello.get('error')}{self._stderr_note()}")

    def _stderr_note(self) -> str:
        text = self.stderr.text(wait_s=2.0)
        return f"; its stderr: {text[-1500:]}" if text else ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def read_line(self, timeout: float, cap: int) -> bytes:
        """One line (without its newline) within ``timeout`` seconds and ``cap`` bytes, else ChannelError."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            if len(self._buf) > cap:
                raise ChannelError("too_large", f"{self.label} JVM {self.index} sent a reply over {cap} bytes")
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise ChannelError("timeout", f"{self.label} JVM {self.index} did not answer within {timeout:.1f} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise ChannelError("died", f"{self.label} JVM {self.index} is gone (exit code {self.proc.poll()})")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        if len(line) > cap:
            raise ChannelError("too_large", f"{self.label} JVM {self.index} sent a reply over {cap} bytes")
        return line

    def read_json(self, timeout: float, cap: int) -> dict:
        line = self.read_line(timeout, cap)
        try:
            obj = json.loads(line)
        except ValueError:
            raise ChannelError("garbage", f"{self.label} JVM {self.index} sent a line that is not JSON: {line[:80]!r}") from None
        if not isinstance(obj, dict):
            raise ChannelError("garbage", f"{self.label} JVM {self.index} sent JSON that is not an object")
        return obj

    def pending(self) -> bool:
        """Whether the JVM wrote anything nobody asked for (left over from the last request)."""
        return bool(self._buf) or bool(select.select([self.proc.stdout.fileno()], [], [], 0)[0])

    def send(self, req: dict) -> None:
        try:
            self.proc.stdin.write(encode_request(req))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise ChannelError("died", f"{self.label} JVM {self.index} is gone ({e})") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
