// trl-codefeedback Java side: what the candidate worker and the trusted oracle share.
// In-memory javac (javax.tools + jshell's JavacTaskPool, so the JDK's symbols are read once),
// the request framing ("key nbytes\n<bytes>\n" blocks ended by "END\n") and JSON quoting.
import javax.tools.*;
import java.io.*;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.*;

final class TcfCommon {
    private TcfCommon() { }

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

    /** What one compilation gave: success, the class bytes and the error diagnostics. */
    static final class Result {
        boolean ok;
        Map<String, byte[]> classes = new LinkedHashMap<>();
        List<Diagnostic<? extends JavaFileObject>> errors = new ArrayList<>();
        long ms;
    }

    /** A warm javac: one file manager and one task pool for the life of the JVM. */
    static final class Compiler {
        final JavaCompiler javac;
        final MemFm fm;
        final com.sun.tools.javac.api.JavacTaskPool pool;

        Compiler() {
            javac = ToolProvider.getSystemJavaCompiler();
            if (javac == null) throw new IllegalStateException("no system Java compiler (a JRE, not a JDK?)");
            fm = new MemFm(javac.getStandardFileManager(null, Locale.ROOT, StandardCharsets.UTF_8));
            com.sun.tools.javac.api.JavacTaskPool p = null;
            if (!"0".equals(System.getProperty("tcf.pool"))) {
                try { p = new com.sun.tools.javac.api.JavacTaskPool(1); } catch (Throwable e) { p = null; }
            }
            pool = p;
        }

        /** Compile one unit; {@code body} runs the task (parse / analyze / generate) and says whether it succeeded. */
        Result compile(String file, String src, List<String> opts, java.util.function.Function<com.sun.source.util.JavacTask, Boolean> body) {
            return compile(List.of(new MemSource(file, src)), opts, body);
        }

        /** Compile several units in one javac task (their diagnostics name their source). */
        Result compile(List<MemSource> units, List<String> opts, java.util.function.Function<com.sun.source.util.JavacTask, Boolean> body) {
            long t0 = System.nanoTime();
            Result r = new Result();
            fm.out = new LinkedHashMap<>();
            DiagnosticCollector<JavaFileObject> diags = new DiagnosticCollector<>();
            r.ok = pool != null
                    ? pool.getTask(null, fm, diags, opts, null, units, task -> body.apply(task))
                    : body.apply((com.sun.source.util.JavacTask) javac.getTask(null, fm, diags, opts, null, units));
            for (Diagnostic<? extends JavaFileObject> d : diags.getDiagnostics()) if (d.getKind() == Diagnostic.Kind.ERROR) r.errors.add(d);
            if (!r.errors.isEmpty()) r.ok = false;
            if (r.ok) for (Map.Entry<String, MemClass> e : fm.out.entrySet()) r.classes.put(e.getKey(), e.getValue().bytes.toByteArray());
            fm.out = new LinkedHashMap<>();
            r.ms = (System.nanoTime() - t0) / 1_000_000;
            return r;
        }

        static boolean all(com.sun.source.util.JavacTask t) {
            try { return Boolean.TRUE.equals(((JavaCompiler.CompilationTask) t).call()); } catch (RuntimeException e) { return false; }
        }
    }

    static String diagJson(Diagnostic<? extends JavaFileObject> d, long startOffset) {
        String unit = d.getSource() == null ? "" : d.getSource().toUri().getPath();
        return "{\"kind\":\"error\",\"unit\":" + q(unit) + ",\"code\":" + q(d.getCode()) + ",\"line\":" + d.getLineNumber() + ",\"column\":" + d.getColumnNumber()
                + ",\"start\":" + (d.getStartPosition() < 0 ? -1 : d.getStartPosition() - startOffset)
                + ",\"end\":" + (d.getEndPosition() < 0 ? -1 : d.getEndPosition() - startOffset)
                + ",\"message\":" + q(clip(d.getMessage(Locale.ROOT), 1000)) + "}";
    }

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

    static String readLine(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int c;
        while ((c = in.read()) != -1 && c != '\n') b.write(c);
        if (c == -1 && b.size() == 0) return null;
        return b.toString(StandardCharsets.UTF_8);
    }

    /** One request: a map of named byte strings, or null at end of input. */
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
            req.put(key, utf8(data));
        }
    }

    /**
     * UTF-8 that keeps lone surrogates: Python sends text with "surrogatepass", so a lone surrogate a
     * program returned ("a\uD800b") arrives as its 3-byte form, which Java's decoder would turn into
     * U+FFFD (and a program could then pass a test expecting U+FFFD). Anything else malformed is U+FFFD.
     */
    static String utf8(byte[] b) {
        StringBuilder sb = new StringBuilder(b.length);
        int i = 0;
        while (i < b.length) {
            int c = b[i] & 0xff;
            if (c < 0x80) { sb.append((char) c); i++; continue; }
            int need, cp, min;
            if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; min = 0x80; }
            else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; min = 0x800; }
            else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; min = 0x10000; }
            else { sb.append('\uFFFD'); i++; continue; }
            int j = 1;
            for (; j <= need && i + j < b.length && (b[i + j] & 0xC0) == 0x80; j++) cp = (cp << 6) | (b[i + j] & 0x3F);
            if (j <= need || cp < min || cp > 0x10FFFF) { sb.append('\uFFFD'); i += j; continue; }
            sb.appendCodePoint(cp);  // a surrogate code point is its own char
            i += need + 1;
        }
        return sb.toString();
    }

    static String stackTrace(Throwable e) {
        StringWriter sw = new StringWriter();
        e.printStackTrace(new PrintWriter(sw));
        return sw.toString();
    }
}
