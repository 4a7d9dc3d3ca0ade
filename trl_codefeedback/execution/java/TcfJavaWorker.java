// trl-codefeedback candidate worker: a long-lived JVM that compiles candidate programs in memory
// and evaluates each check's *actual* expressions, nothing else. It never sees expected values
// or comparisons: each check is a probe method of the test class that runs the statements
// touching the program's classes and returns their values, which go back as plain, tagged data
// (TcfValues) to the trusted oracle (TcfJavaOracle, another JVM) that judges them.
//
// Protocol (stdin): blocks of "key nbytes\n<bytes>\n" ended by "END\n"; one JSON line back that
// starts with the request's nonce. Everything this JVM says is treated as untrusted data.
//
// Containment inside the JVM (the OS sandbox around it is the launcher's job): programs are
// loaded by a fresh class loader per program (parent: the platform loader) with their own
// ProtectionDomain; a SecurityManager denies, whenever a program class is on the access-control
// stack (threads it starts, finalizers, callbacks from JDK code) or the thread belongs to the
// program's thread group: System.exit / halt, processes (also ProcessHandle), file writes, /proc and /dev reads
// (judged on the normalised and the canonical path),
// sockets, raw file descriptors, replacing System.in/out/err, reflection past access checks
// (sun.misc.Unsafe, the worker's fields), internal packages, class loaders, system properties,
// and starting or touching threads outside its own thread group, JVM-wide setters (logging, net
// defaults, factories, MBean server, preferences). At a program's end it is closed (its threads may
// start no thread), its threads are stopped and its group destroyed; anything of it left (threads,
// program frames elsewhere, threads the JDK started for it, pinned heap) recycles the worker (end()).
//
// Time limits (docs/java.md): test_timeout_ms and program_timeout_ms count CPU time (the CpuMeter
// below: every Java thread of the JVM but this worker's own, from the kernel's per-thread clocks;
// JIT and GC threads are not Java-visible and not counted); the wall clock caps a probe at
// wall_time_factor x test_timeout_ms and the program at wall_time_factor x program_timeout_ms.
import java.io.*;
import java.lang.management.ManagementFactory;
import java.lang.management.ManagementPermission;
import java.lang.management.ThreadMXBean;
import java.lang.reflect.*;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.security.*;
import java.util.*;
import com.sun.source.tree.*;
import com.sun.source.util.*;

public final class TcfJavaWorker {
    private static final ThreadGroup SANDBOX = new ThreadGroup("tcf-sandbox");
    private static final String PROGRAM_LOADER = "tcf-program";
    private static PrintStream proto;
    private static TcfCommon.Compiler compiler;
    private static volatile boolean exitAttempted;
    private static volatile StackTraceElement[] exitTrace;
    private static final CapStream CAP = new CapStream();
    private static boolean securityManager;
    private static ThreadMXBean tmx;
    private static boolean cpuClock;  // per-thread CPU clocks work (else the time limits fall back to the wall clock)
    private static long workerThreadId;
    private static final long MAX_POLL_NS = 50_000_000L, MIN_POLL_NS = 2_000_000L;
    // The marker only program classes lack. JDK code that creates threads for a program (the common
    // ForkJoinPool's factory) runs in a doPrivileged context that holds it, so it is not taken for the program.
    private static final RuntimePermission TRUSTED = new RuntimePermission("modifyThreadGroup");
    private static final List<String> OPTS = List.of("-proc:none", "-g", "-nowarn", "-Xlint:none", "-implicit:none", "-Xmaxerrs", "20");

    static final class ExitTrap extends SecurityException {
        ExitTrap(int status) { super("System.exit(" + status + ") called by the program"); }
    }

    static final class OutputLimitError extends Error {
        OutputLimitError() { super("program printed more than the output cap"); }
    }

    static boolean inSandbox() {
        ThreadGroup g = Thread.currentThread().getThreadGroup();
        return inSandbox(g);
    }

    static boolean inSandbox(ThreadGroup g) { return g != null && (g == SANDBOX || SANDBOX.parentOf(g)); }

    /** The thread group of the program now running (null between programs). */
    private static volatile ThreadGroup running;

    static boolean within(ThreadGroup g, ThreadGroup top) { return g != null && top != null && (g == top || top.parentOf(g)); }

    /**
     * A sandbox thread that no longer belongs to the program now running: a leftover of an ended
     * program, or a thread of the running program once it is closed (its end, while its threads are
     * stopped). It may not create, start or touch threads or groups, and its System.exit is no one's.
     */
    static boolean stray() {
        ThreadGroup g = Thread.currentThread().getThreadGroup();
        return inSandbox(g) && !within(g, running);
    }

    /** {@code g} and the current thread's group both belong to the program now running. */
    static boolean ownGroup(ThreadGroup g) {
        ThreadGroup r = running;
        return within(g, r) && within(Thread.currentThread().getThreadGroup(), r);
    }

    /** A program class on the access-control stack (honours doPrivileged and inherited contexts). */
    static boolean candidateOnStack() {
        try {
            AccessController.checkPermission(TRUSTED);
            return false;
        } catch (AccessControlException e) {
            return true;
        }
    }

    /** Program classes lack only TRUSTED; the Guard decides the rest. */
    static final class ProgramPolicy extends Policy {
        @Override public boolean implies(ProtectionDomain d, Permission p) {
            return !(d != null && d.getClassLoader() instanceof ProgLoader && TRUSTED.equals(p));
        }
    }

    static boolean deniedInSandbox(Permission p) {
        String name = p.getName();
        if (p instanceof RuntimePermission) {
            return name.equals("setSecurityManager") || name.equals("createSecurityManager") || name.equals("setIO")
                    || name.equals("writeFileDescriptor") || name.equals("readFileDescriptor");
        }
        if (p instanceof FilePermission) {
            String a = p.getActions();
            return a.contains("write") || a.contains("delete") || a.contains("execute");
        }
        return p instanceof java.net.SocketPermission;
    }

    static boolean dangerous(Permission p) {
        if (deniedInSandbox(p)) return true;
        String name = p.getName();
        if (JVM_WIDE.contains(p.getClass().getName())) return jvmWide(p.getClass().getName(), name);
        if (p instanceof RuntimePermission) {
            return name.equals("setFactory") || name.equals("preferences")  // JVM-wide factories (URL, sockets, SSL...); the Preferences tree
                    || name.equals("setContextClassLoader") || name.equals("createClassLoader") || name.equals("getClassLoader")
                    || name.startsWith("accessClassInPackage.sun.") || name.startsWith("accessClassInPackage.jdk.")
                    || name.startsWith("accessClassInPackage.com.sun.") || name.equals("defineClassInPackage")
                    || name.equals("enableContextClassLoaderOverride") || name.equals("setDefaultUncaughtExceptionHandler")
                    || name.equals("shutdownHooks") || name.startsWith("loadLibrary") || name.equals("accessSystemModules")
                    || name.equals("manageProcess");  // ProcessHandle: the host's processes and their command lines
        }
        if (p instanceof ReflectPermission) return name.equals("suppressAccessChecks");
        if (p instanceof ManagementPermission) return name.equals("control");  // e.g. switching off the CPU clocks
        if (p instanceof PropertyPermission) return p.getActions().contains("write");
        if (p instanceof FilePermission) return hostPath(name);
        if (p instanceof SecurityPermission) {
            return name.startsWith("set") || name.startsWith("insert") || name.startsWith("remove") || name.startsWith("putProvider")
                    || name.startsWith("clearProvider") || name.equals("createAccessControlContext");
        }
        return false;
    }

    /**
     * Permission classes (by name: their modules need not be loaded) guarding JVM-wide holders a
     * program could fill and leave behind for later programs in this JVM: the logging tree (root
     * logger handlers), the default cookie handler / proxy selector / authenticator / response cache,
     * the default hostname verifier and SSL context, the platform MBean server.
     */
    private static final Set<String> JVM_WIDE = Set.of("java.util.logging.LoggingPermission", "java.net.NetPermission", "javax.net.ssl.SSLPermission",
            "javax.management.MBeanServerPermission", "javax.management.MBeanTrustPermission", "javax.management.MBeanPermission");

    static boolean jvmWide(String cls, String name) {
        switch (cls) {
            case "java.util.logging.LoggingPermission": return true;  // "control": handlers, levels, configuration
            case "java.net.NetPermission": case "javax.net.ssl.SSLPermission": return name.startsWith("set") || name.equals("specifyStreamHandler");
            default: return true;  // javax.management: the platform MBean server and what registers in it
        }
    }

    private static final Set<String> OPEN_DEVICES = Set.of("/dev/urandom", "/dev/random", "/dev/null", "/dev/zero");

    /**
     * Whether a FilePermission name reaches /proc or /dev (but the harmless devices). The name is the
     * path as the program spelt it ("/./proc", "/tmp/../proc", "../proc", "/dev/fd/3", a symlink such
     * as /etc/mtab): it is judged by its absolute, normalised form and by its canonical form (symlinks
     * resolved where they exist); a wildcard ("dir/-", "dir/*", "<<ALL FILES>>") by whether it covers them.
     */
    static boolean hostPath(String name) {
        if (name.equals("<<ALL FILES>>")) return true;
        boolean wild = name.equals("-") || name.equals("*") || name.endsWith("/-") || name.endsWith("/*");
        String base = wild ? name.substring(0, name.length() - 1) : name;
        String b = base.isEmpty() ? "." : base;
        List<String> forms = AccessController.doPrivileged((PrivilegedAction<List<String>>) () -> {
            List<String> out = new ArrayList<>();
            try {
                out.add(java.nio.file.Paths.get(b).toAbsolutePath().normalize().toString());
                out.add(new File(b).getCanonicalPath());
            } catch (IOException | RuntimeException e) {
                return null;  // a name no path can have (NUL...): refused
            }
            return out;
        });
        if (forms == null) return true;
        for (String f : forms) {
            for (String root : new String[] {"/proc", "/dev"}) {
                if (f.equals(root) || f.startsWith(root + "/")) {
                    if (!(wild || root.equals("/proc")) && OPEN_DEVICES.contains(f)) continue;
                    return true;
                }
                if (wild && (f.equals("/") || (root + "/").startsWith(f + "/"))) return true;  // a wildcard over /proc or /dev
            }
        }
        return false;
    }

    static final class Guard extends SecurityManager {
        private SecurityException deny(Permission p) {
            if (p instanceof RuntimePermission && p.getName().startsWith("exitVM") && inSandbox()) return trapExit(0);
            return new SecurityException("denied in sandbox: " + p);  // (an exit from a finalizer is only denied:
        }                                                              //  it may run during the next program)

        /** An exit counts for the program now running only when one of its own threads calls it. */
        private static SecurityException trapExit(int status) {
            if (stray()) return new SecurityException("denied in sandbox: System.exit(" + status + ") after the program ended");
            exitAttempted = true;
            ExitTrap t = new ExitTrap(status);
            exitTrace = t.getStackTrace();
            return t;
        }

        @Override public void checkPermission(Permission p) {
            boolean exit = p instanceof RuntimePermission && p.getName().startsWith("exitVM");
            if (inSandbox() && (exit || deniedInSandbox(p))) throw deny(p);
            if ((exit || dangerous(p)) && candidateOnStack()) throw deny(p);
        }
        @Override public void checkPermission(Permission p, Object ctx) { checkPermission(p); }
        @Override public void checkExit(int status) {
            if (inSandbox()) throw trapExit(status);
            if (candidateOnStack()) throw new SecurityException("denied in sandbox: System.exit(" + status + ")");
        }
        // Program code (a program class on the stack) may touch only the threads of the program now running,
        // and only from one of them: not another program's, not the sandbox's, and nothing from a thread of the
        // JVM's (Finalizer, common pool) where code of an earlier program might still run.
        // A stray thread (its program ended or is being stopped) touches no thread or group: it cannot start a
        // thread (every Thread constructor checks its group), survive the stop and act during a later program.
        @Override public void checkAccess(ThreadGroup g) {
            if (stray()) throw new SecurityException("denied in sandbox: the program has ended");
            if (!ownGroup(g) && candidateOnStack()) throw new SecurityException("denied in sandbox: a program may only use its own thread group");
            super.checkAccess(g);
        }
        @Override public void checkAccess(Thread t) {
            if (stray()) throw new SecurityException("denied in sandbox: the program has ended");
            if (!ownGroup(t.getThreadGroup()) && candidateOnStack()) throw new SecurityException("denied in sandbox: a program may only touch its own threads");
            super.checkAccess(t);
        }
    }

    /** Counts what the program prints; over the cap it throws in the printing thread. */
    static final class CapStream extends OutputStream {
        volatile long count, cap = Long.MAX_VALUE;
        volatile boolean exceeded;
        @Override public void write(int b) { add(1); }
        @Override public void write(byte[] b, int off, int len) { add(len); }
        void add(long n) {
            if (!inSandbox() || stray()) return;  // a stray's output is no program's
            count += n;
            if (count > cap) { exceeded = true; throw new OutputLimitError(); }
        }
    }

    /** One program's classes, each defined with the program's ProtectionDomain. */
    static final class ProgLoader extends ClassLoader {
        private final Map<String, byte[]> classes;
        private final ProtectionDomain domain;
        ProgLoader(Map<String, byte[]> classes) {
            super(PROGRAM_LOADER, ClassLoader.getPlatformClassLoader());
            this.classes = classes;
            this.domain = new ProtectionDomain(new CodeSource(null, (java.security.cert.Certificate[]) null), null, this, null);
        }
        @Override protected Class<?> findClass(String name) throws ClassNotFoundException {
            byte[] b = classes.get(name);
            if (b == null) throw new ClassNotFoundException(name);
            return defineClass(name, b, 0, b.length, domain);
        }
    }

    // ------------------------------------------------------------------ main loop

    public static void main(String[] args) throws Exception {
        proto = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
        InputStream in = new BufferedInputStream(new FileInputStream(FileDescriptor.in), 1 << 16);
        try {
            compiler = new TcfCommon.Compiler();
        } catch (Throwable e) {
            proto.println("{\"hello\":false,\"error\":" + TcfCommon.q(String.valueOf(e.getMessage())) + "}");
            proto.flush();
            return;
        }
        workerThreadId = Thread.currentThread().getId();
        try {
            tmx = ManagementFactory.getThreadMXBean();
            if (tmx.isThreadCpuTimeSupported() && !tmx.isThreadCpuTimeEnabled()) tmx.setThreadCpuTimeEnabled(true);
            cpuClock = tmx.isThreadCpuTimeSupported() && tmx.isThreadCpuTimeEnabled() && tmx.getCurrentThreadCpuTime() >= 0;
        } catch (Throwable e) {
            cpuClock = false;
        }
        PrintStream cap = new PrintStream(CAP, true, StandardCharsets.UTF_8);
        System.setOut(cap);
        System.setErr(cap);
        System.setIn(new ByteArrayInputStream(new byte[0]));  // programs read an empty stdin, never the protocol
        try {  // before the Guard: its static setup runs a limited doPrivileged, which the Guard would take for the program's
            java.util.logging.LogManager.getLogManager();  // (after setErr: its console handler writes to the capped stream)
            java.util.logging.Logger.getLogger("").getHandlers();
        } catch (Throwable ignored) { }
        try {
            Policy.setPolicy(new ProgramPolicy());
            System.setSecurityManager(new Guard());
            securityManager = true;
        } catch (Throwable e) {
            securityManager = false;
        }
        proto.println("{\"hello\":true,\"security_manager\":" + securityManager + ",\"task_pool\":" + (compiler.pool != null) + ",\"cpu_clock\":" + cpuClock
                + ",\"java\":" + TcfCommon.q(System.getProperty("java.version")) + "}");
        proto.flush();
        while (true) {
            Map<String, String> req = TcfCommon.readRequest(in);
            if (req == null) return;
            String nonce = req.getOrDefault("nonce", "");
            String resp;
            try {
                resp = handle(req);
            } catch (Throwable e) {
                resp = "\"status\":\"harness_error\",\"error_message\":" + TcfCommon.q(TcfCommon.clip("java worker: " + TcfCommon.stackTrace(e), 2000))
                        + ",\"recycle\":true";
            }
            proto.println("{\"nonce\":" + TcfCommon.q(nonce) + "," + resp + "}");
            proto.flush();
            if (resp.contains("\"recycle\":true")) return;  // the parent starts a fresh worker
        }
    }

    /** Public java.lang / java.util types a program may not shadow (Math, String, List, Arrays, ...). */
    static String shadowed(String simpleName) {
        for (String pkg : new String[] {"java.lang.", "java.util."}) {
            try {
                Class<?> c = Class.forName(pkg + simpleName, false, null);
                if (Modifier.isPublic(c.getModifiers())) return c.getName();
            } catch (ClassNotFoundException | LinkageError ignored) { }
        }
        return null;
    }

    /** Parse, reject types named like JDK types in the candidate lines, then analyze and generate. */
    static boolean compileChecked(JavacTask task, int candLines, List<String> extra, Set<String> testClasses) {
        try {
            Iterable<? extends CompilationUnitTree> units = task.parse();
            Trees trees = Trees.instance(task);
            for (CompilationUnitTree unit : units) {
                LineMap lines = unit.getLineMap();
                new TreePathScanner<Void, Void>() {
                    @Override public Void visitClass(ClassTree c, Void v) {
                        String name = c.getSimpleName().toString();
                        long pos = trees.getSourcePositions().getStartPosition(unit, c);
                        long line = pos < 0 ? -1 : lines.getLineNumber(pos);
                        String jdk = name.isEmpty() ? null : shadowed(name);
                        if (jdk != null && line >= 1 && line <= candLines) {
                            extra.add("{\"kind\":\"error\",\"code\":\"compiler.err.shadows.jdk.type\",\"line\":" + line
                                    + ",\"column\":" + lines.getColumnNumber(pos) + ",\"start\":-1,\"end\":-1,\"message\":"
                                    + TcfCommon.q("type " + name + " shadows " + jdk + ": a program may not declare a type named like a "
                                    + "java.lang or java.util type") + "}");
                        }
                        return super.visitClass(c, v);
                    }
                    @Override public Void visitMethod(MethodTree m, Void v) {
                        long pos = trees.getSourcePositions().getStartPosition(unit, m);
                        long line = pos < 0 ? -1 : lines.getLineNumber(pos);
                        if (m.getName().contentEquals("finalize") && m.getParameters().isEmpty() && line >= 1 && line <= candLines) {
                            extra.add(diag("finalizer.not.allowed", line, lines.getColumnNumber(pos), "a program may not declare finalize(): "
                                    + "a finalizer runs in the JVM's finalizer thread after the program has ended"));
                        }
                        return super.visitMethod(m, v);
                    }
                }.scan(unit, null);
            }
            if (!extra.isEmpty()) return false;
            task.analyze();
            // After attribution: a program class may not extend a JDK class whose finalizer calls methods it can
            // override (javax.imageio streams, java.awt.Graphics...), nor take a full-privilege Lookup (which
            // defines classes from bytes, past these checks).
            for (CompilationUnitTree unit : units) {
                LineMap lines = unit.getLineMap();
                new TreePathScanner<Void, Void>() {
                    long lineOf(Tree t) { long pos = trees.getSourcePositions().getStartPosition(unit, t); return pos < 0 ? -1 : lines.getLineNumber(pos); }
                    long colOf(Tree t) { long pos = trees.getSourcePositions().getStartPosition(unit, t); return pos < 0 ? -1 : lines.getColumnNumber(pos); }
                    @Override public Void visitClass(ClassTree c, Void v) {
                        long line = lineOf(c);
                        javax.lang.model.element.Element e = trees.getElement(getCurrentPath());
                        String fin = e instanceof javax.lang.model.element.TypeElement ? inheritedFinalizer((javax.lang.model.element.TypeElement) e) : null;
                        if (fin != null && line >= 1 && line <= candLines) {
                            extra.add(diag("finalizer.not.allowed", line, colOf(c), "a program class may not extend " + fin
                                    + ": its finalizer would run the program's code after the program has ended"));
                        }
                        return super.visitClass(c, v);
                    }
                    @Override public Void visitMethodInvocation(MethodInvocationTree m, Void v) { lookup(m); return super.visitMethodInvocation(m, v); }
                    @Override public Void visitMemberReference(MemberReferenceTree m, Void v) { lookup(m); return super.visitMemberReference(m, v); }
                    void lookup(Tree t) {
                        javax.lang.model.element.Element e = trees.getElement(getCurrentPath());
                        long line = lineOf(t);
                        String reg = e == null ? null : registry(e);
                        if (reg != null && line >= 1 && line <= candLines) {
                            extra.add(diag("registry.not.allowed", line, colOf(t), "a program may not call " + reg
                                    + ": it registers an object JVM-wide, where it outlives the program"));
                        }
                        if (e != null && e.getSimpleName().contentEquals("lookup") && e.getEnclosingElement() instanceof javax.lang.model.element.TypeElement
                                && ((javax.lang.model.element.TypeElement) e.getEnclosingElement()).getQualifiedName().contentEquals("java.lang.invoke.MethodHandles")
                                && line >= 1 && line <= candLines) {
                            extra.add(diag("lookup.not.allowed", line, colOf(t), "a program may not call MethodHandles.lookup(): "
                                    + "a full-privilege Lookup defines classes from bytes"));
                        }
                    }
                }.scan(unit, null);
            }
            if (!extra.isEmpty()) return false;
            // Classes the test part declares (e.g. double-brace `new HashMap(){{...}}` arguments), by binary name.
            javax.lang.model.util.Elements elements = task.getElements();
            for (CompilationUnitTree unit : units) {
                LineMap lines = unit.getLineMap();
                new TreePathScanner<Void, Void>() {
                    @Override public Void visitClass(ClassTree c, Void v) {
                        long pos = trees.getSourcePositions().getStartPosition(unit, c);
                        if (pos >= 0 && lines.getLineNumber(pos) > candLines) {
                            javax.lang.model.element.Element e = trees.getElement(getCurrentPath());
                            if (e instanceof javax.lang.model.element.TypeElement) testClasses.add(elements.getBinaryName((javax.lang.model.element.TypeElement) e).toString());
                        }
                        return super.visitClass(c, v);
                    }
                }.scan(unit, null);
            }
            task.generate();
            return true;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** JDK-wide registries that no permission guards: class -> method. (Reflection still reaches them: the heap check is the backstop.) */
    private static final Map<String, String> REGISTRIES = Map.of("java.time.zone.ZoneRulesProvider", "registerProvider",
            "java.sql.DriverManager", "registerDriver");

    /** "Class.method" when {@code e} is one of {@link #REGISTRIES}, else null. */
    static String registry(javax.lang.model.element.Element e) {
        if (!(e.getEnclosingElement() instanceof javax.lang.model.element.TypeElement)) return null;
        String owner = ((javax.lang.model.element.TypeElement) e.getEnclosingElement()).getQualifiedName().toString();
        String m = REGISTRIES.get(owner);
        return m != null && e.getSimpleName().contentEquals(m) ? owner + "." + m : null;
    }

    static String diag(String code, long line, long column, String message) {
        return "{\"kind\":\"error\",\"code\":\"compiler.err." + code + "\",\"line\":" + line + ",\"column\":" + column
                + ",\"start\":-1,\"end\":-1,\"message\":" + TcfCommon.q(message) + "}";
    }

    /** The first JDK superclass of {@code t} that declares finalize() (Object's and Enum's aside), or null. */
    static String inheritedFinalizer(javax.lang.model.element.TypeElement t) {
        javax.lang.model.type.TypeMirror sup = t.getSuperclass();
        while (sup instanceof javax.lang.model.type.DeclaredType) {
            javax.lang.model.element.TypeElement s = (javax.lang.model.element.TypeElement) ((javax.lang.model.type.DeclaredType) sup).asElement();
            String name = s.getQualifiedName().toString();
            if (name.equals("java.lang.Object") || name.equals("java.lang.Enum")) return null;
            if (name.equals("java.util.concurrent.ThreadPoolExecutor")) { sup = s.getSuperclass(); continue; }  // its finalize() is empty
            for (javax.lang.model.element.Element m : s.getEnclosedElements()) {
                if (m.getKind() == javax.lang.model.element.ElementKind.METHOD && m.getSimpleName().contentEquals("finalize")
                        && ((javax.lang.model.element.ExecutableElement) m).getParameters().isEmpty()
                        && (name.startsWith("java.") || name.startsWith("javax.") || name.startsWith("jdk.") || name.startsWith("com.sun.") || name.startsWith("sun."))) {
                    return name;
                }
            }
            sup = s.getSuperclass();
        }
        return null;
    }

    static String handle(Map<String, String> req) throws Exception {
        String cls = req.getOrDefault("file", "Main");
        int candLines = Integer.parseInt(req.get("candidate_lines"));
        List<String> extra = new ArrayList<>();
        Set<String> testClasses = new HashSet<>();
        TcfCommon.Result r = compiler.compile(cls, req.get("source"), OPTS, task -> compileChecked(task, candLines, extra, testClasses));
        StringBuilder ds = new StringBuilder("[");
        for (String e : extra) ds.append(ds.length() > 1 ? "," : "").append(e);
        for (javax.tools.Diagnostic<? extends javax.tools.JavaFileObject> d : r.errors) ds.append(ds.length() > 1 ? "," : "").append(TcfCommon.diagJson(d, 0));
        ds.append(']');
        String checks = req.getOrDefault("checks", "");
        boolean ok = r.ok && extra.isEmpty();
        if (!ok || checks.isEmpty()) {
            return "\"status\":" + TcfCommon.q(ok ? "compiled" : "compile_error") + ",\"diagnostics\":" + ds + ",\"compile_ms\":" + r.ms;
        }
        recycleWhy = null;
        String ran = run(r.classes, testClasses, checks.split(","), cls, candLines, req, r.ms);
        r = null;
        // Outside run(): the program's loader and classes are unreachable now, so its statics are garbage.
        if (recycleWhy == null && heapRetained()) recycleWhy = "heap: " + (usedHeap() >> 20) + " MB in use after a full GC, " + (heapBaseline >> 20) + " MB before any program";
        return ran + ",\"recycle\":" + (recycleWhy != null) + (recycleWhy != null ? ",\"recycle_reason\":" + TcfCommon.q(recycleWhy) : "");
    }

    /** Why this worker must be replaced after the program now ending (null: it may run the next one). */
    private static String recycleWhy;
    /** Heap in use before any program ran (after a full GC), in bytes; -1 until measured. */
    private static long heapBaseline = -1;

    static long usedHeap() { Runtime rt = Runtime.getRuntime(); return rt.totalMemory() - rt.freeMemory(); }

    /** The heap's pools but the young generation's (Serial: the tenured gen); null: none known, use the whole heap. */
    private static List<java.lang.management.MemoryPoolMXBean> oldPools;

    /**
     * Heap in use outside the young generation: what survived a collection (memory a program pinned
     * and large arrays land there). The program's garbage in the young generation does not count, so
     * the common path does not force a full GC every few programs to clear it.
     */
    static long oldUsed() {
        if (oldPools == null) return usedHeap();
        long n = 0;
        for (java.lang.management.MemoryPoolMXBean p : oldPools) n += p.getUsage().getUsed();
        return n;
    }

    static void findOldPools() {
        try {
            List<java.lang.management.MemoryPoolMXBean> old = new ArrayList<>();
            boolean young = false;
            for (java.lang.management.MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
                if (p.getType() != java.lang.management.MemoryType.HEAP) continue;
                String name = p.getName();
                if (name.contains("Eden") || name.contains("Survivor")) young = true;
                else old.add(p);
            }
            oldPools = young && !old.isEmpty() ? old : null;
        } catch (Throwable e) {
            oldPools = null;
        }
    }

    /** What a program may leave pinned in the heap (JDK-wide registries) before the worker is replaced. */
    static long heapMargin() { return Math.max(32L << 20, Runtime.getRuntime().maxMemory() / 16); }

    /**
     * The backstop for memory a program pinned in some JDK-wide holder that no permission guards
     * (ZoneRulesProvider.registerProvider, ClassValue on JDK classes...): more heap in use after the
     * program, after a full GC, than before any program ran plus {@link #heapMargin()}. The common path
     * reads the old generation's counter; the GC runs only when it is over the mark (garbage promoted
     * by young collections, mostly). Memory pinned while still in the young generation is counted once
     * a young collection promotes it, at the latest after the next program.
     */
    static boolean heapRetained() {
        if (heapBaseline < 0) return false;
        long mark = heapBaseline + heapMargin();
        if (oldUsed() <= mark) return false;
        System.gc();
        return usedHeap() > mark;
    }

    /** What one check thread found, as strings only (the worker never calls program code itself). */
    static final class Box {
        volatile boolean done;
        volatile String outcome, type, msg;
        volatile long line = -1;
        volatile String[] values;
        volatile long cpuNs = -1;  // the probe thread's CPU time when it ended
    }

    /**
     * The CPU time the program has used since it started: every live Java thread of this JVM but the
     * worker's own (the program's threads, the probe threads, common-pool and finalizer work done for
     * it; only one program runs at a time), read from the kernel's per-thread clocks through
     * ThreadMXBean, minus what each thread had used when the program started. JIT compiler threads
     * are hidden from ThreadMXBean and GC runs in VM threads: neither is counted. A thread that has
     * ended keeps the last value read for it (the probe threads record their own final value), so a
     * thread that ends between two readings loses at most what it used since the last one. Without
     * per-thread CPU clocks it is the wall time since the program started.
     */
    static final class CpuMeter {
        private final Map<Long, Long> base = new HashMap<>(), seen = new HashMap<>();
        private final long wall0 = System.nanoTime();
        private long total;

        CpuMeter() {
            if (!cpuClock) return;
            long[] ids = tmx.getAllThreadIds();
            long[] cpu = times(ids);
            for (int i = 0; i < ids.length; i++) if (cpu[i] >= 0) base.put(ids[i], cpu[i]);
        }

        private static long[] times(long[] ids) {
            if (!tmx.isThreadCpuTimeEnabled()) tmx.setThreadCpuTimeEnabled(true);  // the program may not switch it off; be sure
            if (tmx instanceof com.sun.management.ThreadMXBean) return ((com.sun.management.ThreadMXBean) tmx).getThreadCpuTime(ids);
            long[] out = new long[ids.length];
            for (int i = 0; i < ids.length; i++) out[i] = tmx.getThreadCpuTime(ids[i]);
            return out;
        }

        private void note(long id, long cpu) {
            if (id == workerThreadId || cpu < 0) return;
            long used = Math.max(0, cpu - base.getOrDefault(id, 0L));
            Long before = seen.get(id);
            if (before == null || used > before) {
                seen.put(id, used);
                total += used - (before == null ? 0 : before);
            }
        }

        /** A thread's CPU time when it ended (read by the thread itself). */
        void ended(long id, long cpu) { if (cpuClock) note(id, cpu); }

        /** Program CPU nanoseconds so far. */
        long read() {
            if (!cpuClock) return System.nanoTime() - wall0;
            long[] ids = tmx.getAllThreadIds();
            long[] cpu = times(ids);
            for (int i = 0; i < ids.length; i++) note(ids[i], cpu[i]);
            return total;
        }
    }

    /** Seconds as Python's ``f"{s:g}"`` writes them for the limits in use (3 s, 0.5 s, 12 s). */
    static String secs(BigDecimal s) {
        s = s.stripTrailingZeros();
        return (s.scale() < 0 ? s.setScale(0) : s).toPlainString();
    }

    /** The timeout message, in the Python side's words (sandbox/clock.py). */
    static String timeoutMsg(String what, long limitMs, boolean wall, BigDecimal factor) {
        BigDecimal lim = BigDecimal.valueOf(limitMs).movePointLeft(3);
        if (!wall) return what + " exceeded its CPU-time limit of " + secs(lim) + " s";
        return what + " exceeded its wall-clock cap of " + secs(factor.multiply(lim)) + " s (" + secs(factor) + " x its " + secs(lim)
                + " s CPU-time limit): it was blocked, sleeping or starved of CPU";
    }

    static void runCheck(Method m, Box box, String file, int candLines, int maxChars, Set<String> testClasses, ClassLoader loader) {
        try {
            Object[] vals = (Object[]) m.invoke(null);
            String[] enc = new String[vals.length];
            int budget = maxChars;
            for (int k = 0; k < vals.length; k++) {
                enc[k] = TcfValues.encode(vals[k], budget, testClasses, loader);
                budget -= enc[k].length();
            }
            box.values = enc;
            box.outcome = "value";
        } catch (TcfValues.NotPlain e) {
            box.outcome = "fail"; box.type = "NotPlainData"; box.msg = e.getMessage();
        } catch (Throwable e) {
            Throwable err = e instanceof InvocationTargetException && e.getCause() != null ? e.getCause() : e;
            classify(err, box, file, candLines);
        } finally {
            try { box.cpuNs = cpuClock ? tmx.getCurrentThreadCpuTime() : -1; } catch (Throwable ignored) { }
            // A dead Thread object can linger (the JVM's own references): it must not keep the program's classes alive.
            try { Thread.currentThread().setContextClassLoader(null); } catch (Throwable ignored) { }
            box.done = true;
        }
    }

    static void classify(Throwable e, Box box, String file, int candLines) {
        try {
            if (e instanceof OutputLimitError) { box.outcome = "resource"; box.type = "OutputLimitExceeded"; return; }
            if (e instanceof OutOfMemoryError) { box.outcome = "resource"; box.type = "OutOfMemoryError"; box.msg = "out of memory"; return; }
            box.outcome = "error";
            box.type = e.getClass().getSimpleName();
            box.line = candidateLine(e.getStackTrace(), file, candLines);
            String m = e.getMessage();
            box.msg = m == null ? e.getClass().getName() : m;
        } catch (Throwable again) {  // a program's Throwable whose methods throw
            box.outcome = "error";
            if (box.type == null) box.type = "Throwable";
            if (box.msg == null) box.msg = "an exception whose methods fail";
        }
    }

    static String run(Map<String, byte[]> classes, Set<String> testClasses, String[] checks, String file, int candLines, Map<String, String> req, long compileMs) throws Exception {
        long testMs = Long.parseLong(req.get("test_timeout_ms"));
        long progMs = Long.parseLong(req.get("program_timeout_ms"));
        BigDecimal factor = new BigDecimal(req.getOrDefault("wall_time_factor", "4")).max(BigDecimal.ONE);
        long testCpuNs = testMs * 1_000_000L, progCpuNs = progMs * 1_000_000L;
        long testWallNs = factor.multiply(BigDecimal.valueOf(testCpuNs)).longValue();
        int maxChars = Integer.parseInt(req.getOrDefault("value_chars", "4000000"));
        long t0 = System.nanoTime();
        long progWallCap = t0 + factor.multiply(BigDecimal.valueOf(progCpuNs)).longValue();
        exitAttempted = false;
        exitTrace = null;
        CAP.count = 0;
        CAP.exceeded = false;
        CAP.cap = Long.parseLong(req.get("output_bytes"));
        if (heapBaseline < 0) {  // once, before any program code runs in this JVM
            System.gc();
            heapBaseline = usedHeap();
            findOldPools();
        }
        ProgLoader loader = new ProgLoader(classes);
        Class<?> main = loader.loadClass(req.getOrDefault("main_class", "Main"));
        ThreadGroup group = new ThreadGroup(SANDBOX, "tcf-program");
        running = group;
        try {
            return runIn(group, loader, main, testClasses, checks, file, candLines, compileMs, testMs, progMs, factor, testCpuNs, progCpuNs,
                         testWallNs, maxChars, t0, progWallCap);
        } finally {
            running = null;
        }
    }

    static String runIn(ThreadGroup group, ProgLoader loader, Class<?> main, Set<String> testClasses, String[] checks, String file, int candLines,
                        long compileMs, long testMs, long progMs, BigDecimal factor, long testCpuNs, long progCpuNs, long testWallNs, int maxChars,
                        long t0, long progWallCap) throws Exception {
        Set<Thread> before = liveThreads();
        CpuMeter meter = new CpuMeter();
        StringBuilder out = new StringBuilder("\"status\":\"ran\",\"checks\":[");
        boolean recycle = false, stopAll = false;
        for (int i = 0; i < checks.length; i++) {
            if (i > 0) out.append(',');
            if (stopAll) { out.append("{\"o\":\"not_run\"}"); continue; }
            long cpu0 = meter.read(), start = System.nanoTime();
            if (cpu0 >= progCpuNs || start >= progWallCap) {
                String msg = timeoutMsg("program", progMs, cpu0 < progCpuNs, factor);
                out.append("{\"o\":\"timeout\",\"type\":\"Timeout\",\"msg\":").append(TcfCommon.q(msg)).append('}');
                stopAll = true;
                continue;
            }
            final Method m = main.getDeclaredMethod(checks[i]);
            m.setAccessible(true);
            final Box box = new Box();
            Thread t = new Thread(group, () -> runCheck(m, box, file, candLines, maxChars, testClasses, loader), "tcf-check-" + i, 16L << 20);
            t.setContextClassLoader(loader);
            long testWallCap = Math.min(start + testWallNs, progWallCap);
            t.start();
            // Wait for the probe; read the CPU time at most every 50 ms, and sooner when less is left.
            String timedOut = null;
            boolean programLimit = false;
            while (!box.done) {
                long now = System.nanoTime();
                if (now >= testWallCap) {
                    programLimit = testWallCap >= progWallCap;
                    timedOut = programLimit ? timeoutMsg("program", progMs, true, factor) : timeoutMsg("test", testMs, true, factor);
                    break;
                }
                long cpu = meter.read();
                if (cpu >= progCpuNs) { programLimit = true; timedOut = timeoutMsg("program", progMs, false, factor); break; }
                if (cpu - cpu0 >= testCpuNs) { timedOut = timeoutMsg("test", testMs, false, factor); break; }
                long wait = Math.min(Math.min(progCpuNs - cpu, testCpuNs - (cpu - cpu0)), MAX_POLL_NS);
                wait = Math.min(Math.max(wait, MIN_POLL_NS), testWallCap - now);
                t.join(wait / 1_000_000L, (int) (wait % 1_000_000L));
            }
            if (timedOut == null) t.join(100);  // its last instructions after the finally
            if (box.cpuNs >= 0) meter.ended(t.getId(), box.cpuNs);
            String o, type = null, msg = null; long line = -1;
            if (timedOut != null) {
                o = "timeout"; type = "Timeout"; msg = timedOut;
                if (!stop(t)) recycle = true;
                else t.setContextClassLoader(null);
            } else if (exitAttempted) {
                o = "error"; type = "SystemExit"; msg = "System.exit called by the program before the tests finished";
                line = candidateLine(exitTrace, file, candLines);
            } else if (CAP.exceeded || "OutputLimitExceeded".equals(box.type)) {  // even when the program caught it
                o = "resource"; type = "OutputLimitExceeded"; msg = "program printed more than " + CAP.cap + " bytes";
            } else {
                o = box.outcome; type = box.type; msg = box.msg; line = box.line;
                if ("OutOfMemoryError".equals(type)) recycle = true;
            }
            out.append("{\"o\":").append(TcfCommon.q(o));
            if (type != null) out.append(",\"type\":").append(TcfCommon.q(type)).append(",\"msg\":").append(TcfCommon.q(TcfCommon.clip(msg, 1000)));
            if (line >= 1) out.append(",\"line\":").append(line);
            if ("value".equals(o)) {
                out.append(",\"v\":[");
                String[] vs = box.values;
                for (int k = 0; k < vs.length; k++) out.append(k > 0 ? "," : "").append(TcfCommon.q(vs[k]));
                out.append(']');
            }
            out.append('}');
            if (recycle || exitAttempted || programLimit) stopAll = true;
        }
        out.append(']');
        // Leftover threads: daemon ones are stopped (a plain JVM would exit past them); a non-daemon
        // thread keeps a plain JVM alive, so it is a timeout once the program's CPU time or wall cap is used up.
        boolean still = false;
        while (true) {
            Thread[] left = new Thread[group.activeCount() + 8];
            int n = group.enumerate(left, true);
            Thread live = null;
            for (int i = 0; i < n && live == null; i++) if (!left[i].isDaemon() && left[i].isAlive()) live = left[i];
            if (live == null || exitAttempted) break;  // (a System.exit would have ended a plain JVM)
            long now = System.nanoTime(), cpu = meter.read();
            if (now >= progWallCap || cpu >= progCpuNs) { still = true; break; }
            long wait = Math.min(Math.max(Math.min(progCpuNs - cpu, MAX_POLL_NS), MIN_POLL_NS), progWallCap - now);
            live.join(wait / 1_000_000L, (int) (wait % 1_000_000L));
        }
        long cpuNs = meter.read();
        String why = end(group, before);
        if (recycle || why != null) recycleWhy = recycle ? "probe" : why;
        out.append(",\"leftover_thread\":").append(still);
        if (exitAttempted) out.append(",\"exit_line\":").append(candidateLine(exitTrace, file, candLines));
        out.append(",\"compile_ms\":").append(compileMs)
           .append(",\"run_ms\":").append((System.nanoTime() - t0) / 1_000_000)
           .append(",\"cpu_ms\":").append(cpuNs / 1_000_000)
           .append(",\"cpu_clock\":").append(cpuClock);
        return out.toString();
    }

    private static final int STOP_ROUNDS = 8;
    private static final String DELAYER = "CompletableFutureDelayScheduler";

    /**
     * The program's end: nothing of it may act during a later program. The program is closed first
     * ({@code running} cleared: its threads become strays, which the Guard lets create no thread), then
     * its threads are stopped until its group is empty (a thread being stopped can no longer start
     * another in the group) and the group is destroyed (so a Thread object it created but never started
     * can never start). Why the worker must be replaced, or null when nothing of the program is left:
     * a thread that outlived the stops, a group that is not empty or cannot be destroyed, any thread or
     * group left under the sandbox, program work running or queued in the common pool, a frame of
     * program code on any other thread, or a thread started during the program outside the sandbox
     * (e.g. a Cleaner's, which would run program code later) other than a common-pool worker.
     */
    static String end(ThreadGroup group, Set<Thread> before) throws InterruptedException {
        running = null;
        boolean delayer = false;
        for (int round = 0; ; round++) {
            Thread[] left = new Thread[group.activeCount() + 8];
            int n = group.enumerate(left, true);
            if (n == 0) break;
            if (round == STOP_ROUNDS) return "threads";
            for (int i = 0; i < n; i++) {
                delayer |= DELAYER.equals(left[i].getName());
                if (!stop(left[i])) return "stuck";
                left[i].setContextClassLoader(null);  // (as the probe threads do: see runCheck)
            }
        }
        // CompletableFuture's JVM-wide delay scheduler started its thread in this program's group: its queue
        // may hold the program's tasks, which the next program to use it would run.
        if (delayer) return "delay-scheduler";
        try {
            if (!group.isDestroyed()) group.destroy();  // (a daemon group is destroyed with its last thread)
        } catch (IllegalThreadStateException e) {
            return "group";
        }
        if (SANDBOX.activeCount() > 0 || SANDBOX.activeGroupCount() > 0) return "sandbox";
        java.util.concurrent.ForkJoinPool common = java.util.concurrent.ForkJoinPool.commonPool();
        if (common.getActiveThreadCount() > 0 || common.hasQueuedSubmissions() || common.getQueuedTaskCount() > 0) {
            Thread.sleep(20);
            if (common.getActiveThreadCount() > 0 || common.hasQueuedSubmissions() || common.getQueuedTaskCount() > 0) return "common-pool";
        }
        for (Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet()) {
            Thread t = e.getKey();
            if (t == Thread.currentThread()) continue;
            for (StackTraceElement f : e.getValue()) if (PROGRAM_LOADER.equals(f.getClassLoaderName())) return "program-code";
            if (!before.contains(t) && t.isAlive() && !commonWorker(t, common)) return "new-thread";
        }
        return null;
    }

    static boolean commonWorker(Thread t, java.util.concurrent.ForkJoinPool common) {
        return t instanceof java.util.concurrent.ForkJoinWorkerThread && ((java.util.concurrent.ForkJoinWorkerThread) t).getPool() == common;
    }

    /** Every live thread of the JVM (from the root thread group). */
    static Set<Thread> liveThreads() {
        ThreadGroup root = SANDBOX;
        while (root.getParent() != null) root = root.getParent();
        Thread[] all = new Thread[root.activeCount() + 16];
        int n;
        while ((n = root.enumerate(all, true)) == all.length) all = new Thread[all.length * 2];
        Set<Thread> out = Collections.newSetFromMap(new IdentityHashMap<>());
        for (int i = 0; i < n; i++) out.add(all[i]);
        return out;
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
            if (f != null && fname.equals(f.getFileName()) && f.getLineNumber() >= 1 && f.getLineNumber() <= candLines) return f.getLineNumber();
        }
        return -1;
    }
}
