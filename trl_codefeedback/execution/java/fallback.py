"""Plain ``javac`` + ``java`` per program (mxeval / MultiPL-E style), used only when no worker JVM can start.

Not forge-proof: the program and the test share one JVM, and the run stops at the first failed
check (later checks are ``not_run``). The backend warns once when it falls back to this. Time:
``program_timeout_s`` counts the CPU time of the whole ``java`` process (read from ``/proc``; JVM
start-up, JIT and GC included, unlike the worker JVMs), capped at ``wall_time_factor`` x it in
wall time; ``test_timeout_s`` is not applied separately.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from trl_codefeedback.execution.feedback import Feedback
from trl_codefeedback.execution.java.feedback import compile_feedback, program_feedback
from trl_codefeedback.execution.java.source import build_java_source
from trl_codefeedback.execution.java.split import split_java_main

MIN_HEAP_MB = 256
_JAVAC_ERR_RE = re.compile(r"^(?:.*?)\.java:(\d+): error: (.*)$", re.M)
_EXC_RE = re.compile(r"Exception in thread \"[^\"]*\" ([\w.$]+)(?::\s*(.*))?")
_POLL_S = 0.05


def _process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a live process (all its threads), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _run_limited(cmd: list[str], cwd: str, cpu_limit: float, factor: float) -> tuple[subprocess.CompletedProcess | None, str]:
    """Run ``cmd`` until it ends, uses ``cpu_limit`` CPU seconds, or ``factor`` x that in wall time.

    Returns (the completed process, "") or (None, the timeout message, worded as the Python side's).
    """
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall_cap = time.monotonic() + factor * cpu_limit
    while True:
        try:
            out, err = proc.communicate(timeout=_POLL_S)
            return subprocess.CompletedProcess(cmd, proc.returncode, out, err), ""
        except subprocess.TimeoutExpired:
            pass
        cpu = _process_cpu_s(proc.pid)
        msg = ""
        if cpu is not None and cpu >= cpu_limit:
            msg = f"program exceeded its CPU-time limit of {cpu_limit:g} s"
        elif time.monotonic() >= wall_cap:
            msg = (f"program exceeded its wall-clock cap of {factor * cpu_limit:g} s ({factor:g} x its {cpu_limit:g} s "
                   "CPU-time limit): it was blocked, sleeping or starved of CPU")
        if msg:
            proc.kill()
            proc.communicate()
            return None, msg


def run_plain(javac: str, java: str, job: dict) -> Feedback:
    """One Feedback for ``job`` from one ``javac`` and one ``java Main`` process."""
    t0 = time.monotonic()
    spec = job.get("tests")
    plan = split_java_main(spec["test"]) if spec else None
    source, lines, file = build_java_source(job["code"], plan.source if plan else None)
    total = plan.num_tests if plan else 0
    lim = job["limits"]
    with tempfile.TemporaryDirectory(prefix="tcf-javac-") as d:
        Path(d, f"{file}.java").write_text(source, encoding="utf-8")
        p = subprocess.run([javac, "-nowarn", "-proc:none", "-g", "-d", d, f"{file}.java"], cwd=d, capture_output=True, text=True)
        if p.returncode != 0:
            m = _JAVAC_ERR_RE.search(p.stderr)
            line = int(m.group(1)) if m else None
            resp = {"diagnostics": [{"kind": "error", "code": "compiler.err", "line": line, "column": None,
                                     "message": m.group(2) if m else p.stderr[-500:]}]}
            return compile_feedback(job, resp, lines, time.monotonic() - t0)
        if plan is None:
            return Feedback(status="passed", duration_s=time.monotonic() - t0)
        factor = max(1.0, float(lim.get("wall_time_factor", 4.0) or 4.0))
        r, timeout_msg = _run_limited([java, f"-Xmx{max(MIN_HEAP_MB, lim['memory_mb'])}m", "-cp", d, "Main"], d,
                                      float(lim["program_timeout_s"]), factor)
        if r is None:
            checks = [{"o": "timeout", "type": "Timeout", "msg": timeout_msg}] + [{"o": "not_run"}] * (total - 1)
            return program_feedback(job, checks, time.monotonic() - t0)
    if r.returncode == 0:
        return program_feedback(job, [{"o": "pass"}] * total, time.monotonic() - t0)
    m = _EXC_RE.search(r.stderr)
    etype = m.group(1).rsplit(".", 1)[-1] if m else f"ExitCode{r.returncode}"
    k = next((i for i in range(total) if f"Main.__tcf_check_{i}(Main" in r.stderr), 0)
    cand = [int(x) for x in re.findall(rf"\({re.escape(file)}\.java:(\d+)\)", r.stderr) if int(x) <= lines]
    wrong = etype == "Exception" and not cand
    first = {"o": "fail" if wrong else "error", "type": "WrongAnswer" if wrong else etype,
             "msg": (m.group(2) if m else r.stderr[-500:]) or etype, "line": cand[0] if cand else None}
    return program_feedback(job, [{"o": "pass"}] * k + [first] + [{"o": "not_run"}] * (total - k - 1), time.monotonic() - t0)
