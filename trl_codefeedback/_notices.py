"""Third-party notices that every run would print and that need no action: filtered once, explained here.

bitsandbytes (>= 0.49), on CPUs with AVX512-BF16, tries at import time to fetch a faster 4-bit
CPU matmul from the Hub through the optional ``kernels`` package, and when that package is not
installed logs ``Failed to load CPU gemm_4bit_forward from kernels-community: No module named
'kernels'`` on every start. It then uses its built-in kernel, which is correct (the 4-bit tests
run on it). Only that case is dropped: with ``kernels`` installed, a failure to load the kernel
(e.g. no Hub access) is still reported. ``pip install kernels`` gets the faster kernel.

The filter sits on the logger before bitsandbytes creates it, so it works whichever of
transformers, peft or TRL imports bitsandbytes later. A script that imports those before
``trl_codefeedback`` still sees the notice once.

Example:
    >>> import logging
    >>> quiet_known_notices()
    >>> logging.getLogger(BNB_CPU_LOGGER).filters[0].filter(logging.makeLogRecord(
    ...     {"msg": "Failed to load CPU gemm_4bit_forward from kernels-community: %s.",
    ...      "args": (ModuleNotFoundError("No module named 'kernels'"),)}))
    False
"""

from __future__ import annotations

import logging

BNB_CPU_LOGGER = "bitsandbytes.backends.cpu.ops"
_BNB_KERNEL_NOTICE = "Failed to load CPU gemm_4bit_forward from kernels-community"


class _MissingKernelsPackageFilter(logging.Filter):
    """Drops bitsandbytes' notice that the optional ``kernels`` package is not installed."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(_BNB_KERNEL_NOTICE):
            return True
        return "No module named 'kernels'" not in record.getMessage()


def quiet_known_notices() -> None:
    """Install the filters (idempotent)."""
    logger = logging.getLogger(BNB_CPU_LOGGER)
    if not any(isinstance(f, _MissingKernelsPackageFilter) for f in logger.filters):
        logger.addFilter(_MissingKernelsPackageFilter())
