"""Java backend: forge-proof verdicts from a pool of candidate worker JVMs and one trusted oracle JVM.

Example:
    >>> from trl_codefeedback.execution import Executor, Program
    >>> code = "class Add {\\n    static int add(int a, int b) { return a + b; }\\n}\\n"
    >>> test = ("class Main { public static void main(String[] a) throws Exception {\\n"
    ...         "  int x0 = Add.add(1, 2);\\n  if (x0 != 3) { throw new Exception(\\"0\\"); }\\n"
    ...         "  int x1 = Add.add(2, 2);\\n  if (x1 != 4) { throw new Exception(\\"1\\"); }\\n} }\\n")
    >>> with Executor(workers=1) as ex:                                 # doctest: +SKIP
    ...     [fb] = ex.run([Program(code, {"kind": "java_main", "test": test}, language="java")])
    >>> fb.status.value, fb.tests_passed, fb.tests_total               # doctest: +SKIP
    ('passed', 2, 2)

Modules (see docs/java.md): :mod:`.split` cuts a test's ``main`` into checks, :mod:`.plan` splits
each check between the candidate side (actual expressions) and the trusted side (expected
values, comparisons), :mod:`.oracle` is the trusted JVM's client, :mod:`.jvm` one JVM process
and its channel, :mod:`.pool` the backend, :mod:`.feedback` the mapping to Feedback,
:mod:`.fallback` plain javac + java when no JVM can start. Java sources: ``TcfJavaWorker.java``
(candidate side), ``TcfJavaOracle.java`` (trusted side), ``TcfValues.java`` (the tagged value
encoding), ``TcfCommon.java`` (in-memory javac, framing).
"""

from __future__ import annotations

from trl_codefeedback.execution.java.feedback import JavaDiagnostic, diagnostics_of, java_error_scope
from trl_codefeedback.execution.java.jdk import JavaUnavailableError, find_jdk, service_classes
from trl_codefeedback.execution.java.plan import TrustedPlan, UnsupportedTest
from trl_codefeedback.execution.java.pool import JavaBackend
from trl_codefeedback.execution.java.source import build_java_source
from trl_codefeedback.execution.java.split import JavaTestPlan, count_java_checks, split_java_main, split_statements

__all__ = [
    "JavaBackend", "JavaDiagnostic", "JavaTestPlan", "JavaUnavailableError", "TrustedPlan", "UnsupportedTest",
    "build_java_source", "count_java_checks", "diagnostics_of", "find_jdk", "get_java_backend", "java_error_scope",
    "service_classes", "split_java_main", "split_statements",
]


def get_java_backend(num_workers: int, isolate: bool = True) -> JavaBackend:
    """The backend the :class:`~trl_codefeedback.execution.Executor` uses for ``language="java"``."""
    return JavaBackend(num_workers, isolate=isolate)
