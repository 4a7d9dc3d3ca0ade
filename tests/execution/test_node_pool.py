"""One executor per node: ranks share one service (real processes, no mocks).

* two accelerate ranks (CPU, gloo) score through the default executor: one set of workers, the
  verdicts of a single-process run;
* a rank killed mid-batch costs the other rank nothing;
* a service killed mid-batch gives harness_error for the in-flight programs, and the next batch
  starts a new service;
* the service exits once the last client has left (after its grace period).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

from trl_codefeedback.execution import Executor, Program, Status
from trl_codefeedback.execution.executor import default_backend
from trl_codefeedback.execution.node_client import NodeClient
from trl_codefeedback.execution.node_service import node_paths

REPO = Path(__file__).resolve().parents[2]
CORES = len(os.sched_getaffinity(0))
ADD = {"kind": "asserts", "asserts": ["assert f(1) == 2", "assert f(2) == 3"]}
VERDICT_FIELDS = ("status", "tests_passed", "tests_total", "error_type", "error_line", "error_scope", "test_outcomes")


def _env(node_id: str, grace_s: float = 3.0) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["TCF_NODE_ID"] = node_id
    env["TCF_NODE_GRACE_S"] = str(grace_s)
    return env


def _sleeper(seconds: float, tag: str) -> Program:
    return Program(f"import time\n# {tag}\ndef f(x):\n    time.sleep({seconds})\n    return x + 1\n", ADD)


def _top_workers(roots: set[int]) -> set[int]:
    """Worker processes (sandbox/worker_main.py; not their forked zygotes / programs) under ``roots``."""
    found = set()
    for p in psutil.process_iter(["pid", "ppid", "cmdline"]):
        try:
            if not any("worker_main.py" in a for a in p.info["cmdline"] or ()):
                continue
            parent = psutil.Process(p.info["ppid"])
            if any("worker_main.py" in a for a in parent.cmdline()):
                continue  # a zygote or program forked by a worker
            if {a.pid for a in p.parents()} & roots:
                found.add(p.info["pid"])
        except (psutil.Error, TypeError):
            continue
    return found


def _service_pids(node_id: str) -> set[int]:
    sock = str(node_paths(True, node_id).socket)
    out = set()
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = p.info["cmdline"] or ()
        if "trl_codefeedback.execution.node_service" in cmd and sock in cmd:
            out.add(p.info["pid"])
    return out


def _wait_gone(pids, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]:
            return True
        time.sleep(0.1)
    return False


def _verdict(fb) -> dict:
    d = fb.to_dict()
    return {k: d[k] for k in VERDICT_FIELDS}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_backend_selection(monkeypatch):
    monkeypatch.delenv("TCF_EXECUTOR_BACKEND", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_backend() == "local"
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert default_backend() == "local"
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert default_backend() == "node"
    monkeypatch.setenv("TCF_EXECUTOR_BACKEND", "local")
    assert default_backend() == "local"
    assert Executor().backend == "local" and Executor()._remote is None  # the default stays this process's pool
    with pytest.raises(ValueError, match="unknown executor backend"):
        Executor(backend="nope")


RANK_SCRIPT = textwrap.dedent('''
    import json, os, sys
    from trl_codefeedback.execution import Program, get_default_executor
    from trl_codefeedback.feedback import UnitTestReward

    rank = int(os.environ["RANK"])
    ADD = {"kind": "asserts", "asserts": ["assert f(1) == 2", "assert f(2) == 3"]}
    programs = [  # the same for both ranks (one run serves both) ...
        Program("def f(x):\\n    return x + 1\\n", ADD),
        Program("def f(x):\\n    return 2\\n", ADD),
        Program("def f(x):\\n    return y\\n", ADD),
        Program("def f(x) return x\\n", ADD),
        Program("print(int(input()) * 2)", {"kind": "stdio", "cases": [{"input": "3\\n", "output": "6\\n"}]}),
    ] + [  # ... and each rank's own, slow enough to watch the workers
        Program(f"import time\\n# rank {rank} program {i}\\ndef f(x):\\n    time.sleep(0.4)\\n    return x + 1\\n", ADD)
        for i in range(6)
    ]
    ex = get_default_executor()
    assert ex.backend == "node", ex.backend
    fbs = ex.run(programs)
    completions = ["```python\\n" + p.code + "\\n```" for p in programs if p.tests is ADD]
    rewards = UnitTestReward(mode="adaptive")(prompts=[""] * len(completions), completions=completions,
                                              tests=[json.dumps(ADD)] * len(completions))
    json.dump({"programs": [[p.code, p.tests] for p in programs], "feedback": [fb.to_dict() for fb in fbs],
               "rewards": rewards, "service_pid": ex._remote.service_pid},
              open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w"))
''')


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="needs accelerate")
def test_two_accelerate_ranks_share_one_pool(tmp_path):
    node_id = f"test-accel-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    env = _env(node_id, grace_s=4.0)
    env["ACCELERATE_USE_CPU"] = "1"
    env.pop("TCF_EXECUTOR_BACKEND", None)  # chosen from LOCAL_WORLD_SIZE=2
    cmd = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(_free_port()), str(script), str(tmp_path)]
    launcher = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: set[int] = set()
    most = 0
    while launcher.poll() is None:
        now = _top_workers({launcher.pid} | _service_pids(node_id))
        seen |= now
        most = max(most, len(now))
        time.sleep(0.1)
    log = launcher.stdout.read()
    assert launcher.returncode == 0, log
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]

    # One pool: one set of workers (= cores), one service, both ranks its clients.
    assert most == CORES, (most, seen)
    assert len(seen) == CORES, seen
    assert ranks[0]["service_pid"] == ranks[1]["service_pid"]
    # It outlives the ranks, then leaves after its grace period, with its workers.
    service = ranks[0]["service_pid"]
    assert psutil.pid_exists(service)
    assert _wait_gone([service, *seen], timeout=15), "the node service (or a worker) did not exit after the grace period"
    assert not node_paths(True, node_id).socket.exists()

    # The verdicts of a single process scoring the same batch.
    with Executor(workers=2) as local:
        for r in ranks:
            programs = [Program(code, tests) for code, tests in r["programs"]]
            assert [_verdict(fb) for fb in local.run(programs)] == [
                {k: d[k] for k in VERDICT_FIELDS} for d in r["feedback"]]
    assert ranks[0]["rewards"][:4] == pytest.approx([1.0, -0.3 + 1.3 * 0.5, -0.6, -1.0])
    assert [d["status"] for d in ranks[0]["feedback"][5:]] == ["passed"] * 6


VICTIM = textwrap.dedent('''
    import os
    from trl_codefeedback.execution import Executor, Program
    ADD = {"kind": "asserts", "asserts": ["assert f(1) == 2", "assert f(2) == 3"]}
    with Executor(backend="node") as ex:
        ex.run([Program(f"import time\\n# victim {i}\\ndef f(x):\\n    time.sleep(0.5)\\n    return x + 1\\n", ADD)
                for i in range(12)])
''')


def test_killing_a_rank_mid_batch_loses_nothing_of_the_other(tmp_path, monkeypatch):
    node_id = f"test-killrank-{uuid.uuid4().hex[:8]}"
    client = NodeClient(node_id=node_id, grace_s=2.0)
    try:
        assert client.run([Program("print(1)", None)])[0].status is Status.PASSED  # starts the service
        started = client.service_stats()["stats"]["programs"]
        script = tmp_path / "victim.py"
        script.write_text(VICTIM)
        victim = subprocess.Popen([sys.executable, str(script)], env=_env(node_id, 2.0), cwd=tmp_path)
        deadline = time.monotonic() + 30
        while client.service_stats()["stats"]["programs"] < started + CORES:  # the victim's programs are running
            assert victim.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        batch = [
            Program("def f(x):\n    return x + 1\n", ADD),
            Program("def f(x):\n    return 2\n", ADD),
            Program("def f(x):\n    raise KeyError(x)\n", ADD),
            Program("def f(x:\n", ADD),
        ] + [_sleeper(0.3, f"survivor {i}") for i in range(4)]
        got: list = []
        survivor = threading.Thread(target=lambda: got.extend(client.run(batch)))
        survivor.start()
        time.sleep(0.3)
        victim.send_signal(signal.SIGKILL)  # mid-batch: its programs run or wait in the queue
        victim.wait()
        survivor.join(timeout=60)
        assert not survivor.is_alive()
        assert [(fb.status, fb.tests_passed) for fb in got] == [
            (Status.PASSED, 2), (Status.FAILED, 1), (Status.RUNTIME_ERROR, 0), (Status.COMPILE_ERROR, 0)] + [(Status.PASSED, 2)] * 4
        assert got[2].error_type == "KeyError"
        assert client.run([Program("print(2)", None)])[0].status is Status.PASSED  # the service carries on
        service = client.service_pid
    finally:
        client.close()
    assert _wait_gone([service], timeout=10), "the service outlived its last client"


def test_killing_the_service_mid_batch(tmp_path):
    node_id = f"test-killsvc-{uuid.uuid4().hex[:8]}"
    client = NodeClient(node_id=node_id, grace_s=2.0)
    try:
        client.run([Program("print(1)", None)])
        old = client.service_pid
        old_workers = _top_workers({old})
        assert len(old_workers) == CORES
        threading.Timer(1.0, os.kill, (old, signal.SIGKILL)).start()
        fbs = client.run([_sleeper(3.0, f"doomed {i}") for i in range(4)])
        assert [fb.status for fb in fbs] == [Status.HARNESS_ERROR] * 4
        assert all("node executor service died" in fb.error_message and fb.tests_total == 2 for fb in fbs)
        assert client.stats["harness_errors"] == 4
        assert _wait_gone(old_workers, timeout=10), "the killed service's workers outlived it"
        fbs = client.run([Program("def f(x):\n    return x + 1\n", ADD)])  # restarts the service
        assert fbs[0].status is Status.PASSED and fbs[0].tests_passed == 2
        assert client.service_pid not in (None, old)
        assert _service_pids(node_id) == {client.service_pid}
        service = client.service_pid
    finally:
        client.close()
    assert _wait_gone([service], timeout=10), "the restarted service outlived its last client"


def test_service_exits_after_the_last_client_leaves():
    node_id = f"test-grace-{uuid.uuid4().hex[:8]}"
    a, b = NodeClient(node_id=node_id, grace_s=1.0), NodeClient(node_id=node_id, grace_s=1.0)
    a.run([Program("print(1)", None)])
    b.run([Program("print(2)", None)])
    service = a.service_pid
    assert b.service_pid == service
    assert b.service_stats()["connections"] == 2
    a.close()
    time.sleep(2.5)
    assert psutil.pid_exists(service), "the service left while a client was still connected"
    assert b.run([Program("print(3)", None)])[0].status is Status.PASSED
    b.close()
    assert _wait_gone([service], timeout=10)
    assert not node_paths(True, node_id).socket.exists()


def test_executor_node_backend_runs_java_and_checks_specs(monkeypatch):
    node_id = f"test-java-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TCF_NODE_ID", node_id)
    monkeypatch.setenv("TCF_NODE_GRACE_S", "1")
    with Executor(backend="node") as ex:
        with pytest.raises(Exception, match="unknown tests kind"):
            ex.run([Program("x = 1", {"kind": "nope"})])
        programs = [Program("def f(x):\n    return x + 1\n", ADD), Program("def f(x):\n    return x + 1\n", ADD)]
        if shutil.which("javac") and shutil.which("java"):
            test = ("class Main {\n    public static void main(String[] args) throws Exception {\n        int x0 = Add.add(1, 2);\n"
                    "        if (!(x0 == 3)) {\n            throw new java.lang.Exception(\"failed\");\n        }\n    }\n}\n")
            programs.append(Program("class Add {\n    static int add(int a, int b) { return a + b; }\n}\n",
                                    {"kind": "java_main", "test": test}, language="java"))
        fbs = ex.run(programs)
        assert [fb.status for fb in fbs] == [Status.PASSED] * len(programs)
        assert ex.run(programs[:1])[0].cached  # the service's cache
        assert ex.isolation.get("network") is True
        service = ex._remote.service_pid
    assert _wait_gone([service], timeout=10) and not _service_pids(node_id)


def test_a_new_service_sweeps_files_of_finished_jobs():
    old = node_paths(True, f"test-old-{uuid.uuid4().hex[:8]}")
    recent = node_paths(True, f"test-recent-{uuid.uuid4().hex[:8]}")
    for p in (old.lock, old.log, recent.lock, recent.log):
        p.parent.mkdir(mode=0o700, exist_ok=True)
        p.write_text("")
    two_days_ago = time.time() - 2 * 86400
    for p in (old.lock, old.log):
        os.utime(p, (two_days_ago, two_days_ago))
    client = NodeClient(node_id=f"test-sweep-{uuid.uuid4().hex[:8]}", grace_s=1.0)
    try:
        assert client.run([Program("print(1)", None)])[0].status is Status.PASSED
    finally:
        client.close()
    assert not old.lock.exists() and not old.log.exists()
    assert recent.lock.exists() and recent.log.exists()  # another job's, younger than a day: kept
    recent.lock.unlink()
    recent.log.unlink()
