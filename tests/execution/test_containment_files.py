"""Containment, files: in every deployment mode programs neither change nor read the host, nor leave state behind."""

import os

import pytest
from containment_probe import MODES, needs_root, run_mode  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("needs_root")


@pytest.mark.parametrize("mode", MODES)
def test_no_host_file_written_or_deleted(mode):
    r = run_mode(mode)
    if r["refused"]:
        assert not r["programs"]
    else:
        assert r["programs"]["host_write"]["found"] == []
    assert r["victims_intact"] and r["host_files_created"] == []


@pytest.mark.parametrize("mode", MODES)
def test_host_files_and_data_are_not_readable(mode):
    r = run_mode(mode)
    if not r["refused"]:
        assert r["programs"]["read_host"]["found"] == []  # a data-set file, the project's README, a world-readable /tmp file


@pytest.mark.parametrize("mode", MODES)
def test_nothing_carried_from_one_program_to_the_next(mode):
    r = run_mode(mode)
    if not r["refused"]:
        assert r["programs"]["carry_write"]["status"] == "passed"
        assert r["programs"]["carry_read"]["found"] == []  # /tmp, /var/tmp, /dev/shm
        # Kernel keyrings (the uid's own outlives every process): no key can be added or found.
        assert r["programs"]["keyring_write"]["found"] == ["refused"], r["programs"]["keyring_write"]
        assert r["programs"]["keyring_read"]["found"] == [], r["programs"]["keyring_read"]


PRIVATE_PROBE = """
import sys
from trl_codefeedback.execution import Executor, Program
code = "import sys\\ndef f():\\n    raise RuntimeError('READ:' + open(sys.prefix + '/pip.conf').read())\\n"
with Executor(workers=1, cache_size=0) as ex:
    [fb] = ex.run([Program(code, {"kind": "asserts", "asserts": ["assert f() == 1"]})])
    print(ex.isolation.get("mode"), fb.error_type, fb.error_message)
"""


@pytest.mark.parametrize("mode", ["user_ns", "user_no_userns"])
def test_the_trainers_private_files_in_its_own_venv_are_unreadable(mode):
    # Programs run as the trainer's uid in these modes: owner bits would open its 0600 files inside the
    # interpreter's folders (a venv's pip.conf holding an index token). The view covers them; Landlock leaves them out.
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from containment_probe import SYSTEM_PYTHON, ensure_user, mode_command

    user = ensure_user()
    tmp_path = Path(tempfile.mkdtemp(prefix="tcf-private-venv-", dir="/tmp"))  # pytest's own is 0700
    try:
        _run_private_probe(mode, user, tmp_path, SYSTEM_PYTHON, mode_command)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _run_private_probe(mode, user, tmp_path, SYSTEM_PYTHON, mode_command):
    import shutil
    import subprocess

    venv = tmp_path / "venv"
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    (venv / "pip.conf").write_text("index-url = https://user:SECRET-TOKEN@example.invalid/simple\n")
    os.chmod(venv / "pip.conf", 0o600)
    shutil.chown(venv / "pip.conf", user.pw_uid, user.pw_gid)
    for d in (tmp_path, venv):
        os.chmod(d, 0o755)
    for root, dirs, files in os.walk(venv):
        for name in dirs + files:
            shutil.chown(os.path.join(root, name), user.pw_uid, user.pw_gid)
    shutil.chown(venv, user.pw_uid, user.pw_gid)
    script = tmp_path / "probe.py"
    script.write_text(PRIVATE_PROBE)
    os.chmod(script, 0o644)
    prefix, env = mode_command(mode)
    prefix = [str(venv / "bin" / "python") if part == SYSTEM_PYTHON else part for part in prefix]
    proc = subprocess.run([*prefix, str(script)], env=env, capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "SECRET-TOKEN" not in proc.stdout and proc.stdout.split()[0] in ("user_namespace", "landlock"), proc.stdout
