"""Ray backend: the same sandboxed workers as Ray actors, on a real local Ray cluster (2 CPUs).

No mocks: Ray places real actors, each runs a real sandboxed Executor; the local pool (the
session ``executor`` fixture) is the reference the Ray results must match.
"""

from __future__ import annotations

import itertools
import shutil
import sys
import threading
import time

import pytest

ray = pytest.importorskip("ray", reason="the Ray backend needs pip install 'trl-codefeedback[ray]'")

from trl_codefeedback.execution import Limits, Program, Status, TestSpecError  # noqa: E402
from trl_codefeedback.execution.ray_backend import RayExecutor  # noqa: E402

T = {"kind": "asserts", "asserts": ["assert f(1) == 2", "assert f(2) == 3", "assert f(0) == 1"]}
MIXED = [
    Program("def f(x):\n    return x + 1\n", T),  # passed
    Program("def f(x):\n    return x + (x == 1)\n", T),  # failed 1/3
    Program("def f(x):\n    y = x\n    return [y][x + 3]\n", T),  # runtime error, line 3
    Program("def f(x):\n    return x +* 1\n", T),  # syntax error, line 2
    Program("def f(x):\n    while True:\n        pass\n", T),  # timeout
    Program("def f(x):\n    return 2 if x == 1 else 0\n", T),  # failed 1/3
    Program("import nope_not_a_module\ndef f(x):\n    return x + 1\n", T),  # import error, line 1
    Program("def f(x):\n    return x + 1\n", T),  # duplicate of the first
]
FIELDS = ("status", "tests_passed", "tests_total", "test_outcomes", "error_type", "error_line", "error_scope")


def same(a, b) -> dict:
    """The fields that differ between two Feedback records (empty: the same verdict)."""
    return {f: (getattr(a, f), getattr(b, f)) for f in FIELDS if getattr(a, f) != getattr(b, f)}


_fresh = itertools.count()


def fresh() -> Program:
    """A passing program never run before (so never a cache hit)."""
    return Program(f"def f(x):\n    return x + 1 + 0 * {next(_fresh)}\n", T)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(cond, timeout: float, step: float = 0.2) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 CPUs for this module, shut down after it (no process left behind)."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_batch_gives_the_same_feedback_as_the_local_pool(ray_cluster, executor):
    limits = Limits(test_timeout_s=2.0, program_timeout_s=6.0)
    expected = executor.run(MIXED, limits=limits)
    with RayExecutor(workers=2, limits=limits, chunk_size=2) as rex:
        got = rex.run(MIXED, progress=True)
        assert len(rex.nodes) == 1 and sum(rex.nodes.values()) == 2  # two actors, placed by Ray on this node
        assert rex.isolation["mode"] == executor.isolation["mode"]  # the same sandbox, set up on the actor's node
        again = rex.run(MIXED)  # all from the driver-side cache
        stats = dict(rex.stats)
    assert [fb.status for fb in got] == [
        Status.PASSED, Status.FAILED, Status.RUNTIME_ERROR, Status.COMPILE_ERROR,
        Status.TIMEOUT, Status.FAILED, Status.RUNTIME_ERROR, Status.PASSED,
    ]
    for i, (r, loc) in enumerate(zip(got, expected)):
        assert same(r, loc) == {}, (i, MIXED[i].code)
    assert got[2].error_line == 3 and got[3].error_line == 2 and got[6].error_line == 1
    assert all(fb.cached for fb in again) and [same(a, b) for a, b in zip(again, got)] == [{}] * len(MIXED)
    assert stats["programs"] == 2 * len(MIXED) and stats["cache_hits"] == len(MIXED)  # the second run: all hits
    assert stats["harness_errors"] == 0


def test_malformed_spec_raises_on_the_driver_before_anything_runs(ray_cluster):
    rex = RayExecutor(workers=1)
    try:
        with pytest.raises(TestSpecError, match="program 1"):
            rex.run([MIXED[0], Program("def f(x):\n    return x\n", {"kind": "no_such_kind"})])
        assert rex.actors == []  # validation needs no actor: none was started
    finally:
        rex.close()


def test_killed_ray_actor_fails_only_its_programs_and_is_replaced(ray_cluster, executor):
    limits = Limits(test_timeout_s=90.0, program_timeout_s=100.0)
    slow = Program("import time\ndef f(x):\n    time.sleep(60)\n    return x + 1\n", T)
    quick = [p for p in MIXED if "while True" not in p.code]  # no timeouts under these long limits
    batch = [slow, *quick, *(Program(f"def f(x):\n    return x + {k}\n", T) for k in range(2, 6))]
    expected = executor.run(batch[1:], limits=limits)
    rex = RayExecutor(workers=2, limits=limits, chunk_size=1)
    try:
        rex.run(quick[:1])  # start both actors before the batch
        out: dict = {}
        runner = threading.Thread(target=lambda: out.update(fbs=rex.run(batch)), daemon=True)
        runner.start()
        assert wait_until(lambda: any(0 in a["programs"] for a in rex.in_flight()), 60), rex.in_flight()
        time.sleep(1.0)  # let the slow program start in its sandbox
        [victim] = [a for a in rex.in_flight() if 0 in a["programs"]]
        held = set(victim["programs"])
        pids = [victim["pid"], *victim["worker_pids"]]
        t0 = time.monotonic()
        ray.kill(victim["handle"])
        runner.join(120)
        assert not runner.is_alive(), "the batch did not finish after its actor was killed"
        assert time.monotonic() - t0 < 60  # did not wait for the slow program
        fbs = out["fbs"]
        errors = {i for i, fb in enumerate(fbs) if fb.status is Status.HARNESS_ERROR}
        assert errors == held and 0 in errors  # its programs, and only those
        assert all(fbs[i].tests_total == 3 and "died" in fbs[i].error_message for i in errors)
        for i, fb in enumerate(fbs[1:], start=1):
            if i not in errors:
                assert same(fb, expected[i - 1]) == {}, (i, batch[i].code)
        assert rex.stats["worker_restarts"] == 1
        # The killed actor's sandboxed workers died with it (nothing left running).
        assert wait_until(lambda: not any(alive(p) for p in pids), 15), [p for p in pids if alive(p)]
        # The next batch works, also the programs that failed (harness errors are not cached)...
        retry = [p for i, p in enumerate(batch) if i in errors and i != 0]
        fbs2 = rex.run(quick + retry)
        assert all(fb.status is not Status.HARNESS_ERROR for fb in fbs2)
        # ... and the pool is back to two actors once the replacement has started.
        assert wait_until(lambda: rex.run([fresh()])[0].passed and len(rex.actors) == 2, 90), rex.in_flight()
    finally:
        rex.close()


def test_executor_backend_ray_runs_on_the_ray_pool(ray_cluster):
    from trl_codefeedback.execution import Executor

    with Executor(workers=2, backend="ray", limits=Limits(test_timeout_s=2.0, program_timeout_s=6.0)) as ex:
        assert isinstance(ex._remote, RayExecutor)
        fbs = ex.run(MIXED[:4])
        assert [fb.status for fb in fbs] == [Status.PASSED, Status.FAILED, Status.RUNTIME_ERROR, Status.COMPILE_ERROR]
        assert sum(ex._remote.nodes.values()) == 2 and ex.isolation["mode"]
        assert ex.run(MIXED[:1])[0].cached
        assert ex.stats["programs"] == 5 and ex.stats["cache_hits"] == 1  # counted on the Executor itself
    assert ex._remote.actors == []  # closed with it


@pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None, reason="needs a JDK")
def test_java_programs_run_on_the_actors_too(ray_cluster, executor):
    header = "class Add {\n"
    spec = {"kind": "java_main", "test": (
        "class Main {\n    public static void main(String[] args) throws Exception {\n"
        "        int x0 = Add.add(1, 2);\n"
        "        if (!(x0 == 3)) {\n            throw new java.lang.Exception(\"test case 0 did not pass\");\n        }\n"
        "    }\n}\n")}
    batch = [
        Program(header + "    static int add(int a, int b) {\n        return a + b;\n    }\n}\n", spec, language="java"),
        Program(header + "    static int add(int a, int b) {\n        return a - b;\n    }\n}\n", spec, language="java"),
        Program(header + "    static int add(int a, int b) {\n        return a +* b;\n    }\n}\n", spec, language="java"),
        MIXED[0],  # and a Python program in the same batch
    ]
    expected = executor.run(batch)
    with RayExecutor(workers=2) as rex:
        got = rex.run(batch)
    assert [fb.status for fb in got] == [Status.PASSED, Status.FAILED, Status.COMPILE_ERROR, Status.PASSED]
    assert [same(a, b) for a, b in zip(got, expected)] == [{}] * len(batch)


def test_close_leaves_no_process_behind(ray_cluster):
    rex = RayExecutor(workers=2)
    rex.run(MIXED[:2])
    pids = [p for a in rex.in_flight() for p in (a["pid"], *a["worker_pids"])]
    assert len(pids) >= 4
    rex.close()
    rex.close()  # idempotent
    assert wait_until(lambda: not any(alive(p) for p in pids), 20), [p for p in pids if alive(p)]
    with pytest.raises(RuntimeError, match="closed"):
        rex.run([fresh()])


def test_default_size_is_the_free_cpus_or_this_ranks_share(ray_cluster, monkeypatch):
    from trl_codefeedback.execution.ray_backend import default_actor_count

    assert wait_until(lambda: ray.available_resources().get("CPU") == 2, 30)  # earlier tests' actors gone
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert default_actor_count(ray) == 2 and default_actor_count(ray, workers_per_actor=2) == 1
    monkeypatch.setenv("WORLD_SIZE", "2")  # two ranks, each its own pool: one CPU each
    assert default_actor_count(ray) == 1


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does where Ray is not installed
    with pytest.raises(ImportError, match=r"pip install '\.\[ray\]'"):
        RayExecutor()
