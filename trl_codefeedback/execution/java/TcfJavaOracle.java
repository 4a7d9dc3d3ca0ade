// trl-codefeedback trusted oracle: a JVM that never loads a program's classes. It compiles each
// test class once (cached by key) with every actual expression replaced by a value read, and
// judges a program's checks by running the test's own statements (its compare, its conditions,
// its throw) on values decoded from the candidate JVM's plain, tagged encoding (TcfValues).
//
// Requests ("key nbytes\n<bytes>\n" blocks ended by "END\n"), field "op":
//   analyze  n, path<i>, source<i>  -> javac errors with offsets and unit (which statements need the program)
//   compile  n, path<i>, source<i>  -> compiles all in one javac task and caches each test class by its package
// (several tests per request: one javac task amortised over them; each unit has its own package)
//   judge    key, checks, v<i>  -> one outcome per check: pass / fail / error / timeout
// One JSON line back per request.
import java.io.*;
import java.lang.reflect.*;
import java.nio.charset.StandardCharsets;
import java.util.*;

public final class TcfJavaOracle {
    private static final List<String> OPTS = List.of("-proc:none", "-nowarn", "-Xlint:none", "-implicit:none", "-Xmaxerrs", "10000");
    private static final int CACHE = 4096;
    private static final Map<String, Map<String, byte[]>> compiled = new LinkedHashMap<>(64, 0.75f, true) {
        @Override protected boolean removeEldestEntry(Map.Entry<String, Map<String, byte[]>> e) { return size() > CACHE; }
    };
    private static TcfCommon.Compiler compiler;
    // Loaded trusted test classes by key: loading and verifying once per test, not once per program.
    private static final Map<String, Class<?>> loaded = new LinkedHashMap<>(64, 0.75f, true) {
        @Override protected boolean removeEldestEntry(Map.Entry<String, Class<?>> e) { return size() > 512; }
    };

    public static void main(String[] args) throws Exception {
        PrintStream proto = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
        InputStream in = new BufferedInputStream(new FileInputStream(FileDescriptor.in), 1 << 16);
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        System.setOut(quiet);  // a test that prints must not reach the protocol
        System.setErr(quiet);
        System.setIn(new ByteArrayInputStream(new byte[0]));
        try {
            compiler = new TcfCommon.Compiler();
        } catch (Throwable e) {
            proto.println("{\"hello\":false,\"error\":" + TcfCommon.q(String.valueOf(e.getMessage())) + "}");
            proto.flush();
            return;
        }
        proto.println("{\"hello\":true,\"oracle\":true,\"task_pool\":" + (compiler.pool != null) + ",\"java\":" + TcfCommon.q(System.getProperty("java.version")) + "}");
        proto.flush();
        while (true) {
            Map<String, String> req = TcfCommon.readRequest(in);
            if (req == null) return;
            String resp;
            try {
                resp = handle(req);
            } catch (Throwable e) {
                resp = "{\"error\":" + TcfCommon.q(TcfCommon.clip("java oracle: " + TcfCommon.stackTrace(e), 2000)) + ",\"recycle\":true}";
            }
            proto.println(resp);
            proto.flush();
            if (resp.contains("\"recycle\":true")) return;
        }
    }

    static String handle(Map<String, String> req) throws Exception {
        String op = req.get("op");
        if ("analyze".equals(op)) {
            TcfCommon.Result r = compiler.compile(units(req), OPTS, t -> {
                try { t.analyze(); return true; } catch (IOException | RuntimeException e) { return false; }
            });
            return "{\"ok\":" + r.ok + ",\"diagnostics\":" + diags(r) + ",\"ms\":" + r.ms + "}";
        }
        if ("compile".equals(op)) {
            TcfCommon.Result r = compiler.compile(units(req), OPTS, TcfCommon.Compiler::all);
            if (r.ok) {
                Map<String, Map<String, byte[]>> byPackage = new HashMap<>();
                for (Map.Entry<String, byte[]> e : r.classes.entrySet()) {
                    int dot = e.getKey().lastIndexOf('.');
                    if (dot > 0) byPackage.computeIfAbsent(e.getKey().substring(0, dot), k -> new HashMap<>()).put(e.getKey(), e.getValue());
                }
                compiled.putAll(byPackage);
            }
            return "{\"ok\":" + r.ok + ",\"diagnostics\":" + diags(r) + ",\"ms\":" + r.ms + "}";
        }
        if ("judge".equals(op)) return judge(req);
        throw new IllegalArgumentException("unknown op " + op);
    }

    static List<TcfCommon.MemSource> units(Map<String, String> req) {
        int n = Integer.parseInt(req.get("n"));
        List<TcfCommon.MemSource> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(new TcfCommon.MemSource(req.get("path" + i), req.get("source" + i)));
        return out;
    }

    static String diags(TcfCommon.Result r) {
        StringBuilder b = new StringBuilder("[");
        for (javax.tools.Diagnostic<? extends javax.tools.JavaFileObject> d : r.errors) b.append(b.length() > 1 ? "," : "").append(TcfCommon.diagJson(d, 0));
        return b.append(']').toString();
    }

    static final class Loader extends ClassLoader {
        private final Map<String, byte[]> classes;
        Loader(Map<String, byte[]> classes) { super("tcf-trusted-test", ClassLoader.getPlatformClassLoader()); this.classes = classes; }
        @Override protected Class<?> findClass(String name) throws ClassNotFoundException {
            byte[] b = classes.get(name);
            if (b == null) throw new ClassNotFoundException(name);
            return defineClass(name, b, 0, b.length);
        }
    }

    /** "<n>;" then n times "<len>:<encoded value>" (the values one check sent). */
    static Object[] values(String s) throws TcfValues.Malformed {
        int semi = s.indexOf(';');
        if (semi < 1 || semi > 6) throw new TcfValues.Malformed("bad value count");
        int n = Integer.parseInt(s.substring(0, semi));
        Object[] out = new Object[n];
        int p = semi + 1;
        for (int k = 0; k < n; k++) {
            int colon = s.indexOf(':', p);
            if (colon < 0) throw new TcfValues.Malformed("bad value framing");
            int len = Integer.parseInt(s.substring(p, colon));
            if (len < 0 || colon + 1 + len > s.length()) throw new TcfValues.Malformed("bad value length");
            out[k] = TcfValues.decode(s.substring(colon + 1, colon + 1 + len));
            p = colon + 1 + len;
        }
        if (p != s.length()) throw new TcfValues.Malformed("trailing data");
        return out;
    }

    static final class Box { volatile boolean done; volatile Throwable err, bad; }

    static String judge(Map<String, String> req) throws Exception {
        String key = req.get("key");
        Map<String, byte[]> classes = compiled.get(key);
        if (classes == null) return "{\"missing\":true}";
        long testMs = Long.parseLong(req.get("test_timeout_ms"));
        Class<?> main = loaded.get(key);
        if (main == null) {
            main = new Loader(classes).loadClass(key + ".Main");
            loaded.put(key, main);
        }
        Field in = main.getDeclaredField("__tcf_in");
        in.setAccessible(true);
        StringBuilder out = new StringBuilder("{\"checks\":[");
        boolean recycle = false;
        String[] checks = req.get("checks").split(",");
        for (int c = 0; c < checks.length; c++) {
            if (c > 0) out.append(',');
            String[] parts = checks[c].split(":");
            String raw = req.get("v" + parts[0]);
            Method m = main.getDeclaredMethod(parts[1]);
            m.setAccessible(true);
            Box box = new Box();
            // Decoding runs in the timed thread too: whatever the values are, the trusted side spends at
            // most the check's time limit on them (the decoder also refuses hash-colliding sets up front).
            Thread t = new Thread(null, () -> {
                try {
                    Object[] vals;
                    try {
                        vals = values(raw);
                    } catch (TcfValues.Malformed | RuntimeException | OutOfMemoryError e) {
                        box.bad = e;
                        return;
                    }
                    in.set(null, vals);
                    m.invoke(null);
                } catch (InvocationTargetException e) { box.err = e.getCause(); } catch (Throwable e) { box.err = e; }
                finally { box.done = true; }
            }, "tcf-judge", 16L << 20);
            t.setDaemon(true);
            t.start();
            t.join(Math.max(1, testMs));
            if (!box.done) {
                out.append("{\"o\":\"timeout\",\"type\":\"Timeout\",\"msg\":\"the test's comparison exceeded the time limit\"}");
                if (!TcfJavaWorker.stop(t)) recycle = true;
                loaded.remove(key);  // its statics may be half-updated
                continue;
            }
            if (box.bad instanceof TcfValues.Refused) {
                out.append("{\"o\":\"fail\",\"type\":\"NotPlainData\",\"msg\":").append(TcfCommon.q("the value cannot be judged: " + box.bad.getMessage())).append('}');
                continue;
            }
            if (box.bad != null) {
                out.append("{\"o\":\"error\",\"type\":\"ProtocolError\",\"msg\":").append(TcfCommon.q("malformed value from the program's JVM: " + box.bad.getMessage())).append('}');
                continue;
            }
            Throwable e = box.err;
            if (e == null) out.append("{\"o\":\"pass\"}");
            else if (e.getClass() == Exception.class) out.append("{\"o\":\"fail\",\"type\":\"WrongAnswer\",\"msg\":").append(TcfCommon.q(TcfCommon.clip(String.valueOf(e.getMessage()), 1000))).append('}');
            else out.append("{\"o\":\"error\",\"type\":").append(TcfCommon.q(e.getClass().getSimpleName())).append(",\"msg\":")
                     .append(TcfCommon.q(TcfCommon.clip(e.getMessage() == null ? e.getClass().getName() : e.getMessage(), 1000))).append('}');
        }
        return out.append("],\"recycle\":").append(recycle).append('}').toString();
    }
}
