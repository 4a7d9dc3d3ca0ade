"""A worker JVM that cannot start says why (its own stderr), and the pool tries once more."""

from __future__ import annotations

import logging

import pytest

from trl_codefeedback.execution.java import jvm as jvm_module
from trl_codefeedback.execution.java.jdk import find_jdk, service_classes
from trl_codefeedback.execution.java.pool import JavaBackend


def test_start_failure_shows_the_jvms_stderr():
    _, java = find_jdk()
    with pytest.raises(RuntimeError, match="Unrecognized VM option 'NoSuchTcfFlag'"):
        jvm_module.JvmProcess("java", 0, java, service_classes(), "TcfJavaWorker", ["-XX:+NoSuchTcfFlag"], False)


def test_pool_tries_a_failed_start_once_more(monkeypatch, caplog):
    real = jvm_module.JvmProcess
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("java JVM 0 did not start: simulated")
        return real(*args, **kwargs)

    monkeypatch.setattr("trl_codefeedback.execution.java.pool.JvmProcess", flaky)
    backend = JavaBackend(1, isolate=False)
    try:
        with caplog.at_level(logging.WARNING):
            worker = backend._spawn(0, 256)
        assert worker.alive() and len(calls) == 2
        assert "trying once more" in caplog.text
        worker.kill()
    finally:
        backend.close()
