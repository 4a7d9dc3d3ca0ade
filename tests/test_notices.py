"""bitsandbytes' "Failed to load CPU gemm_4bit_forward from kernels-community" notice is not printed on every run."""

import importlib.util
import subprocess
import sys

import pytest

NOTICE = "Failed to load CPU gemm_4bit_forward"


def _stderr_of(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


@pytest.fixture(scope="module")
def bnb_prints_the_notice() -> None:
    """Skip on hosts where bitsandbytes has nothing to say (no AVX512-BF16, or `kernels` installed)."""
    pytest.importorskip("bitsandbytes")
    if importlib.util.find_spec("kernels") is not None:
        pytest.skip("the 'kernels' package is installed: bitsandbytes loads its CPU kernel")
    if NOTICE not in _stderr_of("import bitsandbytes"):
        pytest.skip("bitsandbytes prints no kernel notice on this CPU")


def test_the_notice_is_dropped_once_trl_codefeedback_is_imported(bnb_prints_the_notice):
    assert NOTICE not in _stderr_of("import trl_codefeedback, bitsandbytes")
    assert NOTICE not in _stderr_of("from trl_codefeedback.trainers import CodeFeedbackGRPOTrainer")


def test_other_bitsandbytes_warnings_still_get_through():
    import logging

    from trl_codefeedback._notices import BNB_CPU_LOGGER, quiet_known_notices

    quiet_known_notices()
    logger = logging.getLogger(BNB_CPU_LOGGER)
    hub_failure = logging.makeLogRecord({"msg": NOTICE + " from kernels-community: %s.", "args": (OSError("no network"),)})
    missing_package = logging.makeLogRecord({"msg": NOTICE + " from kernels-community: %s.", "args": (ModuleNotFoundError("No module named 'kernels'"),)})
    other = logging.makeLogRecord({"msg": "something else"})
    assert [bool(logger.filter(r)) for r in (hub_failure, missing_package, other)] == [True, False, True]
    quiet_known_notices()
    assert sum(type(f).__name__ == "_MissingKernelsPackageFilter" for f in logger.filters) == 1  # idempotent
