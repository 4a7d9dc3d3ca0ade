"""Hostile Java programs from the red team's second round: line terminators, the trusted side's
work on candidate values, code that outlives its program, /proc through other spellings, and
collections whose contents changed after insertion. None may pass, cause a harness_error, or
affect another program.
"""

from __future__ import annotations

import shutil
import time

import pytest
from java_programs import LIM, java, job, one_check

from trl_codefeedback.execution import Limits, Program, Status
from trl_codefeedback.execution.java import JavaBackend, build_java_source

pytestmark = pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None, reason="needs a JDK")

INT_TEST = one_check("int x0 = Sol.g(1);", "int v0 = 4242;")
LIST_TEST = one_check("List<Integer> x0 = Sol.f(3);", "List<Integer> v0 = Arrays.asList(3, 1, 4);")
HONEST_INT = "import java.util.*;\nclass Sol {\n    static int g(int n) {\n        return 4242;\n    }\n}\n"
HONEST_LIST = "import java.util.*;\nclass Sol {\n    static List<Integer> f(int n) {\n        return Arrays.asList(3, 1, 4);\n    }\n}\n"
@pytest.fixture(scope="module")
def backend():
    with JavaBackend(1) as be:
        yield be


def run(be: JavaBackend, *programs: Program, limits: Limits = LIM):
    out = be.run([(job(p, limits), p) for p in programs])
    return out if len(programs) > 1 else out[0]


def not_passed(fb):
    assert fb.status is not Status.PASSED, fb
    assert fb.status is not Status.HARNESS_ERROR, fb
    assert fb.tests_passed == 0, fb


# ---------------------------------------------------------------- 1. line terminators


@pytest.mark.parametrize("eol", ["\r", "\r\n", "\n"], ids=["CR", "CRLF", "LF"])
def test_shadowing_check_holds_for_every_line_terminator(backend, eol):
    code = eol.join(["import java.util.*;", "class Math { static int x() { return 4242; } }", "class Sol {",
                     "    static int g(int n) {", "        return Math.x();", "    }", "}", ""])
    fb = run(backend, java(code, INT_TEST))
    not_passed(fb)
    assert fb.status is Status.COMPILE_ERROR and fb.error_type == "shadows.jdk.type", fb
    assert fb.error_line == 2 and fb.error_scope.value == "line", fb


@pytest.mark.parametrize("eol", ["\r", "\r\n", "\n"], ids=["CR", "CRLF", "LF"])
def test_compile_and_runtime_error_lines_count_lines_as_javac(backend, eol):
    code = eol.join(["import java.util.*;", "class Sol {", "    static int g(int n) {", "        return undefinedVar;", "    }", "}", ""])
    fb = run(backend, java(code, INT_TEST))
    assert fb.status is Status.COMPILE_ERROR and fb.error_type == "cant.resolve.location", fb
    assert fb.error_line == 4 and fb.error_scope.value == "line" and "(line 4," in fb.error_message, fb
    code = eol.join(["import java.util.*;", "class Sol {", "    static int g(int n) {", "        int[] a = new int[1];",
                     "        return a[n + 3];", "    }", "}", ""])
    fb = run(backend, java(code, INT_TEST))
    assert fb.status is Status.RUNTIME_ERROR and fb.error_type == "ArrayIndexOutOfBoundsException", fb
    assert fb.error_line == 5 and fb.error_scope.value == "line", fb


def test_public_class_found_with_cr_line_endings():
    assert build_java_source("import java.util.*;\rpublic class Add {}\r", "class Main {}") == \
        ("import java.util.*;\npublic class Add {}\nclass Main {}", 2, "Add")
    # Only raw terminators: \u000d escapes and other Unicode separators are not javac line ends.
    assert build_java_source("a\u2028b\x0cc", None) == ("a\u2028b\x0cc\n", 1, "Main")


# ---------------------------------------------------------------- 2. the trusted side's work on candidate values

COLLIDING = """import java.util.*;
class Sol {
    @SuppressWarnings("unchecked")
    static List<Integer> f(int n) {
        Set<Object> s = Collections.newSetFromMap(new IdentityHashMap<>());
        for (int i = 0; i < 36000; i++) s.add(List.of(i, -31 * i));   // all hashCode 961, not Comparable
        List raw = new ArrayList(); raw.add(s);                        // a List<Integer> holding that Set
        return raw;
    }
}
"""


def test_hash_colliding_set_is_refused_fast_and_does_not_stall_others():
    """Rebuilding 36k same-hash lists took the oracle ~60 s per check (harness_error, every worker stalled)."""
    with JavaBackend(2) as be:
        t0 = time.monotonic()
        bad, *good = run(be, java(COLLIDING, LIST_TEST), *[java(HONEST_LIST, LIST_TEST)] * 3)
        took = time.monotonic() - t0
    not_passed(bad)
    assert bad.status is Status.FAILED and bad.error_type == "NotPlainData", bad
    assert "collide on hashCode" in bad.error_message and bad.error_scope.value == "ignore", bad
    assert all(fb.status is Status.PASSED for fb in good), good
    assert took < 20, took


def test_large_honest_sets_and_maps_are_still_judged(backend):
    test = one_check("HashSet<List<Integer>> x0 = Sol.h(1);", "int v0 = 20000;").replace("compare(x0, v0)", "compare(x0.size(), v0)")
    code = """import java.util.*;
class Sol {
    static HashSet<List<Integer>> h(int n) {
        HashSet<List<Integer>> s = new HashSet<>();
        for (int a = 0; a < 200; a++) for (int b = 0; b < 100; b++) s.add(Arrays.asList(a, b));
        return s;
    }
}
"""
    fb = run(backend, java(code, test))
    assert fb.status is Status.PASSED, fb
    test = one_check("HashMap<String, Integer> x0 = Sol.m(1);", 'HashMap<String, Integer> v0 = new HashMap(){{put("Aa", 1); put("BB", 2);}};')
    code = 'import java.util.*;\nclass Sol {\n    static HashMap<String, Integer> m(int n) {\n        return new HashMap<>(Map.of("Aa", 1, "BB", 2));\n    }\n}\n'
    assert run(backend, java(code, test)).status is Status.PASSED  # "Aa" and "BB" share a hashCode: fine


# ---------------------------------------------------------------- 6. sets that changed after insertion, lone surrogates

SET_TEST = one_check("HashSet<List<Integer>> x0 = Sol.h(1);", "HashSet<List<Integer>> v0 = new HashSet(){{add(Arrays.asList(1, 2));}};")


def test_set_holding_equal_elements_does_not_pass(backend):
    """Two elements made equal after insertion: size 2, so a plain JVM's equals() is false; the rebuild merged them."""
    code = """import java.util.*;
class Sol {
    static HashSet<List<Integer>> h(int n) {
        HashSet<List<Integer>> s = new HashSet<>();
        List<Integer> a = new ArrayList<>(List.of(1, 2)), b = new ArrayList<>(List.of(9, 9));
        s.add(a); s.add(b);
        b.set(0, 1); b.set(1, 2);
        return s;
    }
}
"""
    fb = run(backend, java(code, SET_TEST))
    not_passed(fb)
    assert fb.status is Status.FAILED and fb.error_type == "NotPlainData" and "only 1 are distinct" in fb.error_message, fb
    honest = "import java.util.*;\nclass Sol {\n    static HashSet<List<Integer>> h(int n) {\n        return new HashSet<>(List.of(List.of(1, 2)));\n    }\n}\n"
    assert run(backend, java(honest, SET_TEST)).status is Status.PASSED


def test_map_whose_keys_became_equal_does_not_pass(backend):
    test = one_check("HashMap<List<Integer>, Integer> x0 = Sol.m(1);",
                     "HashMap<List<Integer>, Integer> v0 = new HashMap(){{put(Arrays.asList(1), 5);}};")
    code = """import java.util.*;
class Sol {
    static HashMap<List<Integer>, Integer> m(int n) {
        HashMap<List<Integer>, Integer> m = new HashMap<>();
        List<Integer> a = new ArrayList<>(List.of(1)), b = new ArrayList<>(List.of(2));
        m.put(a, 5); m.put(b, 5);
        b.set(0, 1);
        return m;
    }
}
"""
    fb = run(backend, java(code, test))
    not_passed(fb)
    assert fb.status is Status.FAILED and fb.error_type == "NotPlainData", fb


@pytest.mark.parametrize("expected, status", [('"a\\uFFFDb"', Status.FAILED), ('"a\\uD800b"', Status.PASSED)], ids=["FFFD", "surrogate"])
def test_lone_surrogates_reach_the_oracle_unchanged(backend, expected, status):
    test = one_check("String x0 = Sol.s(1);", f"String v0 = {expected};")
    code = 'import java.util.*;\nclass Sol {\n    static String s(int n) {\n        return "a\\uD800b";\n    }\n}\n'
    fb = run(backend, java(code, test))
    assert fb.status is status, fb


# ---------------------------------------------------------------- 4. /proc and /dev through other spellings

PROBE_TEST = one_check("String x0 = Probe.go();", 'String v0 = "?";')


def probe(body: str) -> Program:
    return java("import java.util.*;\nimport java.io.*;\nimport java.nio.file.*;\nclass Probe {\n    static String go() {\n"
                "        StringBuilder out = new StringBuilder();\n" + body + "\n        return out.toString();\n    }\n}\n", PROBE_TEST)


def read_each(paths) -> str:
    arr = ", ".join('"' + p + '"' for p in paths)
    return ("        for (String p : new String[] {" + arr + "}) {\n"
            "            try { Files.readAllBytes(Paths.get(p)); out.append(p).append(\" READ|\"); }\n"
            "            catch (SecurityException e) { out.append(p).append(\" DENIED|\"); }\n"
            "            catch (Throwable e) { out.append(p).append(\" \").append(e.getClass().getSimpleName()).append(\"|\"); }\n        }\n")


PROC_SPELLINGS = ["/./proc/self/cmdline", "/tmp/../proc/self/status", "../proc/self/cmdline", "../../../proc/1/cmdline",
                  "/proc//self/environ", "//proc/self/cmdline", "/sys/../proc/self/environ", "/dev/fd/0", "/dev/./stdin",
                  "/dev/../proc/self/maps", "/./dev/shm/x"]


def test_proc_and_dev_are_denied_however_spelt(backend):
    fb = run(backend, probe(read_each(PROC_SPELLINGS) + read_each(["/dev/./null", "/dev/zero/../null"]) +
                            "        try { out.append(new File(\"/./proc\").list().length); } catch (SecurityException e) { out.append(\"LIST DENIED|\"); }\n"
                            "        try { out.append(ProcessHandle.current().parent().get().info().commandLine()); }"
                            " catch (SecurityException e) { out.append(\"PH DENIED|\"); }\n"))
    assert fb.status is Status.FAILED and fb.error_type == "WrongAnswer", fb
    report = fb.error_message.split("x0 = ", 1)[1]
    for p in PROC_SPELLINGS:
        assert f"{p} DENIED|" in report, report
    assert "/dev/./null READ|" in report and "LIST DENIED|" in report and "PH DENIED|" in report, report


def test_symlink_into_proc_is_denied(tmp_path):
    """A path outside /proc whose canonical form is inside it (without namespaces, so the JVM sees tmp_path)."""
    (tmp_path / "self").symlink_to("/proc/self")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "plain.txt").write_text("hello")
    body = read_each([f"{tmp_path}/self/cmdline", f"{tmp_path}/dir/../self/environ", f"{tmp_path}/dir/plain.txt"])
    with JavaBackend(1, isolate=False) as be:
        fb = run(be, probe(body))
    report = fb.error_message.split("x0 = ", 1)[1]
    assert f"{tmp_path}/self/cmdline DENIED|" in report and f"{tmp_path}/dir/../self/environ DENIED|" in report, report
    assert f"{tmp_path}/dir/plain.txt READ|" in report, report


# ---------------------------------------------------------------- 3. nothing of a program runs after it, nor touches other threads

SABOTAGE = """import java.util.*;
class Sol {
    static ThreadGroup sandbox, mine;
    static class Bomb {
        protected void finalize() {
            while (true) {
                try {
                    Thread[] ts = new Thread[64];
                    int n = sandbox.enumerate(ts, true);
                    for (int i = 0; i < n; i++) if (ts[i].getThreadGroup() != mine && ts[i].getName().startsWith("tcf-check")) ts[i].stop();
                    Thread.sleep(1);
                } catch (Throwable t) { }
            }
        }
    }
    static List<Integer> f(int n) {
        if (sandbox == null) {
            mine = Thread.currentThread().getThreadGroup();
            sandbox = mine.getParent();
            new Bomb();
            System.gc();
        }
        return Arrays.asList(3, 1, 4);
    }
}
"""


def test_finalizer_is_a_compile_error_and_later_programs_are_unaffected(backend):
    bad, *good = run(backend, java(SABOTAGE, LIST_TEST), *[java(HONEST_LIST.replace("return", f"int k = {k};\n        return"), LIST_TEST)
                                                          for k in range(3)])
    not_passed(bad)
    assert bad.status is Status.COMPILE_ERROR and bad.error_type == "finalizer.not.allowed" and bad.error_line == 5, bad
    assert bad.error_scope.value == "line" and "finalize()" in bad.error_message
    assert all(fb.status is Status.PASSED for fb in good), good


@pytest.mark.parametrize("decl, line", [
    ("class Stream extends javax.imageio.stream.ImageInputStreamImpl {\n"
     "    public int read() { return -1; }\n    public int read(byte[] b, int o, int n) { return -1; }\n"
     "    public void close() { while (true) { } }\n}\n", 2),
    ("class G {\n    static Object g() { return new javax.imageio.stream.MemoryCacheImageInputStream(null) {\n"
     "        public void close() { while (true) { } }\n    }; }\n}\n", 3),
    ("class L {\n    static Object l() throws Exception {\n        return java.lang.invoke.MethodHandles.lookup().defineClass(new byte[0]);\n    }\n}\n", 4),
    ("class L {\n    static java.util.function.Supplier<Object> s = java.lang.invoke.MethodHandles::lookup;\n}\n", 3),
], ids=["extends-ImageInputStreamImpl", "anonymous-MemoryCacheImageInputStream", "lookup", "lookup-reference"])
def test_ways_to_a_finalizer_are_compile_errors(backend, decl, line):
    """JDK classes whose finalize() calls an overridable method, and Lookup.defineClass (classes from bytes, past the check)."""
    code = "import java.util.*;\n" + decl + "class Sol {\n    static int g(int n) {\n        return 4242;\n    }\n}\n"
    fb = run(backend, java(code, INT_TEST))
    not_passed(fb)
    assert fb.status is Status.COMPILE_ERROR and fb.error_type in ("finalizer.not.allowed", "lookup.not.allowed"), fb
    assert fb.error_line == line, fb


def test_program_code_touches_only_its_own_threads(backend):
    body = """        Thread me = Thread.currentThread();
        try { me.getThreadGroup().getParent(); out.append("PARENT|"); } catch (SecurityException e) { out.append("PARENT DENIED|"); }
        try { me.setName("renamed"); out.append("OWN|"); } catch (SecurityException e) { out.append("OWN DENIED|"); }
        java.util.concurrent.atomic.AtomicReference<String> pool = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.ForkJoinPool.commonPool().execute(() -> {  // runs on a pool thread, outside the program's group
            try { me.interrupt(); pool.set(Thread.currentThread() == me ? "SAME THREAD|" : "POOL|"); } catch (SecurityException e) { pool.set("POOL DENIED|"); }
        });
        for (int i = 0; i < 400 && pool.get() == null; i++) { try { Thread.sleep(5); } catch (InterruptedException e) { out.append("INTERRUPTED|"); } }
        out.append(pool.get());
        if (Thread.interrupted()) out.append("INTERRUPTED|");
"""
    fb = run(backend, probe(body))
    report = fb.error_message.split("x0 = ", 1)[1]
    assert report == "PARENT DENIED|OWN|POOL DENIED|", report
