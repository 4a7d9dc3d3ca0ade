// trl-codefeedback Java worker: a long-lived JVM that compiles candidate programs in memory
// (javax.tools) and runs their test checks, each program in its own class loader.
// Protocol (stdin): blocks of "key nbytes\n<bytes>\n" lines ended by "END\n"; one JSON line back.
// Untrusted threads run in ThreadGroup "tcf-sandbox"; a SecurityManager (Java 17, deprecated but
// functional) traps System.exit / Runtime.halt, process spawning, file writes, sockets and
// stdout/stderr replacement for those threads only.
import javax.tools.*;
import java.io.*;
import java.lang.reflect.*;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.Permission;
import java.util.*;

public final class TcfJavaWorker {
    static final ThreadGroup SANDBOX = new ThreadGroup("tcf-sandbox");
    static PrintStream proto;
    static JavaCompiler compiler;
    static StandardJavaFileManager stdFm;
    static MemFm memFm;
    static volatile boolean exitAttempted;
    static volatile StackTraceElement[] exitTrace;
    static final CapStream CAP = new CapStream();
    static boolean securityManager;
    // JavacTaskPool (jdk.compiler internal, used by jshell) reuses javac's Context between
    // compilations, so the JDK's symbols are read once: several times faster than getTask().
    static com.sun.tools.javac.api.JavacTaskPool pool;

    static final class ExitTrap extends SecurityException {
        ExitTrap(int status) { super("System.exit(" + status + ") called by the program"); }
    }

    static final class OutputLimitError extends Error {
        OutputLimitError() { super("program printed more than the output cap"); }
    }

    static boolean inSandbox() {
        ThreadGroup g = Thread.currentThread().getThreadGroup();
        return g != null && (g == SANDBOX || SANDBOX.parentOf(g));
    }

    static final class Guard extends SecurityManager {
        @Override public void checkPermission(Permission p) {
            if (!inSandbox()) return;
            String name = p.getName();
            if (p instanceof RuntimePermission) {
                if (name.startsWith("exitVM")) {
                    exitAttempted = true;
                    ExitTrap t = new ExitTrap(0);
                    exitTrace = t.getStackTrace();
                    throw t;
                }
                if (name.equals("setSecurityManager") || name.equals("createSecurityManager") || name.equals("setIO")
                        || name.equals("writeFileDescriptor") || name.equals("readFileDescriptor")) {
                    throw new SecurityException("denied in sandbox: " + p);
                }
            } else if (p instanceof FilePermission) {
                String a = p.getActions();
                if (a.contains("write") || a.contains("delete") || a.contains("execute")) throw new SecurityException("denied in sandbox: " + p);
            } else if (p instanceof java.net.SocketPermission) {
                throw new SecurityException("denied in sandbox: " + p);
            }
        }
        @Override public void checkPermission(Permission p, Object ctx) { checkPermission(p); }
        @Override public void checkExit(int status) {
            if (!inSandbox()) return;
            exitAttempted = true;
            ExitTrap t = new ExitTrap(status);
            exitTrace = t.getStackTrace();
            throw t;
        }
    }

    /** Counts what the program prints; over the cap it throws in the printing thread. */
    static final class CapStream extends OutputStream {
        volatile long count, cap = Long.MAX_VALUE;
        volatile boolean exceeded;
        @Override public void write(int b) { add(1); }
        @Override public void write(byte[] b, int off, int len) { add(len); }
        void add(long n) {
            if (!inSandbox()) return;
            count += n;
            if (count > cap) { exceeded = true; throw new OutputLimitError(); }
        }
    }

    // ------------------------------------------------------------------ in-memory compilation

    static final class MemSource extends SimpleJavaFileObject {
        final String src;
        MemSource(String cls, String src) { super(URI.create("string:///" + cls + ".java"), Kind.SOURCE); this.src = src; }
        @Override public CharSequence getCharContent(boolean ignore) { return src; }
    }

    static final class MemClass extends SimpleJavaFileObject {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        MemClass(String name) { super(URI.create("mem:///" + name.replace('.', '/') + ".class"), Kind.CLASS); }
        @Override public OutputStream openOutputStream() { return bytes; }
    }

    static final class MemFm extends ForwardingJavaFileManager<StandardJavaFileManager> {
        Map<String, MemClass> out = new LinkedHashMap<>();
        MemFm(StandardJavaFileManager fm) { super(fm); }
        @Override public JavaFileObject getJavaFileForOutput(Location loc, String name, JavaFileObject.Kind kind, FileObject sibling) {
            MemClass c = new MemClass(name);
            out.put(name, c);
            return c;
        }
    }

    static final class ProgLoader extends ClassLoader {
        final Map<String, MemClass> classes;
        ProgLoader(Map<String, MemClass> classes) { super("tcf-program", ClassLoader.getPlatformClassLoader()); this.classes = classes; }
        @Override protected Class<?> findClass(String name) throws ClassNotFoundException {
            MemClass c = classes.get(name);
            if (c == null) throw new ClassNotFoundException(name);
            byte[] b = c.bytes.toByteArray();
            return defineClass(name, b, 0, b.length);
        }
    }

    // ------------------------------------------------------------------ JSON out

    static String q(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder(s.length() + 8).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20 || (c >= 0xD800 && c <= 0xDFFF)) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
            }
        }
        return b.append('"').toString();
    }

    static String clip(String s, int n) { return s == null ? null : (s.length() > n ? s.substring(0, n) : s); }

    // ------------------------------------------------------------------ protocol in

    static String readLine(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int c;
        while ((c = in.read()) != -1 && c != '\n') b.write(c);
        if (c == -1 && b.size() == 0) return null;
        return b.toString(StandardCharsets.UTF_8);
    }

    static Map<String, String> readRequest(InputStream in) throws IOException {
        Map<String, String> req = new HashMap<>();
        while (true) {
            String line = readLine(in);
            if (line == null) return null;
            if (line.equals("END")) return req;
            int sp = line.lastIndexOf(' ');
            String key = line.substring(0, sp);
            int n = Integer.parseInt(line.substring(sp + 1));
            byte[] data = in.readNBytes(n);
            in.read(); // newline
            req.put(key, new String(data, StandardCharsets.UTF_8));
        }
    }

    // ------------------------------------------------------------------ main loop

    public static void main(String[] args) throws Exception {
        proto = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
        InputStream in = new BufferedInputStream(new FileInputStream(FileDescriptor.in), 1 << 16);
        compiler = ToolProvider.getSystemJavaCompiler();
        if (compiler == null) {
            proto.println("{\"hello\":false,\"error\":\"no system Java compiler (a JRE, not a JDK?)\"}");
            proto.flush();
            return;
        }
        stdFm = compiler.getStandardFileManager(null, Locale.ROOT, StandardCharsets.UTF_8);
        if (!"0".equals(System.getProperty("tcf.pool"))) {
            try { pool = new com.sun.tools.javac.api.JavacTaskPool(1); } catch (Throwable e) { pool = null; }
        }
        PrintStream cap = new PrintStream(CAP, true, StandardCharsets.UTF_8);
        System.setOut(cap);
        System.setErr(cap);
        System.setIn(new ByteArrayInputStream(new byte[0]));  // programs read an empty stdin, never the protocol
        try {
            System.setSecurityManager(new Guard());
            securityManager = true;
        } catch (Throwable e) {
            securityManager = false;
        }
        proto.println("{\"hello\":true,\"security_manager\":" + securityManager + ",\"task_pool\":" + (pool != null) + ",\"java\":" + q(System.getProperty("java.version")) + "}");
        proto.flush();
        while (true) {
            Map<String, String> req = readRequest(in);
            if (req == null) return;
            String resp;
            try {
                resp = handle(req);
            } catch (Throwable e) {
                StringWriter sw = new StringWriter();
                e.printStackTrace(new PrintWriter(sw));
                resp = "{\"status\":\"harness_error\",\"error_type\":\"HarnessError\",\"error_message\":" + q(clip("java worker: " + sw, 2000)) + ",\"recycle\":true}";
            }
            proto.println(resp);
            proto.flush();
            if (resp.contains("\"recycle\":true")) return;  // the parent starts a fresh worker
        }
    }

    static String handle(Map<String, String> req) throws Exception {
        String cls = req.getOrDefault("file", "Main");
        String src = req.get("source");
        int candLines = Integer.parseInt(req.get("candidate_lines"));
        long t0 = System.nanoTime();
        // One file manager for the life of the worker (the task pool keeps the first one it sees).
        if (memFm == null) memFm = new MemFm(stdFm);
        MemFm fm = memFm;
        fm.out = new LinkedHashMap<>();
        DiagnosticCollector<JavaFileObject> diags = new DiagnosticCollector<>();
        List<String> opts = List.of("-proc:none", "-g", "-nowarn", "-Xlint:none", "-implicit:none", "-Xmaxerrs", "20");
        List<MemSource> units = List.of(new MemSource(cls, src));
        boolean ok = pool != null
                ? pool.getTask(null, fm, diags, opts, null, units, task -> task.call())
                : compiler.getTask(null, fm, diags, opts, null, units).call();
        long compileMs = (System.nanoTime() - t0) / 1_000_000;
        StringBuilder ds = new StringBuilder("[");
        for (Diagnostic<? extends JavaFileObject> d : diags.getDiagnostics()) {
            if (d.getKind() != Diagnostic.Kind.ERROR) continue;
            if (ds.length() > 1) ds.append(',');
            long line = d.getLineNumber();
            ds.append("{\"kind\":").append(q(d.getKind().name().toLowerCase()))
              .append(",\"code\":").append(q(d.getCode()))
              .append(",\"line\":").append(line)
              .append(",\"column\":").append(d.getColumnNumber())
              .append(",\"message\":").append(q(clip(d.getMessage(Locale.ROOT), 1000))).append('}');
        }
        ds.append(']');
        String checks = req.getOrDefault("checks", "");
        if (!ok || checks.isEmpty()) {
            return "{\"status\":" + q(ok ? "compiled" : "compile_error") + ",\"diagnostics\":" + ds + ",\"compile_ms\":" + compileMs + "}";
        }
        return run(fm.out, checks.split(","), cls, candLines, req, compileMs);
    }

    static final class Box { volatile Throwable err; volatile boolean done; }

    static String run(Map<String, MemClass> classes, String[] checks, String file, int candLines, Map<String, String> req, long compileMs) throws Exception {
        long testMs = Long.parseLong(req.get("test_timeout_ms"));
        long progMs = Long.parseLong(req.get("program_timeout_ms"));
        long t0 = System.nanoTime();
        long deadline = t0 + progMs * 1_000_000L;
        exitAttempted = false;
        exitTrace = null;
        CAP.count = 0;
        CAP.exceeded = false;
        CAP.cap = Long.parseLong(req.get("output_bytes"));
        ProgLoader loader = new ProgLoader(classes);
        Class<?> main = loader.loadClass(req.getOrDefault("main_class", "Main"));
        ThreadGroup group = new ThreadGroup(SANDBOX, "tcf-program");
        String[] outcomes = new String[checks.length];
        Arrays.fill(outcomes, "not_run");
        String firstType = null, firstMsg = null; long firstLine = -1; String firstOutcome = null;
        boolean recycle = false;
        for (int i = 0; i < checks.length; i++) {
            long left = (deadline - System.nanoTime()) / 1_000_000L;
            if (left <= 0) {
                if (firstOutcome == null) { firstOutcome = "timeout"; firstType = "Timeout"; firstMsg = "program exceeded its time limit"; }
                outcomes[i] = "timeout";
                break;
            }
            final Method m = checks[i].equals("main") ? main.getDeclaredMethod("main", String[].class) : main.getDeclaredMethod(checks[i]);
            m.setAccessible(true);
            final boolean isMain = checks[i].equals("main");
            final Box box = new Box();
            Thread t = new Thread(group, () -> {
                try {
                    if (isMain) m.invoke(null, (Object) new String[0]); else m.invoke(null);
                } catch (InvocationTargetException e) {
                    box.err = e.getCause();
                } catch (Throwable e) {
                    box.err = e;
                } finally {
                    box.done = true;
                }
            }, "tcf-check-" + i, 16L << 20);
            t.setContextClassLoader(loader);
            t.start();
            t.join(Math.max(1, Math.min(testMs, left)));
            String o; String type = null, msg = null; long line = -1;
            if (t.isAlive() && !box.done) {
                o = "timeout"; type = "Timeout";
                msg = testMs <= left ? "test " + i + " exceeded its time limit" : "program exceeded its time limit";
                if (!stop(t)) recycle = true;
            } else {
                Throwable e = box.err;
                if (exitAttempted) {
                    o = "error"; type = "SystemExit"; msg = "System.exit called by the program before the tests finished";
                    line = candidateLine(exitTrace, file, candLines);
                } else if (e instanceof OutputLimitError || CAP.exceeded) {  // even when the program caught it
                    o = "resource"; type = "OutputLimitExceeded"; msg = "program printed more than " + CAP.cap + " bytes";
                } else if (e == null) {
                    o = "pass";
                } else if (e instanceof OutOfMemoryError) {
                    o = "resource"; type = "OutOfMemoryError"; msg = String.valueOf(e.getMessage());
                    recycle = true;
                } else {
                    line = candidateLine(e.getStackTrace(), file, candLines);
                    StackTraceElement[] st = e.getStackTrace();
                    boolean testFailure = e.getClass() == Exception.class && st.length > 0 && st[0].getClassName().equals(main.getName())
                            && line < 0;
                    o = testFailure ? "fail" : "error";
                    type = testFailure ? "WrongAnswer" : e.getClass().getSimpleName();
                    msg = e.getMessage() == null ? e.getClass().getName() : e.getMessage();
                }
            }
            outcomes[i] = o;
            if (!o.equals("pass") && firstOutcome == null) { firstOutcome = o; firstType = type; firstMsg = msg; firstLine = line; }
            if (recycle || exitAttempted) break;
            if (o.equals("timeout") && System.nanoTime() >= deadline) break;
        }
        // Leftover threads: daemon ones are stopped (a plain JVM would exit past them); a
        // non-daemon thread keeps a plain JVM alive, so it counts as a timeout once the deadline passes.
        Thread[] left = new Thread[group.activeCount() + 8];
        int n = group.enumerate(left, true);
        boolean nonDaemon = false;
        for (int i = 0; i < n; i++) if (!left[i].isDaemon()) nonDaemon = true;
        if (nonDaemon) {
            for (int i = 0; i < n; i++) {
                if (left[i].isDaemon()) continue;
                long ms = (deadline - System.nanoTime()) / 1_000_000L;
                if (ms > 0) left[i].join(ms);
            }
            n = group.enumerate(left, true);
            boolean still = false;
            for (int i = 0; i < n; i++) if (!left[i].isDaemon() && left[i].isAlive()) still = true;
            if (still && (firstOutcome == null || firstOutcome.equals("fail"))) {
                firstOutcome = "timeout"; firstType = "Timeout"; firstMsg = "a thread started by the program was still running at the time limit"; firstLine = -1;
                for (int i = 0; i < outcomes.length; i++) if (outcomes[i].equals("pass")) outcomes[i] = "timeout";
            }
        }
        n = group.enumerate(left, true);
        for (int i = 0; i < n; i++) if (!stop(left[i])) recycle = true;
        if (!recycle) {
            try { group.destroy(); } catch (Throwable ignored) { }
        }
        if (exitAttempted && (firstOutcome == null || !"SystemExit".equals(firstType))) {
            firstOutcome = "error"; firstType = "SystemExit"; firstMsg = "System.exit called by the program"; firstLine = candidateLine(exitTrace, file, candLines);
            for (int i = 0; i < outcomes.length; i++) if (outcomes[i].equals("pass")) { outcomes[i] = "error"; break; }
        }
        long runMs = (System.nanoTime() - t0) / 1_000_000;
        StringBuilder b = new StringBuilder("{\"status\":\"ran\",\"outcomes\":[");
        for (int i = 0; i < outcomes.length; i++) b.append(i > 0 ? "," : "").append(q(outcomes[i]));
        b.append("],\"first\":").append(q(firstOutcome))
         .append(",\"error_type\":").append(q(firstType))
         .append(",\"error_message\":").append(q(clip(firstMsg, 1000)))
         .append(",\"line\":").append(firstLine)
         .append(",\"compile_ms\":").append(compileMs)
         .append(",\"run_ms\":").append(runMs)
         .append(",\"recycle\":").append(recycle).append('}');
        return b.toString();
    }

    @SuppressWarnings("deprecation")
    static boolean stop(Thread t) throws InterruptedException {
        for (int k = 0; k < 5 && t.isAlive(); k++) {
            try { t.stop(); } catch (Throwable ignored) { }
            t.join(40);
        }
        return !t.isAlive();
    }

    /** Innermost stack frame in the candidate code (file lines 1..candLines), or -1. */
    static long candidateLine(StackTraceElement[] st, String file, int candLines) {
        if (st == null) return -1;
        String fname = file + ".java";
        for (StackTraceElement f : st) {
            if (fname.equals(f.getFileName()) && f.getLineNumber() >= 1 && f.getLineNumber() <= candLines) return f.getLineNumber();
        }
        return -1;
    }
}
