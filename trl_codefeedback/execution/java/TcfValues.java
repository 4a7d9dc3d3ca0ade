// trl-codefeedback: the strict, tagged encoding of plain values between the candidate JVM
// (encode) and the trusted oracle (decode into fresh JDK objects).
//
// Plain data: null, Boolean, Byte, Short, Character, Integer, Long, Float, Double, String,
// BigInteger, BigDecimal, arrays of those (or of lists / sets / maps), and JDK lists, sets and
// maps (classes of java.util loaded by the bootstrap loader) of plain data. Anything else (a
// subclass, an anonymous class, a proxy, a program's own class) is not plain. Two exceptions, sent
// by their contents (the trusted side rebuilds a fresh JDK collection, so no method of theirs
// ever runs there): a subclass of a JDK list / set / map that the *test* declares (MBJP's
// double-brace `new HashMap(){{put(..);}}` arguments, which a program may return), and one that
// the program declares without declaring any method (the same idiom in a solution: only an
// initializer block). A subclass that overrides anything (equals, get, size...) is not plain.
//
//   n                      null            Z0 / Z1          Boolean
//   I<int>;  J<long>;  S<short>;  B<byte>;  C<char code>;    boxed integers
//   F<raw bits hex>;  D<raw bits hex>;                       Float / Double (exact, NaN kept)
//   N<digits>;  M<unscaled>,<scale>;                         BigInteger / BigDecimal
//   s<n>:<n chars>                                           String
//   A<n>:<array class name><len>;<elements>                  array ([I, [Ljava.lang.String;, ...)
//   L<n>:<kind><len>;<elements>   E...  H...(key, value)...  list / set / map
//       kinds: ArrayList LinkedList List | HashSet LinkedHashSet TreeSet Set | HashMap LinkedHashMap TreeMap Map
import java.lang.reflect.Array;
import java.lang.reflect.Proxy;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.*;
import java.util.regex.Pattern;

final class TcfValues {
    private TcfValues() { }

    static final int MAX_DEPTH = 64;

    /** A value that is not plain data (or too large / too deep): the check fails with this message. */
    static final class NotPlain extends Exception {
        NotPlain(String m) { super(m, null, false, false); }
    }

    // ------------------------------------------------------------------ encode (candidate JVM)

    /** {@code testClasses}: binary names of the classes the test declares (never the program's). */
    static String encode(Object v, int maxChars, Set<String> testClasses, ClassLoader programLoader) throws NotPlain {
        StringBuilder sb = new StringBuilder();
        new Encoder(testClasses, programLoader, maxChars).enc(v, sb, 0);
        return sb.toString();
    }

    static boolean jdkUtil(Class<?> c) {
        return c.getClassLoader() == null && !Proxy.isProxyClass(c) && !c.isHidden() && !c.isAnonymousClass()
                && !c.isSynthetic() && c.getName().startsWith("java.util.");
    }

    private static void str(StringBuilder sb, String s) { sb.append(s.length()).append(':').append(s); }

    private static final class Encoder {
    final Set<String> testClasses;
    final ClassLoader programLoader;
    final int max;
    Encoder(Set<String> testClasses, ClassLoader programLoader, int max) { this.testClasses = testClasses; this.programLoader = programLoader; this.max = max; }

    /** The JDK collection class that {@code c} is, or that a test-declared {@code c} extends; else null. */
    Class<?> collectionClass(Class<?> c) {
        if (jdkUtil(c)) return c;
        if (c.getClassLoader() != programLoader) return null;
        boolean test = testClasses.contains(c.getName());
        Class<?> s = c;
        while (s != null && !jdkUtil(s)) {
            if (!test && (s.getClassLoader() != programLoader || declaresMethods(s))) return null;
            s = s.getSuperclass();
        }
        return s;
    }

    static boolean declaresMethods(Class<?> c) {
        for (java.lang.reflect.Method m : c.getDeclaredMethods()) if (!m.isSynthetic()) return true;
        return false;
    }

    void enc(Object v, StringBuilder sb, int depth) throws NotPlain {
        if (sb.length() > max) throw new NotPlain("the value is larger than " + max + " characters once encoded");
        if (depth > MAX_DEPTH) throw new NotPlain("the value is nested deeper than " + MAX_DEPTH + " levels");
        if (v == null) { sb.append('n'); return; }
        Class<?> c = v.getClass();
        if (c == Boolean.class) { sb.append((Boolean) v ? "Z1" : "Z0"); return; }
        if (c == Integer.class) { sb.append('I').append(((Integer) v).intValue()).append(';'); return; }
        if (c == Long.class) { sb.append('J').append(((Long) v).longValue()).append(';'); return; }
        if (c == Short.class) { sb.append('S').append(((Short) v).shortValue()).append(';'); return; }
        if (c == Byte.class) { sb.append('B').append(((Byte) v).byteValue()).append(';'); return; }
        if (c == Character.class) { sb.append('C').append((int) ((Character) v).charValue()).append(';'); return; }
        if (c == Float.class) { sb.append('F').append(Integer.toHexString(Float.floatToRawIntBits((Float) v))).append(';'); return; }
        if (c == Double.class) { sb.append('D').append(Long.toHexString(Double.doubleToRawLongBits((Double) v))).append(';'); return; }
        if (c == String.class) { sb.append('s'); str(sb, (String) v); return; }
        if (c == BigInteger.class) { sb.append('N').append(v.toString()).append(';'); return; }
        if (c == BigDecimal.class) {
            BigDecimal d = (BigDecimal) v;
            sb.append('M').append(d.unscaledValue().toString()).append(',').append(d.scale()).append(';');
            return;
        }
        if (c.isArray()) {
            String name = c.getName();
            if (!ARRAY_NAME.matcher(name).matches()) throw new NotPlain("an array of " + c.getComponentType().getName() + " is not plain data");
            int n = Array.getLength(v);
            sb.append('A');
            str(sb, name);
            sb.append(n).append(';');
            for (int i = 0; i < n; i++) enc(Array.get(v, i), sb, depth + 1);
            return;
        }
        Class<?> jc = collectionClass(c);
        if (jc != null && (v instanceof List || v instanceof Set)) {
            boolean list = v instanceof List;
            c = jc;
            String kind = list ? (c == ArrayList.class ? "ArrayList" : c == LinkedList.class ? "LinkedList" : "List")
                    : (c == HashSet.class ? "HashSet" : c == LinkedHashSet.class ? "LinkedHashSet" : c == TreeSet.class ? "TreeSet" : "Set");
            Object[] items = ((Collection<?>) v).toArray();
            sb.append(list ? 'L' : 'E');
            str(sb, kind);
            sb.append(items.length).append(';');
            for (Object o : items) enc(o, sb, depth + 1);
            return;
        }
        if (jc != null && v instanceof Map) {
            c = jc;
            String kind = c == HashMap.class ? "HashMap" : c == LinkedHashMap.class ? "LinkedHashMap" : c == TreeMap.class ? "TreeMap" : "Map";
            List<Object> kv = new ArrayList<>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) { kv.add(e.getKey()); kv.add(e.getValue()); }
            sb.append('H');
            str(sb, kind);
            sb.append(kv.size() / 2).append(';');
            for (Object o : kv) enc(o, sb, depth + 1);
            return;
        }
        String what = c.getClassLoader() == null ? "class " + c.getName() : "class " + c.getName() + " (defined by the program)";
        if (Proxy.isProxyClass(c) || c.isHidden() || c.isAnonymousClass()) what = "a proxy, hidden or anonymous " + what;
        throw new NotPlain("a value of " + what + " is not plain data (boxed primitives, String, BigInteger, BigDecimal, "
                + "arrays, and JDK lists / sets / maps of those)");
    }
    }

    static final Pattern ARRAY_NAME = Pattern.compile("\\[+(?:[ZBSCIJFD]|L(?:java\\.lang\\.(?:Object|Number|Integer|Long|Short|Byte|Character"
            + "|Boolean|Float|Double|String)|java\\.math\\.(?:BigInteger|BigDecimal)|java\\.util\\.(?:List|Set|Map|Collection|ArrayList"
            + "|LinkedList|HashSet|LinkedHashSet|TreeSet|HashMap|LinkedHashMap|TreeMap|AbstractMap|AbstractList));)");

    // ------------------------------------------------------------------ decode (trusted oracle)

    private static final Pattern COUNT = Pattern.compile("[0-9]{1,10}"), NUM = Pattern.compile("-?[0-9]{1,4000}"),
            BIG = Pattern.compile("-?[0-9]{1,100000}"), SCALE = Pattern.compile("-?[0-9]{1,10}"), HEX = Pattern.compile("[0-9a-f]{1,16}");

    /** Malformed input: the program's channel was corrupted. */
    static class Malformed extends Exception {
        Malformed(String m) { super(m, null, false, false); }
    }

    /**
     * Well-formed, but not a value the trusted side will judge: a set / map whose elements collide on
     * hashCode so often that rebuilding it would take super-linear work, or one holding equal elements
     * (it changed after they were added). The check fails (NotPlainData); it never passes.
     */
    static final class Refused extends Malformed {
        Refused(String m) { super(m); }
    }

    /**
     * Rebuilding a hash set / map compares each element with the earlier ones of the same hashCode
     * (a linear scan for elements that are not Comparable, e.g. lists): the work is, summed over the
     * elements, (earlier elements with its hashCode) x (its encoded size). Past this budget (per
     * value, a fraction of a second) the value is refused instead of rebuilt.
     */
    static final long COLLISION_BUDGET = 20_000_000L;

    static Object decode(String s) throws Malformed {
        int[] pos = {0};
        long[] budget = {COLLISION_BUDGET};
        Object v = dec(s, pos, 0, budget);
        if (pos[0] != s.length()) throw new Malformed("trailing data at " + pos[0]);
        return v;
    }

    private static String until(String s, int[] p, char end) throws Malformed {
        int j = s.indexOf(end, p[0]);
        if (j < 0 || j - p[0] > 4096) throw new Malformed("missing '" + end + "' at " + p[0]);
        String r = s.substring(p[0], j);
        p[0] = j + 1;
        return r;
    }

    private static String lenStr(String s, int[] p) throws Malformed {
        int n = count(until(s, p, ':'), s.length() - p[0]);
        String r = s.substring(p[0], p[0] + n);
        p[0] += n;
        return r;
    }

    private static int count(String digits, int remaining) throws Malformed {
        if (!COUNT.matcher(digits).matches()) throw new Malformed("bad length " + clip(digits));
        long n = Long.parseLong(digits);
        if (n > remaining) throw new Malformed("length " + n + " past the end of the data");
        return (int) n;
    }

    private static String clip(String s) { return s.length() > 40 ? s.substring(0, 40) + "..." : s; }

    private static Object dec(String s, int[] p, int depth, long[] budget) throws Malformed {
        if (depth > MAX_DEPTH + 1) throw new Malformed("nested too deep");
        if (p[0] >= s.length()) throw new Malformed("truncated value");
        char t = s.charAt(p[0]++);
        try {
            switch (t) {
                case 'n': return null;
                case 'Z': {
                    char b = p[0] < s.length() ? s.charAt(p[0]++) : '?';
                    if (b != '0' && b != '1') throw new Malformed("bad boolean");
                    return b == '1';
                }
                case 'I': return Integer.valueOf(Integer.parseInt(num(s, p)));
                case 'J': return Long.valueOf(Long.parseLong(num(s, p)));
                case 'S': return Short.valueOf(Short.parseShort(num(s, p)));
                case 'B': return Byte.valueOf(Byte.parseByte(num(s, p)));
                case 'C': {
                    int c = Integer.parseInt(num(s, p));
                    if (c < 0 || c > 0xFFFF) throw new Malformed("bad char");
                    return Character.valueOf((char) c);
                }
                case 'F': return Float.intBitsToFloat(Integer.parseUnsignedInt(hex(s, p), 16));
                case 'D': return Double.longBitsToDouble(Long.parseUnsignedLong(hex(s, p), 16));
                case 'N': return new BigInteger(num(s, p));
                case 'M': {
                    String[] parts = until(s, p, ';').split(",", -1);
                    if (parts.length != 2 || !BIG.matcher(parts[0]).matches() || !SCALE.matcher(parts[1]).matches()) throw new Malformed("bad BigDecimal");
                    return new BigDecimal(new BigInteger(parts[0]), Integer.parseInt(parts[1]));
                }
                case 's': return lenStr(s, p);
                case 'A': return decArray(s, p, depth, budget);
                case 'L': case 'E': case 'H': return decCollection(t, s, p, depth, budget);
                default: throw new Malformed("unknown tag '" + t + "'");
            }
        } catch (NumberFormatException e) {
            throw new Malformed("bad number: " + e.getMessage());
        }
    }

    private static String num(String s, int[] p) throws Malformed {
        String d = until(s, p, ';');
        if (!NUM.matcher(d).matches()) throw new Malformed("bad number " + clip(d));
        return d;
    }

    private static String hex(String s, int[] p) throws Malformed {
        String d = until(s, p, ';');
        if (!HEX.matcher(d).matches()) throw new Malformed("bad bits " + clip(d));
        return d;
    }

    private static Object decArray(String s, int[] p, int depth, long[] budget) throws Malformed {
        String name = lenStr(s, p);
        if (!ARRAY_NAME.matcher(name).matches()) throw new Malformed("array class not allowed: " + clip(name));
        int n = count(until(s, p, ';'), s.length() - p[0]);
        Class<?> cls;
        try { cls = Class.forName(name, false, null); } catch (ClassNotFoundException e) { throw new Malformed("unknown array class " + name); }
        Class<?> comp = cls.getComponentType();
        Object arr = Array.newInstance(comp, n);
        for (int i = 0; i < n; i++) {
            Object e = dec(s, p, depth + 1, budget);
            if (comp.isPrimitive()) {
                if (e == null || e.getClass() != Array.get(arr, 0).getClass()) throw new Malformed("element " + i + " does not fit " + name);
            } else if (e != null && !comp.isInstance(e)) {
                throw new Malformed("element " + i + " does not fit " + name);
            }
            Array.set(arr, i, e);
        }
        return arr;
    }

    @SuppressWarnings("unchecked")
    private static Object decCollection(char t, String s, int[] p, int depth, long[] budget) throws Malformed {
        String kind = lenStr(s, p);
        int n = count(until(s, p, ';'), s.length() - p[0]);
        Object out;
        boolean hashed = false;
        switch (t + kind) {
            case "LArrayList": case "LList": out = new ArrayList<>(); break;
            case "LLinkedList": out = new LinkedList<>(); break;
            case "EHashSet": out = new HashSet<>(); hashed = true; break;
            case "ELinkedHashSet": case "ESet": out = new LinkedHashSet<>(); hashed = true; break;
            case "ETreeSet": out = new TreeSet<>(); break;
            case "HHashMap": out = new HashMap<>(); hashed = true; break;
            case "HLinkedHashMap": case "HMap": out = new LinkedHashMap<>(); hashed = true; break;
            case "HTreeMap": out = new TreeMap<>(); break;
            default: throw new Malformed("unknown collection kind " + clip(kind));
        }
        // Decode every element first; a hashed kind is checked for hashCode collisions before it is built.
        Object[] items = new Object[t == 'H' ? 2 * n : n];
        Map<Integer, int[]> sameHash = hashed ? new HashMap<>() : null;
        for (int i = 0, k = 0; i < n; i++) {
            int start = p[0];
            Object a = dec(s, p, depth + 1, budget);
            items[k++] = a;
            if (hashed) {
                int[] c = sameHash.computeIfAbsent(a == null ? 0 : a.hashCode(), h -> new int[1]);
                budget[0] -= (long) c[0]++ * (p[0] - start);
                if (budget[0] < 0) {
                    throw new Refused("a " + kind + " of " + n + " elements whose elements collide on hashCode too often (" + c[0]
                            + " share one hash code) to be rebuilt and judged in bounded time");
                }
            }
            if (t == 'H') items[k++] = dec(s, p, depth + 1, budget);
        }
        try {
            if (t == 'H') for (int i = 0; i < items.length; i += 2) ((Map<Object, Object>) out).put(items[i], items[i + 1]);
            else for (Object a : items) ((Collection<Object>) out).add(a);
        } catch (ClassCastException | NullPointerException e) {
            throw new Malformed("a " + kind + " that cannot hold its elements: " + e);
        }
        int size = out instanceof Map ? ((Map<?, ?>) out).size() : ((Collection<?>) out).size();
        if (size != n) {  // a set / map that held equal elements: one changed after it was added
            throw new Refused("a " + kind + " holding " + n + (t == 'H' ? " keys" : " elements") + " of which only " + size
                    + " are distinct (an element changed after it was added): not a valid " + kind);
        }
        return out;
    }
}
