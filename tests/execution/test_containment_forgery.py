"""Verdicts cannot be forged in any deployment mode: the oracle runs outside the program in every one."""

import pytest
from containment_probe import MODES, needs_root, run_mode  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("needs_root")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("probe", ["forge_eq", "forge_search"])
def test_forgery_does_not_pass_in_any_mode(mode, probe):
    r = run_mode(mode)
    if not r["refused"]:
        assert r["programs"][probe]["status"] not in ("passed", "harness_error"), r["programs"][probe]
