"""Containment policy: without namespaces Python programs are confined by Landlock; without either the
executor refuses with a clear message; 'weak' is an explicit opt-in."""

import pytest
from containment_probe import needs_root, run_mode  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("needs_root")


@pytest.mark.parametrize("mode", ["user_no_userns", "docker_default"])
def test_landlock_confines_programs_where_no_namespace_can_be_made(mode):
    # Non-root without user namespaces (Ubuntu 24.04's AppArmor rule, many HPC nodes) and default
    # Docker: no view can be built, so each program gets a Landlock domain instead of a refusal
    # (every probe of the other containment tests runs in these modes too).
    r = run_mode(mode)
    assert r["refused"] is None and r["isolation"]["mode"] == "landlock", r.get("isolation")
    assert r["programs"]["stdlib"]["status"] == "passed"
    assert r["isolation"]["no_fork"]  # one process: files it holds open or mapped are bounded by its limits
    if mode == "docker_default":  # root: the sandbox uid where it can read the interpreter (not a pyenv under /root)
        assert r["isolation"]["setuid"] is False and "/root/" in r["isolation"]["exposed"][0]


def test_landlock_refuses_root_programs_without_a_cgroup():
    # Programs would run as uid 0 (the sandbox uid cannot read the pyenv under /root), and the kernel
    # does not apply RLIMIT_NPROC to uid 0: without a cgroup nothing would bound their threads.
    r = run_mode("docker_no_cgroup")
    msg = r["refused"]
    assert msg and "refusing to run" in msg and "Landlock mode is not possible here: programs would run as root" in msg, msg
    assert "install Python where every user can read it" in msg


def test_refuses_without_user_namespaces_nor_landlock_and_says_how_to_fix():
    r = run_mode("user_no_sandbox")
    msg = r["refused"]
    assert msg and "refusing to run" in msg
    for hint in ("network namespace", "mount namespace", "user namespaces", "CAP_SYS_ADMIN", "Landlock", "isolate='weak'", "TCF_ISOLATION=weak"):
        assert hint in msg, hint
    assert r["programs"] == {}


def test_node_service_refuses_as_a_local_executor_does():
    # The rank gets SandboxUnavailableError itself (a set-up error the rewards raise), not a RuntimeError.
    r = run_mode("user_no_sandbox", node=True)
    refused = r["node_secrets"].get("refused")
    assert refused and "refusing to run" in refused and "TCF_ISOLATION=weak" in refused, r["node_secrets"]


def test_weak_node_service_ranks_are_not_dumpable_either():
    # With Executor(backend="node") the rank talks to a service; its programs run as the rank's uid
    # in weak mode, so the rank must make itself non-dumpable as a local executor does.
    r = run_mode("user_no_sandbox", isolate="weak", node=True)
    found = r["node_secrets"].get("found")
    assert found is not None and [f for f in found if f.startswith("environ")] == [], r["node_secrets"]


def test_docker_without_landlock_refuses_and_names_the_docker_flags():
    # Root without CAP_SYS_ADMIN whose seccomp profile also blocks user namespaces (Docker's default)
    # on a kernel without Landlock: nothing can confine programs, so it refuses, saying which flags would.
    r = run_mode("docker_no_landlock")
    msg = r["refused"]
    assert msg and "refusing to run" in msg and "--cap-add SYS_ADMIN" in msg and "TCF_ISOLATION=weak" in msg, msg


def test_java_refuses_too_unless_weak():
    # The Java backend enforces the same policy: on this host it refuses (before, it ran outside any
    # view and a program could answer from the data set); with the weak opt-in it runs. Landlock does
    # not confine Java (its JVM, not a process per program, runs the programs).
    r = run_mode("user_no_userns", java=True)
    msg = r["java"]["refused"]
    assert msg and "refusing to run Java programs" in msg and "Landlock mode, which confines Python" in msg, r["java"]
    assert "cgroup: disabled" not in msg
    assert r["java"]["again"] == "refused", r["java"]  # every later call too: never per-program harness errors
    weak = run_mode("user_no_sandbox", isolate="weak", java=True)["java"]
    assert weak["refused"] is None and weak["status"] in ("passed", "failed"), weak


@pytest.mark.parametrize("mode", ["root", "user_ns"])
def test_java_programs_cannot_read_the_data_set(mode):
    r = run_mode(mode, java=True)
    assert r["java"]["refused"] is None and r["java"]["status"] == "failed", r["java"]


def test_weak_opt_in_runs_and_closes_what_it_can():
    r = run_mode("user_no_sandbox", isolate="weak")
    assert r["refused"] is None and r["isolation"]["mode"] == "none"
    progs = r["programs"]
    assert progs["stdlib"]["status"] == "passed"
    # The trainer is non-dumpable: its environment stays unreadable to programs of the same uid.
    assert [f for f in progs["secrets"]["found"] if f.startswith("environ")] == []
    # No cgroup for a non-root user: programs may not create processes, so nothing outlives them
    # and memory is bounded by the one process's limit.
    assert r["isolation"]["no_fork"]
    assert progs["memory"]["status"] != "passed"
    assert r["running_after_program"] == [] and r["running_after_close"] == []
    # The program's uid is the trainer's here: its keyring would be shared with the trainer.
    assert progs["keyring_write"]["found"] == ["refused"] and progs["keyring_read"]["found"] == []
    assert progs["socket_families"]["found"] == []


def test_sandbox_info_reports_landlock_mode():
    import subprocess

    from containment_probe import mode_command

    prefix, env = mode_command("docker_default")
    proc = subprocess.run([*prefix, "-c", "from trl_codefeedback.cli import main; raise SystemExit(main(['sandbox-info']))"],
                          env=env, capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "sandbox mode: landlock" in proc.stdout and "[yes] no network (no socket at all" in proc.stdout, proc.stdout
    assert "Java programs need namespaces" in proc.stdout and "programs run as uid 0 without capabilities" in proc.stdout
    assert "refuses" not in proc.stdout


JAVA_HOST_CHECK = """
from trl_codefeedback.execution.sandbox.policy import SandboxUnavailableError
from trl_codefeedback.feedback import UnitTestReward
reward = UnitTestReward(language="java")
try:
    reward.check_host({"java"})   # what the trainers call on a Java data set while they are built
    print("OK")
except SandboxUnavailableError as e:
    print("REFUSED", str(e).replace("\\n", " "))
"""


@pytest.mark.parametrize("mode, refused", [("user_no_userns", True), ("root", False)])
def test_java_rows_are_refused_when_the_trainer_is_built(mode, refused):
    # Before: a trainer on Java rows on a host without namespaces loaded the model and generated, and
    # only the first reward call refused. The host check now asks a probe process for namespaces.
    import subprocess

    from containment_probe import mode_command

    prefix, env = mode_command(mode)
    proc = subprocess.run([*prefix, "-c", JAVA_HOST_CHECK], env=env, capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr[-2000:]
    if refused:
        assert proc.stdout.startswith("REFUSED unit_test_reward: trl_codefeedback sandbox: refusing to run Java programs"), proc.stdout
        assert "Landlock mode, which confines Python" in proc.stdout
    else:
        assert proc.stdout.strip() == "OK", proc.stdout
