"""What the sandbox must guarantee before it runs anything, and what to tell the user when it cannot.

Fail closed: :func:`enforce` raises :class:`SandboxUnavailableError` when a required guarantee is
missing, with what is missing, why, and how to get it; ``Executor(isolate="weak")`` or the
environment variable ``TCF_ISOLATION=weak`` opts in to running with what the host allows (then
the calling process, which holds the trainer's secrets, is made non-dumpable so programs running
as the same uid cannot read ``/proc/<pid>/environ`` or ``/proc/<pid>/mem``).

Example:
    >>> missing({"network": True, "filesystem": True, "pid_namespace": True, "setuid": False})
    []
    >>> missing({"network": False, "filesystem": False, "pid_namespace": False, "setuid": False})
    ['network', 'filesystem', 'processes']
"""

from __future__ import annotations

import os
import warnings

ENV_VAR = "TCF_ISOLATION"
HOW = (
    "To get them, any one of: (1) enable unprivileged user namespaces "
    "(sysctl user.max_user_namespaces=15000; on Debian/Ubuntu also kernel.unprivileged_userns_clone=1 "
    "and, on Ubuntu 24.04+, kernel.apparmor_restrict_unprivileged_userns=0); (2) run as root in a "
    "container that has CAP_SYS_ADMIN (docker run --cap-add SYS_ADMIN --security-opt seccomp=unconfined, "
    "or --privileged); (3) a kernel with Landlock in its lsm= list (Linux 6.2+ as root, 6.12+ otherwise; "
    "older Docker releases also block its system calls in their seccomp profile): Python programs are then "
    "confined by Landlock where no namespace can be made. "
    "To run anyway with weaker isolation (time, memory and output limits, a scrubbed environment, "
    "no process creation where no cgroup is available, but programs can reach the network and "
    "read and write files your user can, your data sets included): Executor(isolate='weak') or TCF_ISOLATION=weak. See docs/sandbox.md."
)
REASONS = {
    "network": "no network namespace: programs could connect to loopback and outside services",
    "filesystem": "no mount namespace: programs could read the data sets and the project, and write any file your user can",
    "processes": "no PID namespace and no dedicated uid: programs could signal the trainer and outlive their run",
}


_warned = False


class SandboxUnavailableError(RuntimeError):
    """The host cannot give the sandbox's required guarantees and weak isolation was not asked for."""


def missing(info: dict) -> list[str]:
    """Required guarantees that do not hold on this host (in REASONS order)."""
    have = {
        "network": bool(info.get("network")),
        "filesystem": bool(info.get("filesystem")),
        "processes": bool(info.get("pid_namespace") or info.get("setuid") or info.get("processes_contained")),
    }
    return [k for k in REASONS if not have[k]]


def weak_allowed(isolate) -> bool:
    return isolate == "weak" or os.environ.get(ENV_VAR, "").strip().lower() == "weak"


JAVA_NOTE = ("  Java programs need a mount and a network namespace: Landlock mode, which confines Python programs "
             "where no namespace can be made, does not cover the worker JVMs. Options (1) and (2) below, or weak isolation "
             "(Python programs stay under Landlock where it holds).")


def refusal_message(info: dict, language: str = "python") -> str:
    what = "Java programs" if language == "java" else "untrusted programs"
    lines = [f"trl_codefeedback sandbox: refusing to run {what} on this host (mode={info.get('mode')}):"]
    lines += [f"  - {REASONS[k]}" for k in missing(info)]
    errors = info.get("errors") or []
    # Landlock was there but could not be used: that reason is the one to act on.
    lines += [f"  Landlock mode is not possible here: {e.split(':', 1)[1].strip()}" for e in errors if e.startswith("landlock:")]
    others = [e for e in errors if not e.startswith("landlock:")]
    if others:
        lines.append("  why: " + "; ".join(others))
    if language == "java":
        lines.append(JAVA_NOTE)
    lines.append(HOW)
    return "\n".join(lines)


def enforce(info: dict, isolate, language: str = "python") -> None:
    """Raise unless every required guarantee holds or weak isolation was asked for (then warn once)."""
    gaps = missing(info)
    if not gaps:
        return
    if not weak_allowed(isolate):
        raise SandboxUnavailableError(refusal_message(info, language))
    try:
        from . import oscalls
    except ImportError:  # pragma: no cover - run as a script
        import oscalls
    try:
        oscalls.set_non_dumpable()
    except OSError:
        pass
    global _warned
    if _warned:
        return
    _warned = True
    warnings.warn(
        f"trl_codefeedback sandbox: running with weak isolation (mode={info.get('mode')}), missing: {', '.join(gaps)}. "
        "This process was made non-dumpable so programs cannot read its environment. See docs/sandbox.md.",
        RuntimeWarning,
        stacklevel=3,
    )
