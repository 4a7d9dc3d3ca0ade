"""Can Java programs be sandboxed on this host? A cheap answer before any JVM starts.

The worker JVMs need a mount and a network namespace (Landlock mode covers Python programs
only, see docs/java.md). :func:`java_sandbox_refusal` asks a short-lived interpreter to make
them, as the Java launcher would, and returns the refusal the Java backend would raise at its
first program, so a trainer can stop while it is being built instead of after the model has
loaded and generated.

Example::

    message = java_sandbox_refusal(isolate=True)   # None where namespaces can be made
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from trl_codefeedback.execution.sandbox import policy

SANDBOX_DIR = Path(__file__).resolve().parents[1] / "sandbox"
PROBE = (
    "import json, sys; sys.path.insert(0, sys.argv[1]); import isolation\n"
    "info = {'errors': [], 'mode': 'none', 'network': False, 'filesystem': False, 'pid_namespace': False, 'setuid': False}\n"
    "ok = isolation._enter_namespaces(info)\n"
    "print(json.dumps({'ok': ok, 'mode': info['mode'], 'errors': info['errors']}))\n"
)


def java_sandbox_refusal(isolate) -> str | None:
    """The Java backend's refusal message on this host, or None when it will not refuse (namespaces
    can be made, isolation is off, or weak isolation was asked for)."""
    if not isolate or policy.weak_allowed(isolate):
        return None
    try:
        proc = subprocess.run([sys.executable, "-I", "-c", PROBE, str(SANDBOX_DIR)], capture_output=True, text=True, timeout=30)
        facts = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None  # cannot tell: the backend decides at its first program
    if facts.get("ok"):
        return None
    info = {"mode": "none", "network": False, "filesystem": False, "pid_namespace": False, "setuid": False,
            "errors": facts.get("errors", [])}
    return policy.refusal_message(info, language="java")
