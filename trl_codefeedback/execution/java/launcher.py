"""Start one Java worker JVM inside the Python sandbox's isolation (stdlib only, run as a script).

Usage: python -I launcher.py --uid-base BASE --classes DIR [--no-isolation] -- java ARGS... TcfJavaWorker

It enters the same namespaces and minimal file-system view as the Python side
(:func:`sandbox.isolation.setup_isolation`, with the JDK bound read-only), copies the worker's
class files into the JVM's private ``/tmp`` (gone with it: no folder left on the host), sets
rlimits, drops to the sandbox uid where possible, installs seccomp filters that deny creating
processes (threads stay allowed) and namespaces (plus :func:`seccomp.deny_escapes`), asks the kernel to kill the JVM when the parent dies, and
``execv``'s the JVM. Without a file-system view the classes are read from the cache folder as is. Before the exec it writes one JSON line with the isolation facts on
stdout, so the parent reads that line, then the JVM's hello line.
"""

from __future__ import annotations

import json
import os
import resource
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "sandbox"))

import isolation
import seccomp

PR_SET_PDEATHSIG = 1
JVM_THREADS = 1024  # RLIMIT_NPROC for the worker's own uid: JVM threads count as processes


def main(argv: list[str]) -> None:
    sep = argv.index("--")
    opts, cmd = argv[:sep], argv[sep + 1:]
    uid = int(opts[opts.index("--uid-base") + 1]) + os.getpid()  # unique among live workers
    classes = opts[opts.index("--classes") + 1]
    isolate = "--no-isolation" not in opts
    # Read the class files now: the isolation may hide the cache folder (e.g. under /root).
    blobs = {}
    for root, _, files in os.walk(classes):
        for f in files:
            path = os.path.join(root, f)
            with open(path, "rb") as fh:
                blobs[os.path.relpath(path, classes)] = fh.read()
    info = {"network": False, "filesystem": False, "pid_namespace": False, "setuid": False, "mode": "none"}
    if isolate:
        java_home = os.path.dirname(os.path.dirname(os.path.realpath(cmd[0])))
        info = isolation.setup_isolation(uid, 256, ro_paths=(java_home,), use_cgroups=False)
        info["pid_namespace"] = False  # the JVM is not put in its own PID namespace
        info["proc_hidden"] = False  # the JVM (and so its programs) sees the host's /proc
    target = classes
    if info.get("filesystem"):
        # A copy the sandbox uid can read, in the JVM's private /tmp (gone with it).
        target = "/tmp/tcf-java-classes"
        for rel, data in blobs.items():
            path = os.path.join(target, rel)
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
            os.chmod(path, 0o644)
        os.chmod(target, 0o755)
    cmd = [target if c == "@CLASSES@" else c for c in cmd]
    os.chdir("/tmp")
    if info.get("setuid"):
        if info.get("filesystem"):
            os.chmod("/tmp", 0o1777)  # the private tmpfs
        resource.setrlimit(resource.RLIMIT_NPROC, (JVM_THREADS, JVM_THREADS))
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    # After the uid change: changing credentials clears the parent-death signal.
    isolation._get_libc().prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if os.getppid() == 1:  # the parent is already gone
        os._exit(1)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))
    sys.stdout.write(json.dumps({"isolation": info}) + "\n")
    sys.stdout.flush()
    if isolate:
        # Programs run as threads of this JVM: none may start a process (ProcessBuilder, Runtime.exec),
        # so nothing a program starts can outlive it. Threads stay allowed.
        seccomp.deny_namespaces(processes=True)
        info["no_fork"] = True
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}
    if os.environ.get("JAVA_HOME"):
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    os.execve(cmd[0], cmd, env)


if __name__ == "__main__":
    main(sys.argv[1:])
