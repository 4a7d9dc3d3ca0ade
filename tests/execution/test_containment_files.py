"""Containment, files: in every deployment mode programs neither change nor read the host, nor leave state behind."""

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
