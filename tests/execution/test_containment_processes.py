"""Containment, processes and limits: nothing left running, aggregate memory, file size, stdlib programs pass."""

import pytest
from containment_probe import MODES, needs_root, run_mode  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("needs_root")


@pytest.mark.parametrize("mode", MODES)
def test_correct_programs_importing_stdlib_modules_pass(mode):
    r = run_mode(mode)
    if not r["refused"]:
        assert r["programs"]["stdlib"]["status"] == "passed", r["programs"]["stdlib"]
        # ... and one that starts a thread while the trainer runs 150 (RLIMIT_NPROC counts threads)
        assert r["programs"]["threads"]["status"] == "passed", r["programs"]["threads"]


@pytest.mark.parametrize("mode", MODES)
def test_nothing_left_running(mode):
    r = run_mode(mode)
    if not r["refused"]:
        assert r["programs"]["daemon"]["status"] == "passed"  # a double-forked daemon (or a denied fork)
        assert r["running_after_program"] == []
    assert r["running_after_close"] == []


@pytest.mark.parametrize("mode", MODES)
def test_aggregate_memory_limit_holds(mode):
    r = run_mode(mode)
    if not r["refused"]:
        # Three processes of 200 MiB each under a 400 MiB limit: they cannot all hold it.
        assert r["programs"]["memory"]["status"] != "passed"


@pytest.mark.parametrize("mode", MODES)
def test_file_over_the_size_limit_is_a_resource_limit(mode):
    r = run_mode(mode)
    if not r["refused"]:
        assert r["programs"]["file_size"]["status"] == "resource_limit"


@pytest.mark.parametrize("mode", MODES)
def test_time_limits_count_cpu_time_of_every_process(mode):
    r = run_mode(mode)
    if r["refused"]:
        return
    busy, child, reaped, sleeper = (r["programs"][k] for k in ("cpu_busy", "cpu_child", "cpu_reaped", "sleeper"))
    assert busy["status"] == "timeout" and "CPU-time limit of 1 s" in busy["message"], busy
    assert 0.95 <= busy["cpu_time_s"] <= 2.0, busy
    if r["isolation"].get("no_fork"):
        assert child["status"] == "runtime_error", child  # the fork itself is refused
        assert reaped["status"] == "runtime_error", reaped
    else:  # the parent waits; its child's CPU time is the program's
        assert child["status"] == "timeout" and "CPU-time limit" in child["message"], child
        # ... also when the kernel reaps each child itself (SIGCHLD ignored): 3 s of work in 60 children
        assert reaped["status"] == "timeout" and "CPU-time limit" in reaped["message"], reaped
    assert sleeper["status"] == "timeout" and "wall-clock cap of 2 s" in sleeper["message"], sleeper
    assert sleeper["duration_s"] < 4.5, sleeper


def test_time_limits_in_weak_mode_without_user_namespaces():
    r = run_mode("user_no_sandbox", isolate="weak")  # the same run as test_containment_policy's weak opt-in
    busy, sleeper = r["programs"]["cpu_busy"], r["programs"]["sleeper"]
    assert busy["status"] == "timeout" and "CPU-time limit of 1 s" in busy["message"], busy
    assert 0.95 <= busy["cpu_time_s"] <= 2.0, busy
    assert sleeper["status"] == "timeout" and "wall-clock cap of 2 s" in sleeper["message"], sleeper


@pytest.mark.parametrize("mode", MODES)
def test_files_written_in_all_are_bounded(mode):
    r = run_mode(mode)
    if not r["refused"]:
        fill = r["programs"]["disk_fill"]  # 40 files of 15 MB, each under the file size limit
        # a full private tmpfs (namespace modes) or the scratch folder's quota (Landlock mode)
        assert fill["status"] in ("resource_limit", "runtime_error"), fill
        if r["isolation"]["mode"] == "landlock":
            assert fill["status"] == "resource_limit" and fill["error_type"] == "DiskQuotaExceeded", fill
