"""Containment, processes and limits: nothing left running, aggregate memory, file size, stdlib programs pass."""

import pytest
from containment_probe import MODES, needs_root, run_mode  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("needs_root")


@pytest.mark.parametrize("mode", MODES)
def test_correct_programs_importing_stdlib_modules_pass(mode):
    r = run_mode(mode)
    if not r["refused"]:
        assert r["programs"]["stdlib"]["status"] == "passed", r["programs"]["stdlib"]


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
