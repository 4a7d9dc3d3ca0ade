"""Split a MBJP / MathQA-Java test ``main`` into per-check methods (source transform of the test only).

An MBXP Java test is a ``class Main`` whose ``main`` holds several checks, each ending in
``if (!(compare(x, v))) { throw new java.lang.Exception(...); }``: the first failure hides
the rest. :func:`split_java_main` cuts the body of ``main`` into top-level statements, groups
them into checks (the statements up to and including each ``if`` that throws), moves each
group into its own ``static void __tcf_check_<i>()`` method, and makes ``main`` call them in
order (so ``java Main`` still behaves as before). Groups that share a local variable are
merged, so the split always compiles when the original did. The candidate code is untouched.

Example:
    >>> src = '''class Main {
    ...     public static void main(String[] args) throws Exception {
    ...         int x0 = 1;
    ...         if (!(x0 == 1)) { throw new java.lang.Exception("0"); }
    ...         int x1 = 2;
    ...         if (!(x1 == 2)) { throw new java.lang.Exception("1"); }
    ...     }
    ... }'''
    >>> split_java_main(src).checks
    ('__tcf_check_0', '__tcf_check_1')
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_MAIN_RE = re.compile(
    r"(?:public\s+)?static\s+(?:final\s+)?void\s+main\s*\(\s*(?:final\s+)?String\s*(?:\[\s*\]\s*\w+|\w+\s*\[\s*\]|\.\.\.\s*\w+)\s*\)"
    r"\s*(?:throws\s+[\w.,\s]+?)?\s*\{"
)
_BLOCK_STARTS = ("if", "for", "while", "try", "switch", "synchronized", "{")
_DECL_RE = re.compile(r"^(?:final\s+)?[\w$.<>\[\]?,\s]+?[\w$>\]]\s+([A-Za-z_$][\w$]*)\s*(?:=|;)", re.S)
_IDENT_RE = re.compile(r"[A-Za-z_$][\w$]*")


@dataclass(frozen=True)
class JavaTestPlan:
    """The rewritten test source and the check methods to call, in order (``("main",)`` if unsplit)."""

    source: str
    checks: tuple[str, ...]

    @property
    def num_tests(self) -> int:
        return len(self.checks)


def _skip_literal(src: str, i: int) -> int:
    """Index just past the string/char literal or comment starting at ``i`` (or ``i`` if none)."""
    if src.startswith("//", i):
        j = src.find("\n", i)
        return len(src) if j < 0 else j
    if src.startswith("/*", i):
        j = src.find("*/", i + 2)
        return len(src) if j < 0 else j + 2
    if src.startswith('"""', i):
        j = src.find('"""', i + 3)
        while j > 0 and src[j - 1] == "\\":
            j = src.find('"""', j + 1)
        return len(src) if j < 0 else j + 3
    if src[i] in "\"'":
        q, j = src[i], i + 1
        while j < len(src) and src[j] != q and src[j] != "\n":
            j += 2 if src[j] == "\\" else 1
        return j + 1
    return i


def _match_brace(src: str, open_idx: int) -> int:
    depth, i = 0, open_idx
    while i < len(src):
        j = _skip_literal(src, i)
        if j != i:
            i = j
            continue
        c = src[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _next_word(src: str, i: int) -> str:
    while True:
        while i < len(src) and src[i].isspace():
            i += 1
        j = _skip_literal(src, i) if i < len(src) and src[i] == "/" else i
        if j == i:
            break
        i = j
    m = _IDENT_RE.match(src, i)
    return m.group(0) if m else ""


def statement_spans(body: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each top-level statement of a method body (comments between them skipped).

    >>> body = "int a = 1; /* one */ if (a > 0) { a++; } else { a--; }"
    >>> [body[s:e] for s, e in statement_spans(body)]
    ['int a = 1;', 'if (a > 0) { a++; } else { a--; }']
    """
    out: list[tuple[int, int]] = []
    i, n = 0, len(body)
    while i < n:
        while i < n and body[i].isspace():
            i += 1
        if i >= n:
            break
        j = _skip_literal(body, i)
        if j != i and body[i] == "/":
            i = j
            continue
        start, depth = i, 0
        first = "{" if body[i] == "{" else _next_word(body, i)
        is_block = first in _BLOCK_STARTS
        while i < n:
            j = _skip_literal(body, i)
            if j != i:
                i = j
                continue
            c = body[i]
            i += 1
            if c in "({[":
                depth += 1
            elif c in ")}]":
                depth -= 1
                if c == "}" and depth == 0 and is_block and first != "do":
                    if _next_word(body, i) in ("else", "catch", "finally"):
                        continue
                    break
            elif c == ";" and depth == 0:
                if first in ("if",) and _next_word(body, i) == "else":
                    continue
                break
        end = i
        while end > start and body[end - 1].isspace():
            end -= 1
        if end > start:
            out.append((start, end))
    return out


def split_statements(body: str) -> list[str]:
    """Top-level statements of a method body (comments between them are dropped)."""
    return [body[s:e] for s, e in statement_spans(body)]


def _is_check(stmt: str) -> bool:
    return stmt.startswith("if") and re.search(r"\bthrow\b", stmt) is not None


@dataclass(frozen=True)
class MainChecks:
    """Where ``main``'s body is in a test, and its checks as groups of statement spans (offsets in the test)."""

    open_idx: int
    close_idx: int
    groups: tuple[tuple[tuple[int, int], ...], ...]


@functools.lru_cache(maxsize=4096)
def main_checks(test: str) -> MainChecks | None:
    """Group ``main``'s top-level statements into checks (None when the test has no parsable ``main``).

    A check is the statements up to and including an ``if`` that throws; trailing statements join
    the last check; checks that share a local variable are merged (so each compiles on its own).
    """
    m = _MAIN_RE.search(test)
    if m is None:
        return None
    open_idx = m.end() - 1
    close_idx = _match_brace(test, open_idx)
    if close_idx < 0:
        return None
    base = open_idx + 1
    spans = [(base + s, base + e) for s, e in statement_spans(test[base:close_idx])]
    groups: list[list[tuple[int, int]]] = []
    cur: list[tuple[int, int]] = []
    for sp in spans:
        cur.append(sp)
        if _is_check(test[sp[0]:sp[1]]):
            groups.append(cur)
            cur = []
    if cur:
        if groups:
            groups[-1].extend(cur)
        else:
            groups.append(cur)
    merged: list[list[tuple[int, int]]] = []
    declared: list[set[str]] = []
    for g in groups:
        texts = [test[a:b] for a, b in g]
        names = {d.group(1) for s in texts if (d := _DECL_RE.match(s)) and _next_word(s, 0) not in ("return", "throw", "if", "new")}
        used = set(_IDENT_RE.findall(" ".join(texts)))
        hit = next((k for k, dn in enumerate(declared) if dn & used), None)
        if hit is None:
            merged.append(list(g))
            declared.append(names)
        else:
            for k in range(hit + 1, len(merged)):
                merged[hit].extend(merged[k])
                declared[hit] |= declared[k]
            del merged[hit + 1:], declared[hit + 1:]
            merged[hit].extend(g)
            declared[hit] |= names
    return MainChecks(open_idx, close_idx, tuple(tuple(g) for g in merged))


@functools.lru_cache(maxsize=4096)
def split_java_main(test: str) -> JavaTestPlan:
    """Rewrite ``test`` so each check of ``main`` is its own method (see the module doc)."""
    mc = main_checks(test)
    if mc is None or len(mc.groups) <= 1:
        return JavaTestPlan(test, ("main",))
    names = tuple(f"__tcf_check_{i}" for i in range(len(mc.groups)))
    new_main = "\n".join(f"        {nm}();" for nm in names)
    methods = "".join(
        f"\n    static void {nm}() throws Exception {{\n" + "\n".join("        " + test[a:b] for a, b in g) + "\n    }\n"
        for nm, g in zip(names, mc.groups)
    )
    source = test[: mc.open_idx + 1] + "\n" + new_main + "\n    }\n" + methods + test[mc.close_idx + 1:]
    return JavaTestPlan(source, names)


def count_java_checks(test: str) -> int:
    """How many tests the Java backend reports for a ``java_main`` test (its split checks)."""
    return split_java_main(test).num_tests
