"""Find the JDK and build the Java side's classes (worker, oracle, value encoding) once per source and JDK.

Example:
    >>> javac, java = find_jdk()                      # doctest: +SKIP
    >>> (service_classes() / "TcfJavaWorker.class").exists()   # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
JAVA_SOURCES = ("TcfCommon.java", "TcfValues.java", "TcfJavaWorker.java", "TcfJavaOracle.java")
ENV_CACHE = "TRL_CODEFEEDBACK_CACHE"
EXPORTS = ("--add-exports", "jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED")
JVM_FLAGS = ("-XX:+UseSerialGC", "-XX:-UsePerfData", "-Xss8m", "-XX:TieredStopAtLevel=1", "-Xshare:auto")
SECURITY_MANAGER_FLAG = "-Djava.security.manager=allow"


class JavaUnavailableError(RuntimeError):
    """No JDK (``javac`` and ``java``) on PATH / in JAVA_HOME."""


def find_jdk() -> tuple[str, str]:
    """Paths of ``javac`` and ``java`` (JAVA_HOME first, then PATH)."""
    home = os.environ.get("JAVA_HOME")
    cands = [os.path.join(home, "bin")] if home else []
    found = []
    for tool in ("javac", "java"):
        path = next((os.path.join(d, tool) for d in cands if os.access(os.path.join(d, tool), os.X_OK)), None) or shutil.which(tool)
        if path is None:
            raise JavaUnavailableError(f"no {tool} found (install a JDK 17 to 23: the Java worker needs a SecurityManager, which JDK 24 removed; or set JAVA_HOME)")
        found.append(os.path.realpath(path))
    return found[0], found[1]


_build_lock = threading.Lock()


def service_classes() -> Path:
    """Compile the package's ``.java`` files once (cached by their hash and the JDK); the class folder."""
    javac, _ = find_jdk()
    sources = [HERE / name for name in JAVA_SOURCES]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources) + javac.encode()).hexdigest()[:16]
    base = Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "trl_codefeedback") / "java"
    marker = "TcfJavaOracle.class"
    with _build_lock:
        if (base / digest / marker).exists():
            return base / digest
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError:  # read-only home: build under the temp dir instead
            base = Path(tempfile.gettempdir()) / f"trl_codefeedback-java-{os.getuid()}"
            if (base / digest / marker).exists():
                return base / digest
            base.mkdir(parents=True, exist_ok=True)
        out = base / digest
        tmp = Path(tempfile.mkdtemp(dir=base, prefix="build-"))
        proc = subprocess.run([javac, *EXPORTS, "-nowarn", "-Xlint:none", "-d", str(tmp), *map(str, sources)], capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"could not compile the Java worker: {proc.stderr[-2000:]}")
        try:
            os.replace(tmp, out)
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
        return out
