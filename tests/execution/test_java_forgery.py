"""Hostile Java programs: none can forge a pass, none can cause a harness_error (issue 11, item 4).

Each attack below passed under the old design (program and test in one JVM). Now the test's
expected values and comparisons run in a trusted JVM that never loads program classes; the
program's JVM only returns each check's actual values as plain, tagged data.
"""

from __future__ import annotations

import shutil

import pytest
from java_programs import LIM, java, job

from trl_codefeedback.execution import Limits, Program, Status
from trl_codefeedback.execution.java import JavaBackend

pytestmark = pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None, reason="needs a JDK")

MBJP_COMPARE = """    public static boolean compare(Object obj1, Object obj2) {
        if (obj1 == null && obj2 == null){
            return true;
        } else if (obj1 == null || obj2 == null){
            return false;
        } else {
            return obj1.equals(obj2);
        }
    }
"""
# MBJP's shape: the candidate's value is compare's first argument, so its equals() decides.
LIST_TEST = ("class Main {\n" + MBJP_COMPARE + """
    public static void main(String[] args) throws Exception {
        List<Integer> x0 = Sol.f(3);
        List<Integer> v0 = Arrays.asList(3, 1, 4);
        if (!(compare(x0, v0))) {
            throw new java.lang.Exception("Exception -- test case 0 did not pass. x0 = " + x0);
        }

        List<Integer> x1 = Sol.f(2);
        List<Integer> v1 = Arrays.asList(2, 7);
        if (!(compare(x1, v1))) {
            throw new java.lang.Exception("Exception -- test case 1 did not pass. x1 = " + x1);
        }
    }
}
""")
INT_TEST = ("class Main {\n" + MBJP_COMPARE + """
    public static void main(String[] args) throws Exception {
        int x0 = Sol.g(1);
        int v0 = 4242;
        if (!(compare(x0, v0))) {
            throw new java.lang.Exception("Exception -- test case 0 did not pass. x0 = " + x0);
        }

        int x1 = Sol.g(2);
        int v1 = 1717;
        if (!(compare(x1, v1))) {
            throw new java.lang.Exception("Exception -- test case 1 did not pass. x1 = " + x1);
        }
    }
}
""")
# MathQA-Java's shape: compare uses Math.abs on doubles.
MATHQA_TEST = """
class Main {
    public static boolean compare(Object obj1, Object obj2) {
        if (obj1 == null && obj2 == null){
            return true;
        } else if (obj1 == null || obj2 == null){
            return false;
        } else {
            if ((obj1 instanceof Double || obj1 instanceof Float) && (obj2 instanceof Double || obj2 instanceof Float)) {
                return Math.abs((double)obj1 - (double)obj2) < 1e-7;
            }
            else
                return obj1.equals(obj2);
        }
    }

    public static void main(String[] args) throws Exception {
        double x0 = Problem.problem();
        if (!(compare(x0, 128.96016000000077))) {
            throw new java.lang.Exception("Exception -- test case 0 did not pass. x0 = " + x0);
        }

    }
}
"""
HEADER = "import java.util.*;\nimport java.lang.reflect.*;\n\n"
HONEST_LIST = HEADER + "class Sol {\n    static List<Integer> f(int n) {\n        return n == 3 ? Arrays.asList(3, 1, 4) : new ArrayList<>(List.of(2, 7));\n    }\n}\n"
HONEST_INT = HEADER + "class Sol {\n    static int g(int n) {\n        return n == 1 ? 4242 : 1717;\n    }\n}\n"
@pytest.fixture(scope="module")
def backend():
    with JavaBackend(1) as be:
        yield be


def run(be: JavaBackend, p: Program, limits: Limits = LIM):
    return be.run([(job(p, limits), p)])[0]


def forged_not_passed(fb):
    assert fb.status is not Status.PASSED, fb
    assert fb.status is not Status.HARNESS_ERROR, fb
    assert fb.tests_passed == 0, fb


def test_honest_programs_pass(backend):
    assert run(backend, java(HONEST_LIST, LIST_TEST)).status is Status.PASSED
    assert run(backend, java(HONEST_INT, INT_TEST)).status is Status.PASSED


def test_honest_idioms_the_sandbox_must_not_break(backend):
    """Parallel streams (JDK threads outside the program's group), Enum.valueOf / EnumSet (JDK reflection
    under doPrivileged), a double-brace map (an anonymous subclass without methods), reflection on its own class."""
    code = HEADER + """class Sol {
    enum Color { RED, GREEN }
    static int g(int n) {
        int s = java.util.stream.IntStream.rangeClosed(1, 1000).parallel().map(i -> i % 3).sum();
        Color c = Color.valueOf("GREEN");
        int k = EnumSet.allOf(Color.class).size();
        Map<String, Integer> m = new HashMap<String, Integer>() {{ put("a", 4242); put("b", 1717); }};
        int own = Sol.class.getDeclaredMethods().length;
        return (s == 1000 && c.ordinal() == 1 && k == 2 && own >= 1) ? m.get(n == 1 ? "a" : "b") : -1;
    }
}
"""
    fb = run(backend, java(code, INT_TEST))
    assert fb.status is Status.PASSED, fb
    maps = HEADER + "class Sol {\n    static List<Integer> f(int n) {\n        return n == 3 ? new ArrayList<Integer>() {{ add(3); add(1); add(4); }}" \
                    " : new LinkedList<>(List.of(2, 7));\n    }\n}\n"
    assert run(backend, java(maps, LIST_TEST)).status is Status.PASSED


LYING_VALUES = {
    "anonymous ArrayList whose equals is always true":
        "return new ArrayList<Integer>() { public boolean equals(Object o) { return true; } };",
    "ArrayList subclass declared by the program":
        "class Liar extends ArrayList<Integer> { public boolean equals(Object o) { return true; } }\n        return new Liar();",
    "proxy List whose equals is always true":
        "return (List<Integer>) Proxy.newProxyInstance(Sol.class.getClassLoader(), new Class<?>[] {List.class}, "
        "(p, m, a) -> m.getName().equals(\"equals\") ? (Object) true : m.getName().equals(\"hashCode\") ? (Object) 0 : null);",
    "JDK list holding an element whose equals is always true":
        "List raw = new ArrayList();\n        raw.add(new Object() { public boolean equals(Object o) { return true; } });\n        return raw;",
}


@pytest.mark.parametrize("body", list(LYING_VALUES.values()), ids=list(LYING_VALUES))
def test_value_with_lying_equals_is_not_plain_data(backend, body):
    code = HEADER + "class Sol {\n    @SuppressWarnings(\"unchecked\")\n    static List<Integer> f(int n) {\n        " + body + "\n    }\n}\n"
    fb = run(backend, java(code, LIST_TEST))
    forged_not_passed(fb)
    assert fb.status is Status.FAILED and fb.error_type == "NotPlainData", fb
    assert "not plain data" in fb.error_message and fb.error_scope.value == "ignore"
    assert [o.value for o in fb.test_outcomes] == ["fail", "fail"]


def test_proxy_in_the_bootstrap_loader_is_denied(backend):
    code = HEADER + "class Sol {\n    @SuppressWarnings(\"unchecked\")\n    static List<Integer> f(int n) {\n" \
                    "        return (List<Integer>) Proxy.newProxyInstance(null, new Class<?>[] {List.class}, (p, m, a) -> true);\n    }\n}\n"
    fb = run(backend, java(code, LIST_TEST))
    forged_not_passed(fb)
    assert fb.status is Status.RUNTIME_ERROR and fb.error_type == "SecurityException" and fb.error_line == 7, fb


@pytest.mark.parametrize("name", ["Math", "String", "Integer", "Object", "Arrays", "List", "Objects"])
def test_class_named_like_a_jdk_type_is_a_compile_error(backend, name):
    shadow = f"class {name} {{\n    public static double abs(double x) {{ return 0.0; }}\n    public boolean equals(Object o) {{ return true; }}\n}}\n"
    code = "import java.util.*;\n\n" + shadow + "class Problem {\n    public static double problem() {\n        return 1.0;\n    }\n}\n"
    fb = run(backend, java(code, MATHQA_TEST))
    assert fb.status is Status.COMPILE_ERROR, fb
    assert fb.error_type == "shadows.jdk.type" and fb.error_line == 3 and fb.error_scope.value == "line"
    assert f"type {name} shadows java." in fb.error_message and "(line 3, column 1)" in fb.error_message


def test_nested_class_named_like_a_jdk_type_is_a_compile_error(backend):
    code = HEADER + "class Sol {\n    static class Math { static int abs(int x) { return 0; } }\n" \
                    "    static int g(int n) {\n        return Math.abs(n);\n    }\n}\n"
    fb = run(backend, java(code, INT_TEST))
    assert fb.status is Status.COMPILE_ERROR and fb.error_type == "shadows.jdk.type" and fb.error_line == 5


def test_math_shadow_no_longer_passes_mathqa(backend):
    """The old forge: `class Math` next to the solution made the test's Math.abs return 0."""
    code = "class Math {\n    public static double abs(double x) { return 0.0; }\n}\n" \
           "class Problem {\n    public static double problem() {\n        return 1.0;\n    }\n}\n"
    forged_not_passed(run(backend, java(code, MATHQA_TEST)))


REFLECT_GUESS = HEADER + """class Sol {
    static int guess = -1;
    static boolean inner;
    static int g(int n) {
        if (inner) return guess;
        inner = true;
        try {
            Class<?> main = Class.forName("Main");
            for (Method m : main.getDeclaredMethods()) {
                if (!m.getName().startsWith("__tcf") && !m.getName().equals("main")) continue;
                m.setAccessible(true);
                for (int g = 0; g < 5000; g++) {
                    guess = g;
                    try {
                        Object r = m.getParameterCount() == 0 ? m.invoke(null) : m.invoke(null, (Object) new String[0]);
                        if (r == null) return g;  // a check method that did not throw: the answer
                    } catch (Throwable t) { }
                }
            }
        } catch (Throwable t) { }
        finally { inner = false; }
        return guess;
    }
}
"""


def test_reflection_into_the_test_class_cannot_find_the_answer(backend):
    fb = run(backend, java(REFLECT_GUESS, INT_TEST))
    forged_not_passed(fb)
    assert fb.status is Status.FAILED and fb.error_type == "WrongAnswer", fb


def test_expected_values_never_reach_the_candidate_jvm(backend):
    assert run(backend, java(HONEST_INT, INT_TEST)).status is Status.PASSED  # starts the pool
    plan = backend.oracle.plan(INT_TEST)
    assert "4242" not in plan.probe_source and "1717" not in plan.probe_source
    assert "Sol.g(1)" in plan.probe_source and "Sol.g(1)" not in plan.trusted_source
    assert "4242" in plan.trusted_source and "compare(x0, v0)" in plan.trusted_source


FORGE_PROTOCOL = HEADER + """class Sol {
    static String line() {
        return "{\\"status\\":\\"ran\\",\\"checks\\":[{\\"o\\":\\"pass\\"},{\\"o\\":\\"pass\\"}],\\"recycle\\":false}\\n";
    }
    static int g(int n) {
        String forged = line();
        try {  // the worker's own protocol stream, through the system class loader
            Class<?> w = ClassLoader.getSystemClassLoader().loadClass("TcfJavaWorker");
            Field f = w.getDeclaredField("proto");
            f.setAccessible(true);
            java.io.PrintStream p = (java.io.PrintStream) f.get(null);
            p.print(forged);
            p.flush();
        } catch (Throwable t) { }
        try { new java.io.FileOutputStream(java.io.FileDescriptor.out).write(forged.getBytes()); } catch (Throwable t) { }
        try (java.io.FileOutputStream o = new java.io.FileOutputStream("/proc/self/fd/1")) { o.write(forged.getBytes()); } catch (Throwable t) { }
        try (java.io.FileOutputStream o = new java.io.FileOutputStream("/dev/stdout")) { o.write(forged.getBytes()); } catch (Throwable t) { }
        return 0;
    }
}
"""


def test_forged_protocol_line_is_not_a_pass_and_the_channel_stays_in_sync(backend):
    fb = run(backend, java(FORGE_PROTOCOL, INT_TEST))
    forged_not_passed(fb)
    # the next program in the same worker is judged on its own reply
    assert run(backend, java(HONEST_INT, INT_TEST)).status is Status.PASSED
    assert run(backend, java(HONEST_INT.replace("4242", "1"), INT_TEST)).status is Status.FAILED


UNSAFE = HEADER + """class Sol {
    static int g(int n) {
        try {
            Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            sun.misc.Unsafe u = (sun.misc.Unsafe) f.get(null);
            Field value = Integer.class.getDeclaredField("value");
            long off = u.objectFieldOffset(value);
            u.putInt(Integer.valueOf(7), off, n == 1 ? 4242 : 1717);  // boxed 7 now reads as the answer
        } catch (Throwable t) { }
        return 7;
    }
}
"""


def test_unsafe_on_the_integer_cache_is_not_a_pass_and_does_not_leak(backend):
    fb = run(backend, java(UNSAFE, INT_TEST))
    forged_not_passed(fb)
    # a later program boxing 7 in the same worker JVM still sees 7
    seven = HEADER + "class Sol {\n    static int g(int n) {\n        Integer s = 7;\n        return s == 7 ? (n == 1 ? 4242 : 1717) : 0;\n    }\n}\n"
    assert run(backend, java(seven, INT_TEST)).status is Status.PASSED


ROOT_THREAD = HEADER + """class Sol {
    static int g(int n) {
        ThreadGroup root = Thread.currentThread().getThreadGroup();
        try { while (root.getParent() != null) root = root.getParent(); } catch (Throwable t) { }
        Runnable escape = () -> {
            try { new java.io.FileWriter("/tmp/tcf-root-escape").close(); } catch (Throwable t) { }
            try { System.exit(0); } catch (Throwable t) { }
        };
        try {
            Thread t = new Thread(root, escape);
            t.start();
            t.join();
        } catch (Throwable t) { }
        try { Thread t = new Thread(null, escape); t.start(); t.join(); } catch (Throwable t) { }
        return n == 1 ? 4242 : 1717;
    }
}
"""


def test_thread_in_the_root_group_cannot_escape(backend):
    fb = run(backend, java(ROOT_THREAD, INT_TEST))
    forged_not_passed(fb)
    assert fb.status is Status.RUNTIME_ERROR and fb.error_type == "SystemExit", fb  # the exit in its own group is still seen
    assert run(backend, java(HONEST_INT, INT_TEST)).status is Status.PASSED


def test_finalizer_is_still_the_program():
    """A finalizer (code the JVM would run for the program after it ended, outside its threads) is refused at compile time."""
    code = HEADER + """class Sol {
    static class Bomb { protected void finalize() { System.exit(3); } }
    static int g(int n) {
        for (int i = 0; i < 2000; i++) new Bomb();
        System.gc();
        try { Thread.sleep(200); } catch (InterruptedException e) { }
        return n == 1 ? 4242 : 1717;
    }
}
"""
    with JavaBackend(1) as be:
        fb = run(be, java(code, INT_TEST))
        assert fb.status is Status.COMPILE_ERROR and fb.error_type == "finalizer.not.allowed" and fb.error_line == 5, fb
        pids = be.worker_pids()
        for _ in range(3):  # later programs are neither ended nor blamed
            assert run(be, java(HONEST_INT, INT_TEST)).status is Status.PASSED
        assert be.worker_pids() == pids and be.stats["worker_restarts"] == 0


def test_catching_the_stop_and_answering_late_is_a_timeout(backend):
    code = HEADER + """class Sol {
    static int g(int n) {
        long end = System.nanoTime() + 3_000_000_000L;
        while (System.nanoTime() < end) {
            try { Thread.sleep(10); } catch (Throwable t) { }  // swallows interrupts and ThreadDeath
        }
        return n == 1 ? 4242 : 1717;
    }
}
"""
    fb = run(backend, java(code, INT_TEST), Limits(test_timeout_s=0.5, program_timeout_s=6.0))
    forged_not_passed(fb)
    assert fb.status is Status.TIMEOUT and fb.error_scope.value == "global", fb


def test_worker_that_does_not_answer_is_killed_from_outside_and_is_a_timeout(monkeypatch):
    """The Python side holds the program's deadline too: a candidate JVM that has not answered by then
    is killed and replaced, and the program is a timeout (not harness_error). Here the JVM's own
    deadline is made longer than the outside one, as a JVM stalled by its program would be."""
    from trl_codefeedback.execution.java import pool

    slow = HEADER + "class Sol {\n    static int g(int n) {\n        try { Thread.sleep(2500); } catch (Throwable t) { }\n" \
                    "        return n == 1 ? 4242 : 1717;\n    }\n}\n"
    with JavaBackend(1) as be:
        run(be, java(HONEST_INT, INT_TEST))
        [before] = be.worker_pids()
        monkeypatch.setattr(pool, "COMPILE_ALLOWANCE_S", -38.0)  # outside deadline: 10 x 4 (wall_time_factor) - 38 = 2 s
        fb = run(be, java(slow, INT_TEST), Limits(test_timeout_s=5.0, program_timeout_s=10.0))
        forged_not_passed(fb)
        assert fb.status is Status.TIMEOUT and fb.error_scope.value == "global", fb
        assert "killed" in fb.error_message
        monkeypatch.setattr(pool, "COMPILE_ALLOWANCE_S", 30.0)
        assert run(be, java(HONEST_INT, INT_TEST)).status is Status.PASSED
        assert before not in be.worker_pids()


def test_common_pool_work_left_running_recycles_the_worker():
    """Work a program leaves in the JDK's shared ForkJoinPool (outside its thread group) does not outlive its JVM."""
    code = HEADER + """class Sol {
    static int g(int n) {
        java.util.stream.IntStream.range(0, 64).parallel().forEach(i -> {
            if (i % 8 == 0) { long end = System.nanoTime() + 20_000_000_000L; while (System.nanoTime() < end) { } }
        });
        return 0;
    }
}
"""
    with JavaBackend(1) as be:
        run(be, java(HONEST_INT, INT_TEST))
        [before] = be.worker_pids()
        fb = run(be, java(code, INT_TEST), Limits(test_timeout_s=0.5, program_timeout_s=2.0))
        forged_not_passed(fb)
        assert fb.status is Status.TIMEOUT
        assert run(be, java(HONEST_INT, INT_TEST)).status is Status.PASSED
        assert before not in be.worker_pids()


def test_exit_and_garbage_on_stdout_are_the_programs_outcome(backend):
    exits = HEADER + "class Sol {\n    static int g(int n) {\n        System.out.print(\"\\n{\\\"o\\\":\\\"pass\\\"}\\n\");\n" \
                     "        Runtime.getRuntime().halt(0);\n        return 0;\n    }\n}\n"
    fb = run(backend, java(exits, INT_TEST))
    forged_not_passed(fb)
    assert fb.status is Status.RUNTIME_ERROR and fb.error_type == "SystemExit" and fb.error_line == 7


def test_memory_exhaustion_is_resource_limit_not_harness_error(backend):
    code = HEADER + "class Sol {\n    static int g(int n) {\n        List<long[]> keep = new ArrayList<>();\n" \
                    "        while (true) { keep.add(new long[1 << 20]); }\n    }\n}\n"
    fb = run(backend, java(code, INT_TEST), Limits(test_timeout_s=5.0, program_timeout_s=10.0, memory_mb=256))
    forged_not_passed(fb)
    assert fb.status is Status.RESOURCE_LIMIT and fb.error_type == "OutOfMemoryError"
    assert run(backend, java(HONEST_INT, INT_TEST)).status is Status.PASSED


def test_a_test_calling_the_program_inside_its_condition_is_our_fault_not_the_programs(backend):
    """Such a test cannot be judged apart from the program: harness_error for every program, pass or not."""
    test = "class Main { public static void main(String[] a) throws Exception {\n" \
           "  if (Sol.g(1) != 4242) { throw new Exception(\"0\"); }\n} }\n"
    fb = run(backend, java(HONEST_INT, test))
    assert fb.status is Status.HARNESS_ERROR and "condition" in fb.error_message


ROUND_TRIP_TEST = """
class Main {
    public static void main(String[] args) throws Exception {
        Object x0 = Kinds.get(0);
        if (!(x0 == null)) { throw new java.lang.Exception("0"); }
        double x1 = (double) Kinds.get(1);
        if (!(Double.isNaN(x1))) { throw new java.lang.Exception("1"); }
        Object x2 = Kinds.get(2);
        if (!(x2.equals(-0.0f) && x2 instanceof Float)) { throw new java.lang.Exception("2"); }
        Object x3 = Kinds.get(3);
        if (!(x3.equals(new java.math.BigDecimal("12.3400")))) { throw new java.lang.Exception("3"); }
        Object x4 = Kinds.get(4);
        if (!(x4.equals(new java.math.BigInteger("-123456789012345678901234567890")))) { throw new java.lang.Exception("4"); }
        char[] x5 = (char[]) Kinds.get(5);
        if (!(Arrays.equals(x5, new char[] {'a', '\\u00e9', '\\n', '"'}))) { throw new java.lang.Exception("5"); }
        int[][] x6 = (int[][]) Kinds.get(6);
        if (!(Arrays.deepEquals(x6, new int[][] {{1, 2}, {}, {Integer.MIN_VALUE}}))) { throw new java.lang.Exception("6"); }
        String x7 = (String) Kinds.get(7);
        if (!(x7.equals("tab\\tquote\\"emoji\\ud83d\\ude00 end;:"))) { throw new java.lang.Exception("7"); }
        Object x8 = Kinds.get(8);
        if (!(x8 instanceof TreeMap && x8.toString().equals("{a=[1, 2], b=[]}"))) { throw new java.lang.Exception("8"); }
        Object x9 = Kinds.get(9);
        if (!(x9 instanceof HashSet && x9.equals(new HashSet<>(List.of(List.of(1L, (short) 2, (byte) 3), "s", true))))) { throw new java.lang.Exception("9"); }
        Object[] x10 = (Object[]) Kinds.get(10);
        if (!(x10 instanceof String[] && Arrays.equals(x10, new String[] {"p", null}))) { throw new java.lang.Exception("10"); }
    }
}
"""
ROUND_TRIP = HEADER + """class Kinds {
    static Object get(int i) {
        switch (i) {
            case 0: return null;
            case 1: return Double.NaN;
            case 2: return -0.0f;
            case 3: return new java.math.BigDecimal("12.3400");
            case 4: return new java.math.BigInteger("-123456789012345678901234567890");
            case 5: return new char[] {'a', '\\u00e9', '\\n', '"'};
            case 6: return new int[][] {{1, 2}, {}, {Integer.MIN_VALUE}};
            case 7: return "tab\\tquote\\"emoji\\ud83d\\ude00 end;:";
            case 8: { TreeMap<String, List<Integer>> m = new TreeMap<>(); m.put("b", List.of()); m.put("a", Arrays.asList(1, 2)); return m; }
            case 9: return new HashSet<Object>(List.of(List.of(1L, (short) 2, (byte) 3), "s", true));
            default: return new String[] {"p", null};
        }
    }
}
"""


def test_plain_values_of_every_kind_round_trip_exactly(backend):
    """null, NaN, -0.0f, BigDecimal scale, BigInteger, char[] with escapes, int[][], non-BMP strings,
    TreeMap of lists, HashSet of mixed boxes, String[] with null: each check judged on an exact copy."""
    fb = run(backend, java(ROUND_TRIP, ROUND_TRIP_TEST))
    assert fb.status is Status.PASSED and fb.tests_passed == 11, fb
    wrong = ROUND_TRIP.replace('"12.3400"', '"12.34"').replace("(short) 2, (byte) 3), \"s\"", "(short) 2, 3), \"s\"")
    fb = run(backend, java(wrong, ROUND_TRIP_TEST))
    assert fb.tests_passed == 9 and [o.value for o in fb.test_outcomes][3] == "fail" and fb.test_outcomes[9].value == "fail", fb


def test_forged_replies_are_the_programs_protocol_error_never_a_pass(backend):
    """Replies the candidate side could forge if it owned its channel: each is checked against the plan."""
    from trl_codefeedback.execution.java.pool import VALUE_CHARS, _valid_checks

    assert run(backend, java(HONEST_INT, INT_TEST)).status is Status.PASSED  # starts the pool
    plan = backend.oracle.plan(INT_TEST)
    good = [{"o": "value", "v": ["I4242;"]}, {"o": "error", "type": "X", "msg": "m", "line": 3}]
    assert _valid_checks(good, plan)
    for bad in ([{"o": "pass"}, {"o": "pass"}],                                   # claims a pass
                [{"o": "value", "v": ["I4242;"]}],                                # a check missing
                [{"o": "value", "v": ["I1;", "I2;"]}, {"o": "not_run"}],          # more values than the check has
                [{"o": "fail", "type": "WrongAnswer"}, {"o": "not_run"}],         # only the oracle says WrongAnswer
                [{"o": "value", "v": ["s" * (VALUE_CHARS + 1)]}, {"o": "not_run"}],  # over the value cap
                "checks"):
        assert not _valid_checks(bad, plan), bad
    # values that parse wrongly are judged by the oracle as the program's ProtocolError
    judged = backend.oracle.judge(plan, {0: ["I42"], 1: ["A3:[J99999999;"]}, test_timeout_s=1.0)
    assert [judged[0]["o"], judged[1]["o"]] == ["error", "error"] and judged[0]["type"] == "ProtocolError"
    judged = backend.oracle.judge(plan, {0: ["I4242;"], 1: ["s4:1717"]}, test_timeout_s=1.0)
    assert judged[0]["o"] == "pass" and judged[1]["o"] == "error" and judged[1]["type"] == "ClassCastException"
