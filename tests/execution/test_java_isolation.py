"""Nothing one Java program does changes a later program's verdict on the same worker JVM (red
team, round 3): threads started while the program's threads are being stopped, executors that
re-create their workers, JVM-wide schedulers and JDK threads that run program code later, and memory
pinned in JDK-wide registries. Each test runs an attacker A, then honest programs B on the same
single worker JVM.
"""

from __future__ import annotations

import shutil
import time

import pytest
from java_programs import LIM, job, one_check
from java_programs import java as make_java

from trl_codefeedback.execution import Limits, Program, Status
from trl_codefeedback.execution.java import JavaBackend

pytestmark = pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None, reason="needs a JDK")

INT_TEST = one_check("int x0 = Sol.g(1);", "int v0 = 4242;")
PROBE_TEST = one_check("String x0 = Probe.go();", 'String v0 = "?";')


def honest(k: int, body: str = "") -> Program:
    """An honest program (distinct source each time: no cache can answer for it)."""
    return java(f"import java.util.*;\nclass Sol {{\n    static int g(int n) {{\n{body}        return 4242 + {k} - {k};\n    }}\n}}\n", INT_TEST)


def java(code: str, test: str = INT_TEST) -> Program:
    return make_java(code, test)


@pytest.fixture
def backend():
    with JavaBackend(1) as be:
        yield be


def run(be: JavaBackend, p: Program, limits: Limits = LIM):
    return be.run([(job(p, limits), p)])[0]


def later_programs_pass(be: JavaBackend, n: int, pause_s: float, body: str = "") -> None:
    for k in range(n):
        time.sleep(pause_s)
        fb = run(be, honest(k, body))
        assert fb.status is Status.PASSED, (k, fb)


# ---------------------------------------------------------------- threads that outlive their program

RESPAWN = """import java.util.*;
class Sol {
    static void payload() {
        try { Thread.sleep(300); } catch (Throwable e) { }
        while (true) { try { System.exit(0); } catch (Throwable e) { } try { Thread.sleep(1); } catch (Throwable e) { } }
    }
    static int g(int n) {
        ThreadGroup grp = Thread.currentThread().getThreadGroup();
        Runnable r = () -> {
            try { while (true) Thread.sleep(1000); }
            catch (Throwable t) { Thread x = new Thread(grp, Sol::payload, "left"); x.setDaemon(true); x.start(); }
        };
        Thread t = new Thread(grp, r); t.setDaemon(true); t.start();
        return 4242;
    }
}
"""


def test_thread_started_while_being_stopped_does_not_survive(backend):
    """A thread that starts another when stopped: the program is closed first, so that start is denied."""
    assert run(backend, honest(99)).status is Status.PASSED
    fb = run(backend, java(RESPAWN))
    assert fb.status is Status.PASSED, fb  # the program itself did nothing wrong while it ran
    later_programs_pass(backend, 3, 0.4)


STPE = """import java.util.*;
import java.util.concurrent.*;
class Sol {
    static int g(int n) {
        ScheduledThreadPoolExecutor ex = new ScheduledThreadPoolExecutor(1, r -> { Thread t = new Thread(r); t.setDaemon(true); return t; });
        ex.scheduleAtFixedRate(() -> { try { System.exit(0); } catch (Throwable e) { } }, 300, 2, TimeUnit.MILLISECONDS);
        return 4242;
    }
}
"""


def test_executor_that_recreates_its_worker_does_not_survive(backend):
    """A ScheduledThreadPoolExecutor replaces a stopped worker (processWorkerExit): not in a closed program."""
    assert run(backend, java(STPE)).status is Status.PASSED
    later_programs_pass(backend, 5, 0.15)


DELAYED = """import java.util.*;
import java.util.concurrent.*;
class Sol {
    static int g(int n) {
        CompletableFuture.delayedExecutor(600, TimeUnit.MILLISECONDS).execute(() -> {
            while (true) { try { System.exit(0); } catch (Throwable e) { } } });
        return 4242;
    }
}
"""
USES_DELAYER = """        java.util.concurrent.CompletableFuture<Integer> f = new java.util.concurrent.CompletableFuture<>();
        java.util.concurrent.CompletableFuture.delayedExecutor(1, java.util.concurrent.TimeUnit.MILLISECONDS).execute(() -> f.complete(1));
        try { f.get(); Thread.sleep(200); } catch (Exception e) { return -1; }
"""


def test_tasks_left_in_the_jvm_wide_delay_scheduler_do_not_run_later(backend):
    """CompletableFuture's delay scheduler is one per JVM: a later program using it would run A's task."""
    assert run(backend, java(DELAYED)).status is Status.PASSED
    later_programs_pass(backend, 2, 0.7, USES_DELAYER)


ASYNC_IO = """import java.util.*;
import java.nio.*;
import java.nio.channels.*;
class Sol {
    static int g(int n) {
        try {
            AsynchronousFileChannel ch = AsynchronousFileChannel.open(java.nio.file.Paths.get("/etc/passwd"));
            ch.read(ByteBuffer.allocate(10), 0, null, new CompletionHandler<Integer, Object>() {
                public void completed(Integer r, Object a) { }
                public void failed(Throwable t, Object a) { }
            });
            Thread.sleep(100);
        } catch (Exception e) { return -1; }
        return 4242;
    }
}
"""


def test_thread_started_outside_the_sandbox_for_a_program_replaces_the_worker(backend):
    """The JDK started a thread for the program outside its group (an I/O pool that runs its completion handlers):
    it may run program code during a later program, so the worker is replaced even while that thread is idle."""
    assert run(backend, honest(99)).status is Status.PASSED
    pid = backend.worker_pids()
    assert run(backend, java(ASYNC_IO)).status is Status.PASSED
    assert backend.worker_pids() != pid
    later_programs_pass(backend, 2, 0)


# ---------------------------------------------------------------- memory and objects left in JVM-wide holders

PIN = """import java.util.*;
class Sol {
    static int g(int n) {
        final long[][] keep = new long[MB][];
        for (int i = 0; i < keep.length; i++) keep[i] = new long[1 << 17];
        java.time.zone.ZoneRulesProvider p = new java.time.zone.ZoneRulesProvider() {
            Object hold = keep;
            protected Set<String> provideZoneIds() { return Set.of("Tcf/Keep" + System.nanoTime()); }
            protected java.time.zone.ZoneRules provideRules(String id, boolean f) { return java.time.ZoneOffset.UTC.getRules(); }
            protected NavigableMap<String, java.time.zone.ZoneRules> provideVersions(String id) { return new TreeMap<>(); } };
        REGISTER
        return 4242;
    }
}
"""
BY_REFLECTION = ("try { java.time.zone.ZoneRulesProvider.class.getMethod(\"register\" + \"Provider\", java.time.zone.ZoneRulesProvider.class)"
                 ".invoke(null, p); } catch (Exception e) { return -1; }")
NEEDS_160MB = """        List<int[]> l = new ArrayList<>();
        for (int i = 0; i < 40; i++) l.add(new int[1 << 20]);
        if (l.size() != 40) return -1;
"""


def test_memory_pinned_in_a_jdk_registry_is_released_before_the_next_program(backend):
    """ZoneRulesProvider.registerProvider (no permission guards it), called by reflection past the source check."""
    fb = run(backend, java(PIN.replace("MB", "880").replace("REGISTER", BY_REFLECTION)))
    assert fb.status is Status.PASSED, fb
    later_programs_pass(backend, 2, 0, NEEDS_160MB)


def test_registering_a_zone_rules_provider_is_a_compile_error(backend):
    fb = run(backend, java(PIN.replace("MB", "1").replace("REGISTER", "java.time.zone.ZoneRulesProvider.registerProvider(p);")))
    assert fb.status is Status.COMPILE_ERROR and fb.error_type == "registry.not.allowed" and fb.error_line == 11, fb


def test_honest_program_with_large_statics_keeps_its_worker(backend):
    """The heap check counts what is left after the program's classes are gone: big statics are not pinned memory."""
    code = ("import java.util.*;\nclass Sol {\n    static long[] big = new long[40 << 20];\n    static int g(int n) {\n"
            "        big[n] = 1;\n        return 4242;\n    }\n}\n")
    assert run(backend, honest(0)).status is Status.PASSED
    pid = backend.worker_pids()
    for k in range(2):
        assert run(backend, java(code.replace("= 1;", f"= {k + 1};"))).status is Status.PASSED
    assert backend.worker_pids() == pid


SETTERS = {
    "root-logger-handler": "java.util.logging.Logger.getLogger(\"\").addHandler(new java.util.logging.ConsoleHandler());",
    "logger-level": "java.util.logging.Logger.getLogger(\"tcf\").setLevel(java.util.logging.Level.ALL);",
    "cookie-handler": "java.net.CookieHandler.setDefault(new java.net.CookieManager());",
    "proxy-selector": "java.net.ProxySelector.setDefault(null);",
    "authenticator": "java.net.Authenticator.setDefault(new java.net.Authenticator() { });",
    "response-cache": "java.net.ResponseCache.setDefault(null);",
    "hostname-verifier": "javax.net.ssl.HttpsURLConnection.setDefaultHostnameVerifier((h, s) -> true);",
    "file-name-map": "java.net.URLConnection.setFileNameMap(f -> \"x\");",
    "url-handlers": "java.net.URL.setURLStreamHandlerFactory(p -> null);",
    "mbean-server": "java.lang.management.ManagementFactory.getPlatformMBeanServer();",
    "preferences": "java.util.prefs.Preferences.userRoot().put(\"k\", \"v\");",
}


def test_jvm_wide_setters_are_denied(backend):
    body = "".join(f"        try {{ {stmt} out.append(\"{name} SET|\"); }} catch (SecurityException e) {{ out.append(\"{name} DENIED|\"); }}"
                   f" catch (Throwable e) {{ out.append(\"{name} \" + e.getClass().getSimpleName() + \"|\"); }}\n"
                   for name, stmt in SETTERS.items())
    code = ("import java.util.*;\nclass Probe {\n    static String go() {\n        StringBuilder out = new StringBuilder();\n" + body
            + "        return out.toString();\n    }\n}\n")
    fb = run(backend, java(code, PROBE_TEST))
    report = fb.error_message.split("x0 = ", 1)[1]
    assert report == "".join(f"{name} DENIED|" for name in SETTERS), report
